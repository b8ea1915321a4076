package testenv

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// PKI is a throwaway certificate authority and a server certificate it
// signed for 127.0.0.1 and localhost, written as PEM files, for tests of
// TLS on either side of the exporter.
type PKI struct {
	CAFile   string // the CA certificate, for ca_file settings
	CertFile string // the server certificate
	KeyFile  string // the server key
	// CA trusts the server certificate; OtherCA is a CA that did not sign it.
	CA, OtherCA *x509.CertPool
}

// NewPKI makes a PKI valid for an hour and writes its files into dir.
func NewPKI(t testing.TB, dir string) PKI {
	t.Helper()
	ca, caKey := certificate(t, &x509.Certificate{Subject: pkix.Name{CommonName: "breakwater test CA"},
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}, nil, nil)
	other, _ := certificate(t, &x509.Certificate{Subject: pkix.Name{CommonName: "someone else's CA"},
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}, nil, nil)
	server, serverKey := certificate(t, &x509.Certificate{Subject: pkix.Name{CommonName: "breakwater"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"}}, ca, caKey)
	keyDER, err := x509.MarshalECPrivateKey(serverKey)
	if err != nil {
		t.Fatal(err)
	}
	p := PKI{CAFile: filepath.Join(dir, "ca.crt"), CertFile: filepath.Join(dir, "tls.crt"), KeyFile: filepath.Join(dir, "tls.key"),
		CA: x509.NewCertPool(), OtherCA: x509.NewCertPool()}
	writePEM(t, p.CAFile, "CERTIFICATE", ca.Raw)
	writePEM(t, p.CertFile, "CERTIFICATE", server.Raw)
	writePEM(t, p.KeyFile, "EC PRIVATE KEY", keyDER)
	p.CA.AddCert(ca)
	p.OtherCA.AddCert(other)
	return p
}

// certificate makes a P-256 key and a certificate from tmpl, signed by
// parent (self-signed when parent is nil).
func certificate(t testing.TB, tmpl, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SerialNumber = serial
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Minute), time.Now().Add(time.Hour)
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

func writePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}
