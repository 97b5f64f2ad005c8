//go:build race

package server

// raceEnabled: the race detector makes sync.Pool drop what it is given
// at random, so allocation counts say nothing.
const raceEnabled = true
