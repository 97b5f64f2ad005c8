package server

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// ErrNoCertificates: a PEM file that should hold certificates holds none.
var ErrNoCertificates = errors.New("no PEM certificates")

// TLSFiles names the PEM files that secure the gRPC listener (P4Runtime
// "Security considerations": TLS, and client authentication with it).
type TLSFiles struct {
	// Cert is the server's certificate chain, leaf first.
	Cert string
	// Key is the private key of the leaf certificate.
	Key string
	// CA, when set, holds the certificates that client certificates must
	// chain to; every client must then present one (mutual TLS).
	CA string
}

// Config loads the files into a server tls.Config (TLS 1.2 or later), to be
// used with credentials.NewTLS. With a CA, clients without a certificate
// the CA signed fail the handshake.
func (f TLSFiles) Config() (*tls.Config, error) {
	if f.Cert == "" || f.Key == "" {
		return nil, errors.New("load TLS certificate: TLS needs both a certificate and its key")
	}
	cert, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		return nil, fmt.Errorf("load TLS certificate %s with key %s: %w", f.Cert, f.Key, err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if f.CA == "" {
		return cfg, nil
	}
	pem, err := os.ReadFile(f.CA)
	if err != nil {
		return nil, fmt.Errorf("load TLS client CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("load TLS client CA %s: %w", f.CA, ErrNoCertificates)
	}
	cfg.ClientCAs = pool
	cfg.ClientAuth = tls.RequireAndVerifyClientCert
	return cfg, nil
}
