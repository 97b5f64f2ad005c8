package integration

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
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// p4tcdBin is the p4tcd binary built once for the package's tests.
var p4tcdBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "p4tcd-it-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	p4tcdBin = filepath.Join(dir, "p4tcd")
	out, err := exec.Command("go", "build", "-o", p4tcdBin, "github.com/p4tcd/p4tcd/cmd/p4tcd").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build p4tcd: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// daemon is a running p4tcd process.
type daemon struct {
	cmd  *exec.Cmd
	addr string
	mu   sync.Mutex
	log  strings.Builder
	done chan error
}

// freeAddr returns a loopback address with a free port.
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startDaemon runs p4tcd with args (plus --grpc-addr) and waits until it
// serves. It is stopped with SIGTERM at cleanup unless the test stops it.
func startDaemon(t testing.TB, args ...string) *daemon {
	t.Helper()
	d := &daemon{addr: freeAddr(t), done: make(chan error, 1)}
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
			t.Logf("p4tcd log:\n%s", d.logs())
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", d.addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return d
		}
		select {
		case err := <-d.done:
			t.Fatalf("p4tcd exited: %v\n%s", err, d.logs())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("p4tcd not serving on %s\n%s", d.addr, d.logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (d *daemon) logs() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.log.String()
}

// stop signals the daemon and waits for it to exit; it returns the exit
// error (nil for a clean exit).
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

// dial connects a gRPC client to the daemon.
func (d *daemon) dial(t testing.TB) p4v1.P4RuntimeClient {
	t.Helper()
	return d.dialWith(t, insecure.NewCredentials())
}

// dialWith connects a gRPC client to the daemon with transport credentials.
func (d *daemon) dialWith(t testing.TB, creds credentials.TransportCredentials) p4v1.P4RuntimeClient {
	t.Helper()
	conn, err := grpc.NewClient(d.addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return p4v1.NewP4RuntimeClient(conn)
}

// within bounds a test step in time.
func within(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
