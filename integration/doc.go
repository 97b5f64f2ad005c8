// Package integration holds p4tcd's end-to-end tests: the real p4tcd
// binary started as a process, driven by independent P4Runtime clients
// over TCP on loopback and, for datapath tests, real frames between
// network namespaces the tests create. It has no non-test code.
package integration
