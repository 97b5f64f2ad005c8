package testutil

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

func TestOwnerPID(t *testing.T) {
	for _, tc := range []struct {
		name, prefix string
		wantPID      int
		wantOK       bool
	}{
		{"p4t-1234-0a1b2c", nsPrefix, 1234, true},
		{"p4t-bpffs-99-ffffff", bpffsPrefix, 99, true},
		{"p4t-bpffs-99-ffffff", nsPrefix, 0, false}, // "bpffs" is no PID
		{"p4t-12345678-sw", nsPrefix, 0, false},     // the go-client tests' names
		{"p4t-12345678-h1", nsPrefix, 0, false},
		{"p4t-7b0f7525", nsPrefix, 0, false}, // names before PIDs were in them
		{"p4t-0-abcdef", nsPrefix, 0, false},
		{"p4t--abcdef", nsPrefix, 0, false},
		{"p4t-+12-abcdef", nsPrefix, 0, false},
		{"p4t-12-ABCDEF", nsPrefix, 0, false},
		{"p4t-12-abcde", nsPrefix, 0, false},
		{"p4t-12-abcdef00", nsPrefix, 0, false}, // not the random part ownedName writes
		{"other-12-abcdef", nsPrefix, 0, false},
	} {
		pid, ok := ownerPID(tc.name, tc.prefix)
		if pid != tc.wantPID || ok != tc.wantOK {
			t.Errorf("ownerPID(%q, %q) = %d, %v; want %d, %v", tc.name, tc.prefix, pid, ok, tc.wantPID, tc.wantOK)
		}
	}
}

func TestUnescapeMount(t *testing.T) {
	for in, want := range map[string]string{
		`/tmp/a`:         "/tmp/a",
		`/tmp/a\040b`:    "/tmp/a b",
		`/tmp/a\134b`:    `/tmp/a\b`,
		`/tmp/trailing\`: `/tmp/trailing\`,
		`/tmp/x\04`:      `/tmp/x\04`,
	} {
		if got := unescapeMount(in); got != want {
			t.Errorf("unescapeMount(%q) = %q, want %q", in, got, want)
		}
	}
}

// deadPID returns the PID of a process that has exited.
func deadPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	if alive(pid) {
		t.Skipf("PID %d was reused at once", pid)
	}
	return pid
}

// TestPrivilegedReap leaves what a dead test process would have left (a
// namespace and a bpffs mount named for it) next to those of a live one
// and a namespace named by another tool, and checks that reap removes the
// dead process's and nothing else.
func TestPrivilegedReap(t *testing.T) {
	Privileged(t)
	dead := deadPID(t)
	deadNS := nsPrefix + strconv.Itoa(dead) + "-abc123"
	liveNS := ownedName(nsPrefix, "def456")
	otherNS := nsPrefix + "12345678-sw"
	for _, name := range []string{deadNS, liveNS, otherNS} {
		err := onLockedThread(func() error {
			orig, err := netns.Get()
			if err != nil {
				return err
			}
			defer orig.Close()
			h, err := netns.NewNamed(name)
			if err != nil {
				return err
			}
			h.Close()
			return netns.Set(orig)
		})
		if err != nil {
			t.Fatalf("create netns %s: %v", name, err)
		}
		t.Cleanup(func() { _ = netns.DeleteNamed(name) })
	}
	tmp := t.TempDir()
	mount := func(name string) string {
		dir := filepath.Join(tmp, name)
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := unix.Mount("bpffs", dir, "bpf", 0, ""); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = unix.Unmount(dir, unix.MNT_DETACH) })
		return dir
	}
	deadFS := mount(bpffsPrefix + strconv.Itoa(dead) + "-0f0f0f")
	liveFS := mount(ownedName(bpffsPrefix, "a0a0a0"))

	if errs := reap(netnsDir, tmp, "/proc/self/mounts"); len(errs) > 0 {
		t.Fatalf("reap: %v", errs)
	}

	exists := func(name string) bool {
		_, err := os.Stat(filepath.Join(netnsDir, name))
		return err == nil
	}
	if exists(deadNS) {
		t.Errorf("namespace %s of dead PID %d survived", deadNS, dead)
	}
	for _, name := range []string{liveNS, otherNS} {
		if !exists(name) {
			t.Errorf("namespace %s was removed", name)
		}
	}
	mounts, err := bpffsMounts("/proc/self/mounts")
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(mounts, deadFS) {
		t.Errorf("bpffs %s of dead PID %d is still mounted", deadFS, dead)
	}
	if _, err := os.Stat(deadFS); !os.IsNotExist(err) {
		t.Errorf("directory %s survived: %v", deadFS, err)
	}
	if !slices.Contains(mounts, liveFS) {
		t.Errorf("bpffs %s of this process was unmounted", liveFS)
	}
}
