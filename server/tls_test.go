package server

import (
	"context"
	"crypto/tls"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/p4tcd/p4tcd/internal/testutil"
	"github.com/p4tcd/p4tcd/translator"
)

// serveTLS runs a server with files' TLS config on a loopback port and
// returns its address.
func serveTLS(t *testing.T, files TLSFiles) string {
	t.Helper()
	cfg, err := files.Config()
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer(append(GRPCOptions(), grpc.Creds(credentials.NewTLS(cfg)))...)
	New(testDevice, translator.NewDevice(translator.NewNoneBackend())).Register(g)
	go g.Serve(lis)
	t.Cleanup(g.Stop)
	return lis.Addr().String()
}

// capabilities calls Capabilities over a fresh connection with creds.
func capabilities(t *testing.T, addr string, creds credentials.TransportCredentials) error {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = p4v1.NewP4RuntimeClient(conn).Capabilities(ctx, &p4v1.CapabilitiesRequest{})
	return err
}

func TestTLS(t *testing.T) {
	pki := testutil.NewPKI(t)
	other := testutil.NewPKI(t) // a CA the server does not trust
	tlsOnly := serveTLS(t, TLSFiles{Cert: pki.ServerCert, Key: pki.ServerKey})
	mutual := serveTLS(t, TLSFiles{Cert: pki.ServerCert, Key: pki.ServerKey, CA: pki.CA})

	tests := []struct {
		name     string
		addr     string
		creds    credentials.TransportCredentials
		wantCode codes.Code
	}{
		{name: "TLS", addr: tlsOnly, creds: credentials.NewTLS(pki.ClientTLS()), wantCode: codes.OK},
		{name: "TLS, plaintext client", addr: tlsOnly, creds: insecure.NewCredentials(), wantCode: codes.Unavailable},
		{name: "TLS, client trusts another CA", addr: tlsOnly, creds: credentials.NewTLS(other.ClientTLS()), wantCode: codes.Unavailable},
		{name: "mTLS", addr: mutual, creds: credentials.NewTLS(pki.ClientTLS(pki.ClientCertificate())), wantCode: codes.OK},
		{name: "mTLS, no client certificate", addr: mutual, creds: credentials.NewTLS(pki.ClientTLS()), wantCode: codes.Unavailable},
		{name: "mTLS, certificate of another CA", addr: mutual, creds: credentials.NewTLS(pki.ClientTLS(other.ClientCertificate())), wantCode: codes.Unavailable},
		{name: "mTLS, plaintext client", addr: mutual, creds: insecure.NewCredentials(), wantCode: codes.Unavailable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := capabilities(t, tc.addr, tc.creds); status.Code(err) != tc.wantCode {
				t.Fatalf("Capabilities: %v, want %v", err, tc.wantCode)
			}
		})
	}
}

func TestTLSFilesErrors(t *testing.T) {
	pki := testutil.NewPKI(t)
	other := testutil.NewPKI(t)
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not PEM\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")
	tests := []struct {
		name  string
		files TLSFiles
		// wantErr is a sentinel the error must wrap, or else a substring.
		wantErr     error
		wantMessage string
	}{
		{name: "no key", files: TLSFiles{Cert: pki.ServerCert}, wantMessage: "certificate and its key"},
		{name: "missing certificate", files: TLSFiles{Cert: missing, Key: pki.ServerKey}, wantErr: fs.ErrNotExist},
		{name: "missing key", files: TLSFiles{Cert: pki.ServerCert, Key: missing}, wantErr: fs.ErrNotExist},
		{name: "garbage certificate", files: TLSFiles{Cert: garbage, Key: pki.ServerKey}, wantMessage: garbage},
		{name: "key of another certificate", files: TLSFiles{Cert: pki.ServerCert, Key: other.ServerKey}, wantMessage: "does not match"},
		{name: "missing CA", files: TLSFiles{Cert: pki.ServerCert, Key: pki.ServerKey, CA: missing}, wantErr: fs.ErrNotExist},
		{name: "CA without certificates", files: TLSFiles{Cert: pki.ServerCert, Key: pki.ServerKey, CA: garbage}, wantErr: ErrNoCertificates},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.files.Config()
			switch {
			case err == nil:
				t.Fatal("Config accepted bad files")
			case tc.wantErr != nil && !errors.Is(err, tc.wantErr):
				t.Fatalf("error %q does not wrap %q", err, tc.wantErr)
			case !strings.Contains(err.Error(), tc.wantMessage):
				t.Fatalf("error %q does not say %q", err, tc.wantMessage)
			}
		})
	}
	if cfg, err := (TLSFiles{Cert: pki.ServerCert, Key: pki.ServerKey, CA: pki.CA}).Config(); err != nil || cfg.ClientAuth != tls.RequireAndVerifyClientCert {
		t.Fatalf("mTLS config: %v, %v", cfg, err)
	}
}
