// Package testutil holds helpers shared by p4tcd's tests: the gate for
// privileged tests, throwaway network namespaces and throwaway certificate
// authorities.
package testutil

import (
	"os"
	"strings"
	"testing"
)

// InCI reports whether the tests run in CI (CI=true), where a missing
// privilege is a failure rather than a reason to skip.
func InCI() bool {
	v := strings.ToLower(os.Getenv("CI"))
	return v == "true" || v == "1"
}

// Privileged gates a test that needs root (BPF, netlink, namespaces). Its
// name must start with TestPrivileged so `-run`/`-skip TestPrivileged`
// selects it. Outside CI a missing privilege skips the test; in CI it
// fails it.
func Privileged(tb testing.TB) {
	tb.Helper()
	if !strings.HasPrefix(tb.Name(), "TestPrivileged") && !strings.HasPrefix(tb.Name(), "BenchmarkPrivileged") {
		tb.Fatalf("privileged test %s must be named TestPrivileged*", tb.Name())
	}
	if os.Geteuid() == 0 {
		return
	}
	if InCI() {
		tb.Fatalf("%s needs root, and CI must run privileged tests (CI=true)", tb.Name())
	}
	tb.Skipf("%s needs root", tb.Name())
}
