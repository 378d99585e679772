// Package certs makes throwaway certificate authorities and the
// certificates they sign, as PEM files, for TLS tests and benchmarks.
package certs

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
	"time"
)

// Set is a CA and the certificates it signed, as PEM files: a server
// certificate for 127.0.0.1 and localhost, and a client certificate
// (subject CN=client, email address client@example.com).
type Set struct {
	CA                    string // the CA certificate
	ServerCert, ServerKey string
	ClientCert, ClientKey string
	// An expired client certificate of the same CA (CN=expired).
	ExpiredCert, ExpiredKey string
}

// Write makes a CA named name and its certificates in dir, valid for a day.
func Write(dir, name string) (*Set, error) {
	caKey, caDER, err := makeCert(&x509.Certificate{
		Subject: pkix.Name{CommonName: name + " CA"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}, nil, nil)
	if err != nil {
		return nil, err
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	s := &Set{}
	if s.CA, err = writePEM(dir, "ca.pem", "CERTIFICATE", caDER); err != nil {
		return nil, err
	}
	for _, c := range []struct {
		tmpl        *x509.Certificate
		cert, key   *string
		certF, keyF string
	}{
		{&x509.Certificate{Subject: pkix.Name{CommonName: "localhost"}, DNSNames: []string{"localhost"},
			IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}, &s.ServerCert, &s.ServerKey, "server.pem", "server-key.pem"},
		{&x509.Certificate{Subject: pkix.Name{CommonName: "expired"}, NotAfter: time.Now().Add(-time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}},
			&s.ExpiredCert, &s.ExpiredKey, "expired.pem", "expired-key.pem"},
		{&x509.Certificate{Subject: pkix.Name{CommonName: "client"}, EmailAddresses: []string{"client@example.com"},
			KeyUsage:    x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, &s.ClientCert, &s.ClientKey, "client.pem", "client-key.pem"},
	} {
		key, der, err := makeCert(c.tmpl, caCert, caKey)
		if err != nil {
			return nil, err
		}
		if *c.cert, err = writePEM(dir, c.certF, "CERTIFICATE", der); err != nil {
			return nil, err
		}
		kder, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			return nil, err
		}
		if *c.key, err = writePEM(dir, c.keyF, "EC PRIVATE KEY", kder); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// makeCert signs tmpl with the parent's key (itself when parent is nil).
func makeCert(tmpl, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*ecdsa.PrivateKey, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		return nil, nil, err
	}
	tmpl.SerialNumber = serial
	tmpl.NotBefore = time.Now().Add(-2 * time.Hour)
	if tmpl.NotAfter.IsZero() {
		tmpl.NotAfter = time.Now().Add(24 * time.Hour)
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	return key, der, err
}

func writePEM(dir, name, typ string, der []byte) (string, error) {
	path := filepath.Join(dir, name)
	return path, os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600)
}
