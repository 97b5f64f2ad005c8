package testutil

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Kernel resources a test creates are released by t.Cleanup, which never
// runs when the test process dies (a panic on another goroutine, a kill,
// a timeout). So that such a death leaks nothing for long, every
// namespace and bpffs these helpers create carries the creating process's
// PID in its name, and the first helper call of a test process removes
// those whose process is gone. Only dead owners are reaped: tests of
// other packages run concurrently, and their resources are alive.

// Name prefixes of what the helpers create: p4t-<pid>-<random>.
const (
	nsPrefix    = "p4t-"
	bpffsPrefix = "p4t-bpffs-"
)

// netnsDir is where `ip netns` keeps named namespaces.
const netnsDir = "/run/netns"

var reapOnce sync.Once

// reapStale removes, once per test process, the namespaces and bpffs
// mounts left by test processes that died. Failures are reported to tb as
// log lines: a leftover must not fail an unrelated test.
func reapStale(tb testing.TB) {
	reapOnce.Do(func() {
		for _, err := range reap(netnsDir, os.TempDir(), "/proc/self/mounts") {
			tb.Logf("reap stale test resources: %v", err)
		}
	})
}

// reap removes the namespaces under nsDir and the bpffs mounts under
// tmpDir (as listed in mountsFile) whose owner process is gone, and
// returns what it could not remove.
func reap(nsDir, tmpDir, mountsFile string) []error {
	var errs []error
	ents, err := os.ReadDir(nsDir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, fmt.Errorf("list namespaces: %w", err))
	}
	for _, e := range ents {
		if pid, ok := ownerPID(e.Name(), nsPrefix); ok && !alive(pid) {
			if err := netns.DeleteNamed(e.Name()); err != nil {
				errs = append(errs, fmt.Errorf("delete netns %s: %w", e.Name(), err))
			}
		}
	}
	mounts, err := bpffsMounts(mountsFile)
	if err != nil {
		errs = append(errs, err)
	}
	for _, m := range mounts {
		if filepath.Dir(m) != filepath.Clean(tmpDir) {
			continue
		}
		if pid, ok := ownerPID(filepath.Base(m), bpffsPrefix); ok && !alive(pid) {
			if err := unix.Unmount(m, unix.MNT_DETACH); err != nil {
				errs = append(errs, fmt.Errorf("unmount %s: %w", m, err))
				continue
			}
			if err := os.RemoveAll(m); err != nil {
				errs = append(errs, fmt.Errorf("remove %s: %w", m, err))
			}
		}
	}
	return errs
}

// ownerPID parses the PID out of a name made by ownedName with prefix. It
// is strict (digits, a dash, then exactly the random part ownedName
// writes) so that names other tools give with the same prefix, such as
// the go-client tests' p4t-<hex>-sw, are never taken for ours.
func ownerPID(name, prefix string) (int, bool) {
	rest, ok := strings.CutPrefix(name, prefix)
	if !ok {
		return 0, false
	}
	p, random, ok := strings.Cut(rest, "-")
	if !ok || len(random) != randomLen || strings.Trim(random, "0123456789abcdef") != "" {
		return 0, false
	}
	for _, c := range p {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	pid, err := strconv.Atoi(p)
	return pid, err == nil && pid > 0
}

// randomLen is the length of the random part of owned names: 3 random
// bytes in hex (randomHex).
const randomLen = 6

// randomHex returns the random part of an owned name.
func randomHex(tb testing.TB) string {
	var b [randomLen / 2]byte
	if _, err := rand.Read(b[:]); err != nil {
		tb.Fatal(err)
	}
	return hex.EncodeToString(b[:])
}

// ownedName names a resource of this process: prefix, PID, then random
// hex so that tests of one process never collide.
func ownedName(prefix, random string) string {
	return prefix + strconv.Itoa(os.Getpid()) + "-" + random
}

// alive reports whether a process with this PID exists. A reused PID
// keeps a dead owner's leftovers until that process is gone too: a leak
// for a while, never the removal of a live test's resources.
func alive(pid int) bool {
	err := unix.Kill(pid, 0)
	return err == nil || errors.Is(err, unix.EPERM)
}

// bpffsMounts lists the mount points of bpf filesystems in a mounts file
// (the format of /proc/self/mounts).
func bpffsMounts(mountsFile string) ([]string, error) {
	f, err := os.Open(mountsFile)
	if err != nil {
		return nil, fmt.Errorf("read mounts: %w", err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 3 && fields[2] == "bpf" {
			out = append(out, unescapeMount(fields[1]))
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read mounts: %w", err)
	}
	return out, nil
}

// unescapeMount undoes the octal escapes (\040 for a space…) of a path in
// a mounts file.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// BPFFS mounts a private bpf filesystem for the test (the `mount -t bpf`
// of a pin directory) and returns its path; it is unmounted and removed
// at cleanup, or by the next test process if this one dies first.
func BPFFS(tb testing.TB) string {
	tb.Helper()
	reapStale(tb)
	dir := filepath.Join(os.TempDir(), ownedName(bpffsPrefix, randomHex(tb)))
	if err := os.Mkdir(dir, 0o700); err != nil {
		tb.Fatalf("create bpffs directory: %v", err)
	}
	if err := unix.Mount("bpffs", dir, "bpf", 0, ""); err != nil {
		os.Remove(dir)
		tb.Fatalf("mount bpffs: %v", err)
	}
	tb.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			tb.Errorf("unmount bpffs %s: %v", dir, err)
			return
		}
		if err := os.RemoveAll(dir); err != nil {
			tb.Errorf("remove %s: %v", dir, err)
		}
	})
	return dir
}
