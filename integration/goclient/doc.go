// Package goclient tests p4tcd with an independent P4Runtime client,
// github.com/antoninbas/p4runtime-go-client. It is a module of its own
// because that client is built against P4Runtime v1.4 Go types, which do
// not compile against the v1.5.0 module p4tcd uses; over the wire the two
// versions speak the same protocol, which is what this test checks.
package goclient
