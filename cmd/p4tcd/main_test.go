package main

import (
	"bytes"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/p4tcd/p4tcd/ebpfdp"
)

// TestDatapathWithoutP4TC checks the datapath choice on a kernel without
// P4TC (the machines p4tcd is built on): p4tc fails at start with a clear
// message, auto falls back. The probe sends only GET requests, which need
// no privilege.
func TestDatapathWithoutP4TC(t *testing.T) {
	if os.Getenv("P4TCD_P4TC_KERNEL") == "1" {
		t.Skip("this kernel has P4TC")
	}
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	cfg, err := parseFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.datapath != "auto" || cfg.p4tcABI != "auto" {
		t.Fatalf("defaults: datapath %q, p4tc-abi %q; want auto, auto", cfg.datapath, cfg.p4tcABI)
	}
	b, err := newBackend(cfg, log)
	if err != nil {
		t.Fatalf("auto: %v", err)
	}
	defer b.Close()
	if _, ok := b.(*ebpfdp.Backend); !ok || !strings.Contains(logs.String(), "no P4TC") {
		t.Fatalf("auto without P4TC: backend %T, log %q; want the eBPF datapath and a note why", b, logs.String())
	}

	cfg, _ = parseFlags([]string{"--datapath", "p4tc"}, io.Discard)
	if _, err := newBackend(cfg, log); err == nil || !strings.Contains(err.Error(), "this kernel has no P4TC") {
		t.Fatalf("--datapath p4tc: %v; want a clear refusal", err)
	}
	cfg, _ = parseFlags([]string{"--datapath", "p4tc", "--p4tc-abi", "v99"}, io.Discard)
	if _, err := newBackend(cfg, log); err == nil || !strings.Contains(err.Error(), "--p4tc-abi") {
		t.Fatalf("--p4tc-abi v99: %v", err)
	}
	cfg, _ = parseFlags([]string{"--datapath", "none", "--port", "1=lo"}, io.Discard)
	if _, err := newBackend(cfg, log); err == nil {
		t.Fatal("--datapath none with --port: want an error (nothing forwards)")
	}
}
