package main

import (
	"context"
	"io"
	"net"
	"strings"
	"testing"
)

func TestParseFlagsErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		// wantErr is a substring of the error; "" means no error.
		wantErr string
	}{
		{name: "defaults", args: nil},
		{name: "device id zero", args: []string{"--device-id", "0"}, wantErr: "non-zero"},
		{name: "TLS", args: []string{"--tls-cert", "c.pem", "--tls-key", "k.pem"}},
		{name: "mutual TLS", args: []string{"--tls-cert", "c.pem", "--tls-key", "k.pem", "--tls-ca", "ca.pem"}},
		{name: "certificate without key", args: []string{"--tls-cert", "c.pem"}, wantErr: "--tls-cert needs --tls-key"},
		{name: "key without certificate", args: []string{"--tls-key", "k.pem"}, wantErr: "--tls-key needs --tls-cert"},
		{name: "CA alone", args: []string{"--tls-ca", "ca.pem"}, wantErr: "--tls-ca needs --tls-cert"},
		{name: "stray argument", args: []string{"extra"}, wantErr: "unexpected arguments"},
		{name: "GC target", args: []string{"--gc-percent", "400"}},
		{name: "GC target zero", args: []string{"--gc-percent", "0"}, wantErr: "positive percentage"},
		{name: "GC target off", args: []string{"--gc-percent", "off"}, wantErr: "positive percentage"},
		{name: "heap floor", args: []string{"--gc-min-heap", "128MiB"}},
		{name: "no heap floor", args: []string{"--gc-min-heap", "0"}},
		{name: "heap floor without unit", args: []string{"--gc-min-heap", "-5"}, wantErr: "size such as 64MiB"},
		{name: "heap floor with a bad unit", args: []string{"--gc-min-heap", "64Mb"}, wantErr: "size such as 64MiB"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseFlags(tc.args, io.Discard)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("parseFlags(%q): %v", tc.args, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("parseFlags(%q): %v, want an error saying %q", tc.args, err, tc.wantErr)
			}
		})
	}
}

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want uint64
		ok   bool
	}{
		{"0", 0, true}, {"4096", 4096, true}, {"512B", 512, true}, {"8KiB", 8 << 10, true}, {"8K", 8 << 10, true},
		{"64MiB", 64 << 20, true}, {"64M", 64 << 20, true}, {"2GiB", 2 << 30, true},
		{"", 0, false}, {"MiB", 0, false}, {"1.5GiB", 0, false}, {"64Mi", 0, false}, {"64mb", 0, false},
		{"18446744073709551615GiB", 0, false},
	} {
		got, err := parseSize(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parseSize(%q) = %d, %v; want %d, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestRunRefusesBadTLSFiles(t *testing.T) {
	err := run(context.Background(), []string{"--datapath", "none", "--grpc-addr", "127.0.0.1:0",
		"--tls-cert", t.TempDir() + "/missing.pem", "--tls-key", "k.pem"}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "missing.pem") {
		t.Fatalf("run with a missing certificate: %v, want an error naming the file", err)
	}
}

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:9559": true, "[::1]:9559": true, "127.3.4.5:1": true,
		"0.0.0.0:9559": false, "[::]:9559": false, "192.0.2.1:9559": false,
	} {
		a, err := net.ResolveTCPAddr("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		if got := isLoopback(a); got != want {
			t.Errorf("isLoopback(%s) = %v, want %v", addr, got, want)
		}
	}
}

func TestMetricsListenAddr(t *testing.T) {
	tests := []struct {
		in, want string
		wantErr  bool
	}{
		{in: "", want: ""},
		{in: "9100", want: "127.0.0.1:9100"},
		{in: ":9100", want: "127.0.0.1:9100"},
		{in: "127.0.0.1:9100", want: "127.0.0.1:9100"},
		{in: "[::1]:9100", want: "[::1]:9100"},
		{in: "0.0.0.0:9100", want: "0.0.0.0:9100"},
		{in: "localhost", wantErr: true},
		{in: "99999", wantErr: true},
	}
	for _, tc := range tests {
		got, err := metricsListenAddr(tc.in)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("metricsListenAddr(%q) = %q, %v; want %q (error: %v)", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}
