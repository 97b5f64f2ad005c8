package integration

import (
	"strings"
	"testing"
	"time"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/p4tcd/p4tcd/internal/testutil"
)

// The daemon with --tls-cert, --tls-key and --tls-ca serves clients with a
// certificate its CA signed and nobody else.
func TestMutualTLS(t *testing.T) {
	pki := testutil.NewPKI(t)
	other := testutil.NewPKI(t)
	d := startDaemon(t, "--datapath", "none", "--tls-cert", pki.ServerCert, "--tls-key", pki.ServerKey, "--tls-ca", pki.CA)
	tests := []struct {
		name     string
		creds    credentials.TransportCredentials
		wantCode codes.Code
	}{
		{name: "client certificate", creds: credentials.NewTLS(pki.ClientTLS(pki.ClientCertificate())), wantCode: codes.OK},
		{name: "no client certificate", creds: credentials.NewTLS(pki.ClientTLS()), wantCode: codes.Unavailable},
		{name: "certificate of another CA", creds: credentials.NewTLS(pki.ClientTLS(other.ClientCertificate())), wantCode: codes.Unavailable},
		{name: "plaintext", creds: insecure.NewCredentials(), wantCode: codes.Unavailable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := d.dialWith(t, tc.creds).Capabilities(within(t, 10*time.Second), &p4v1.CapabilitiesRequest{})
			if status.Code(err) != tc.wantCode {
				t.Fatalf("Capabilities: %v, want %v", err, tc.wantCode)
			}
		})
	}
	if !strings.Contains(d.logs(), "mutual TLS") {
		t.Errorf("the log does not say mutual TLS is on:\n%s", d.logs())
	}
}
