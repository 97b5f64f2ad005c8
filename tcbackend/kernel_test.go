package tcbackend

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/p4tcd/p4tcd/internal/testutil"
	"github.com/p4tcd/p4tcd/translator/translatortest"
)

// Tests against a real P4TC kernel. They run only where
// P4TCD_P4TC_KERNEL=1 says the kernel has P4TC (`make test-p4tc`); none of
// the machines tcbackend was written on has one, so they have never run.

// p4tcKernel reports whether the tests may assume a P4TC kernel.
func p4tcKernel() bool { return os.Getenv("P4TCD_P4TC_KERNEL") == "1" }

// requireP4TCKernel gates a test on a P4TC kernel and root, and returns
// options for a fresh namespace: P4TCD_P4TC_ABI forces an ABI (as
// --p4tc-abi does) when the probe cannot tell.
func requireP4TCKernel(t *testing.T) Options {
	t.Helper()
	testutil.Privileged(t)
	if !p4tcKernel() {
		t.Skip("set P4TCD_P4TC_KERNEL=1 on a kernel with P4TC (make test-p4tc)")
	}
	abi, err := ParseABI(os.Getenv("P4TCD_P4TC_ABI"))
	if err != nil {
		t.Fatal(err)
	}
	ns := testutil.NewNetNS(t)
	return Options{ABI: abi, NetNS: ns.Handle(), Timeout: 10 * time.Second}
}

func TestPrivilegedP4TCKernelProbe(t *testing.T) {
	o := requireP4TCKernel(t)
	if err := Probe(o); err != nil {
		t.Fatalf("Probe: %v", err)
	}
	b, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	t.Logf("kernel speaks P4TC ABI %v", b.ABI())
}

// TestPrivilegedP4TCKernelSamples creates each sample's template in a
// fresh namespace, writes its entries, reads them back, and deletes the
// pipeline.
func TestPrivilegedP4TCKernelSamples(t *testing.T) {
	for _, name := range []string{"l2fwd", "router", "acl"} {
		t.Run(name, func(t *testing.T) {
			b, err := New(requireP4TCKernel(t))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { b.Close() })
			h := translatortest.New(t, sample(t, name))
			if err := b.Commit(h.Config); err != nil {
				t.Fatalf("Commit: %v", err)
			}
			defer func() {
				if err := b.DeletePipeline(); err != nil {
					t.Errorf("DeletePipeline: %v", err)
				}
			}()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if _, err := b.Events(ctx); err != nil {
				t.Fatalf("Events: %v", err)
			}
			for i, blk := range entryBlocks(t, "testdata/samples/"+name+"/"+name+".entries") {
				ops := h.Ops(t, blk.update)
				n, err := b.Apply(ops)
				if err != nil || n != len(ops) {
					t.Fatalf("block %d: Apply: %d, %v", i, n, err)
				}
			}
			for _, tbl := range h.Config.TableOrder {
				es, saved, err := b.Dump(tbl.ID)
				if err != nil {
					t.Fatalf("Dump %s: %v", tbl.Name, err)
				}
				t.Logf("table %s: %d entries: %+v", tbl.Name, len(es), saved)
			}
		})
	}
}
