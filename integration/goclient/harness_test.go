package goclient

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

var p4tcdBin string

// TestMain builds the p4tcd binary of the enclosing repository.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "p4tcd-goclient-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	p4tcdBin = filepath.Join(dir, "p4tcd")
	build := exec.Command("go", "build", "-o", p4tcdBin, "./cmd/p4tcd")
	build.Dir = filepath.Join("..", "..")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build p4tcd: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type daemon struct {
	cmd  *exec.Cmd
	addr string
	mu   sync.Mutex
	log  strings.Builder
	done chan error
}

func startDaemon(t testing.TB, args ...string) *daemon {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d := &daemon{addr: l.Addr().String(), done: make(chan error, 1)}
	l.Close()
	d.cmd = exec.Command(p4tcdBin, append([]string{"--grpc-addr", d.addr}, args...)...)
	stderr, err := d.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			d.mu.Lock()
			d.log.WriteString(sc.Text() + "\n")
			d.mu.Unlock()
		}
		d.done <- d.cmd.Wait()
	}()
	t.Cleanup(func() {
		d.stop(syscall.SIGTERM)
		if t.Failed() {
			d.mu.Lock()
			t.Logf("p4tcd log:\n%s", d.log.String())
			d.mu.Unlock()
		}
	})
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if c, err := net.DialTimeout("tcp", d.addr, 200*time.Millisecond); err == nil {
			c.Close()
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("p4tcd not serving on %s", d.addr)
		}
	}
}

func (d *daemon) stop(sig syscall.Signal) error {
	if d.cmd.ProcessState != nil {
		return nil
	}
	_ = d.cmd.Process.Signal(sig)
	select {
	case err := <-d.done:
		d.done <- err
		return err
	case <-time.After(15 * time.Second):
		_ = d.cmd.Process.Kill()
		return fmt.Errorf("p4tcd did not exit on %v", sig)
	}
}

// kill9 kills p4tcd with SIGKILL, as a crash or the OOM killer would:
// nothing of p4tcd runs after it, its pins stay. It waits until the
// process is gone.
func (d *daemon) kill9(t testing.TB) {
	t.Helper()
	if err := d.cmd.Process.Kill(); err != nil {
		t.Fatalf("kill p4tcd: %v", err)
	}
	select {
	case err := <-d.done:
		d.done <- err
	case <-time.After(15 * time.Second):
		t.Fatal("p4tcd still running 15s after SIGKILL")
	}
}

// logged reports whether p4tcd's log has a line containing s.
func (d *daemon) logged(s string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return strings.Contains(d.log.String(), s)
}

// serving waits until p4tcd logs that it serves: the gRPC port listens
// (startDaemon) before a restart's Restore is done.
func (d *daemon) serving(t testing.TB, within time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(within); !d.logged("p4tcd serving"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("p4tcd not serving within %v", within)
		}
	}
}

func (d *daemon) dial(t testing.TB) p4v1.P4RuntimeClient {
	t.Helper()
	conn, err := grpc.NewClient(d.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return p4v1.NewP4RuntimeClient(conn)
}

func within(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
