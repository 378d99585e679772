// Package certs makes throwaway certificate authorities and the
// certificates they sign, as PEM files, for TLS tests and benchmarks.
package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	// x/crypto/ocsp builds the signed OCSP responses TLS tests staple;
	// the standard library only reads certificates.
	"golang.org/x/crypto/ocsp"
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

	// The CA and an OCSP responder certificate it delegated signing to
	// (extended key usage OCSPSigning), kept to sign OCSP responses.
	ca, responder       *x509.Certificate
	caKey, responderKey *ecdsa.PrivateKey
}

// Options shape the server certificate.
type Options struct {
	// OCSPServers are the OCSP responder URLs the server certificate
	// names (its Authority Information Access extension).
	OCSPServers []string
	// MustStaple adds the TLS feature extension status_request (RFC
	// 7633): the certificate promises an OCSP staple.
	MustStaple bool
}

// Write makes a CA named name and its certificates in dir, valid for a day.
func Write(dir, name string) (*Set, error) { return WriteWith(dir, name, Options{}) }

// mustStapleExt is the TLS feature extension (id-pe-tlsfeature,
// 1.3.6.1.5.5.7.1.24) listing status_request (5): SEQUENCE { INTEGER 5 }.
var mustStapleExt = pkix.Extension{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 1, 24}, Value: []byte{0x30, 0x03, 0x02, 0x01, 0x05}}

// WriteWith is Write with the server certificate shaped by o.
func WriteWith(dir, name string, o Options) (*Set, error) {
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
	s := &Set{ca: caCert, caKey: caKey}
	server := &x509.Certificate{Subject: pkix.Name{CommonName: "localhost"}, DNSNames: []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, OCSPServer: o.OCSPServers}
	if o.MustStaple {
		server.ExtraExtensions = []pkix.Extension{mustStapleExt}
	}
	if s.CA, err = writePEM(dir, "ca.pem", "CERTIFICATE", caDER); err != nil {
		return nil, err
	}
	for _, c := range []struct {
		tmpl        *x509.Certificate
		cert, key   *string
		certF, keyF string
	}{
		{server, &s.ServerCert, &s.ServerKey, "server.pem", "server-key.pem"},
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
	var rdr []byte
	s.responderKey, rdr, err = makeCert(&x509.Certificate{Subject: pkix.Name{CommonName: name + " OCSP responder"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning}}, caCert, caKey)
	if err != nil {
		return nil, err
	}
	if s.responder, err = x509.ParseCertificate(rdr); err != nil {
		return nil, err
	}
	return s, nil
}

// Signer chooses who signs an OCSP response.
type Signer int

const (
	SignedByCA        Signer = iota // the issuing CA itself
	SignedByResponder               // the CA's delegated OCSP responder (OCSPSigning)
	SignedByStranger                // a key the CA never certified: a forged response
)

// OCSPResponse signs an OCSP response (DER) saying the certificate with
// serial has status (ocsp.Good, ocsp.Revoked, ocsp.Unknown) from
// thisUpdate until nextUpdate (zero: no nextUpdate).
func (s *Set) OCSPResponse(serial *big.Int, status int, thisUpdate, nextUpdate time.Time, by Signer) ([]byte, error) {
	tmpl := ocsp.Response{Status: status, SerialNumber: serial, ThisUpdate: thisUpdate, NextUpdate: nextUpdate}
	if status == ocsp.Revoked {
		tmpl.RevokedAt, tmpl.RevocationReason = thisUpdate, ocsp.KeyCompromise
	}
	switch by {
	case SignedByResponder:
		tmpl.Certificate = s.responder
		return ocsp.CreateResponse(s.ca, s.responder, tmpl, s.responderKey)
	case SignedByStranger:
		key, der, err := makeCert(&x509.Certificate{Subject: pkix.Name{CommonName: "stranger"}}, nil, nil)
		if err != nil {
			return nil, err
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, err
		}
		return ocsp.CreateResponse(s.ca, cert, tmpl, key)
	}
	return ocsp.CreateResponse(s.ca, s.ca, tmpl, s.caKey)
}

// Serial is the serial number of the PEM certificate in file.
func Serial(file string) (*big.Int, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("%s holds no PEM certificate", file)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return nil, err
	}
	return c.SerialNumber, nil
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
