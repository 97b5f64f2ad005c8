package testutil

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/vishvananda/netns"
)

// NetNS is a network namespace a test created; it is deleted at cleanup.
type NetNS struct {
	Name   string
	handle netns.NsHandle
}

// NewNetNS creates a named network namespace (`ip netns add`) and removes
// it when the test ends. Namespaces are named p4t-<pid>-<random>: a leak
// is easy to spot, and one left by a test process that died is removed by
// the next (see reapStale).
func NewNetNS(tb testing.TB) *NetNS {
	tb.Helper()
	reapStale(tb)
	name := ownedName(nsPrefix, randomHex(tb))
	var h netns.NsHandle
	err := onLockedThread(func() error {
		orig, err := netns.Get()
		if err != nil {
			return err
		}
		defer orig.Close()
		h, err = netns.NewNamed(name)
		if err != nil {
			return fmt.Errorf("create netns %s: %w", name, err)
		}
		// NewNamed moved this thread into the new namespace.
		return netns.Set(orig)
	})
	if err != nil {
		tb.Fatal(err)
	}
	ns := &NetNS{Name: name, handle: h}
	tb.Cleanup(func() {
		h.Close()
		if err := netns.DeleteNamed(name); err != nil {
			tb.Errorf("delete netns %s: %v", name, err)
		}
	})
	return ns
}

// Handle returns the namespace's handle (valid until cleanup).
func (ns *NetNS) Handle() netns.NsHandle { return ns.handle }

// Do runs f inside the namespace on a dedicated, locked OS thread; the
// calling goroutine's namespace is never changed.
func (ns *NetNS) Do(f func() error) error {
	return onLockedThread(func() error {
		orig, err := netns.Get()
		if err != nil {
			return err
		}
		defer orig.Close()
		if err := netns.Set(ns.handle); err != nil {
			return fmt.Errorf("enter netns %s: %w", ns.Name, err)
		}
		ferr := f()
		if err := netns.Set(orig); err != nil {
			// This thread is stuck in the namespace: let it die with
			// the goroutine rather than be reused.
			return fmt.Errorf("leave netns %s: %w", ns.Name, err)
		}
		runtime.UnlockOSThread()
		return ferr
	})
}

// onLockedThread runs f on a new goroutine locked to its OS thread. If f
// does not unlock the thread (because restoring the namespace failed), the
// thread exits with the goroutine.
func onLockedThread(f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		errc <- f()
	}()
	return <-errc
}
