package testkit

import (
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/switchyard-io/switchyard/pkg/certs"
)

// OCSPBehaviour is how an OCSPResponder answers.
type OCSPBehaviour int

const (
	OCSPAnswer      OCSPBehaviour = iota // a signed response with the set status
	OCSPUnreachable                      // the connection is dropped unanswered
	OCSPHTTPError                        // HTTP 500
	OCSPGarbage                          // HTTP 200 with bytes that are no OCSP response
	OCSPHang                             // never answers (until the caller gives up)
)

// OCSPResponder is an OCSP responder over HTTP (POST and GET, RFC 6960
// appendix A) for a Certs' CA, answering for any serial with the status
// and validity the test sets, or misbehaving as told.
type OCSPResponder struct {
	URL string

	certs    *Certs
	quit     chan struct{}
	requests atomic.Int64

	mu        sync.Mutex
	status    int
	validFor  time.Duration // 0: no nextUpdate
	signer    certs.Signer
	behaviour OCSPBehaviour
}

// NewOCSPResponder starts a responder that says "good", valid for an hour,
// signed by the CA. It is closed when the test ends.
func NewOCSPResponder(tb testing.TB, c *Certs) *OCSPResponder {
	tb.Helper()
	r := startOCSPResponder(tb)
	r.mu.Lock()
	r.certs = c
	r.mu.Unlock()
	return r
}

func startOCSPResponder(tb testing.TB) *OCSPResponder {
	r := &OCSPResponder{quit: make(chan struct{}), status: ocsp.Good, validFor: time.Hour}
	srv := httptest.NewServer(http.HandlerFunc(r.serve))
	r.URL = srv.URL
	tb.Cleanup(func() { close(r.quit); srv.Close() })
	return r
}

// Set makes the responder answer status (ocsp.Good, ocsp.Revoked,
// ocsp.Unknown) valid for validFor (0: without nextUpdate), signed by by.
func (r *OCSPResponder) Set(status int, validFor time.Duration, by certs.Signer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.status, r.validFor, r.signer, r.behaviour = status, validFor, by, OCSPAnswer
}

// Misbehave makes the responder answer as b says from now on.
func (r *OCSPResponder) Misbehave(b OCSPBehaviour) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.behaviour = b
}

// Requests is how many requests the responder has had.
func (r *OCSPResponder) Requests() int64 { return r.requests.Load() }

func (r *OCSPResponder) serve(w http.ResponseWriter, req *http.Request) {
	r.requests.Add(1)
	r.mu.Lock()
	c, status, validFor, signer, behaviour := r.certs, r.status, r.validFor, r.signer, r.behaviour
	r.mu.Unlock()
	switch behaviour {
	case OCSPUnreachable:
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
				return
			}
		}
		panic(http.ErrAbortHandler)
	case OCSPHTTPError:
		http.Error(w, "responder broken", http.StatusInternalServerError)
		return
	case OCSPGarbage:
		w.Header().Set("Content-Type", "application/ocsp-response")
		w.Write([]byte("this is not an OCSP response"))
		return
	case OCSPHang:
		select {
		case <-req.Context().Done():
		case <-r.quit:
		}
		return
	}
	var der []byte
	if req.Method == http.MethodPost {
		der, _ = io.ReadAll(io.LimitReader(req.Body, 1<<16))
	} else {
		der, _ = base64.StdEncoding.DecodeString(strings.TrimPrefix(req.URL.Path, "/"))
	}
	ocspReq, err := ocsp.ParseRequest(der)
	if err != nil {
		w.Write(ocsp.MalformedRequestErrorResponse)
		return
	}
	now := time.Now().Add(-time.Second)
	var next time.Time
	if validFor > 0 {
		next = now.Add(validFor)
	}
	resp, err := c.OCSPResponse(ocspReq.SerialNumber, status, now, next, signer)
	if err != nil {
		w.Write(ocsp.InternalErrorErrorResponse)
		return
	}
	w.Header().Set("Content-Type", "application/ocsp-response")
	w.Write(resp)
}

// NewOCSPCerts makes a CA and its certificates whose server certificate
// names an OCSP responder of that CA (started here, answering "good"),
// with the must-staple extension when mustStaple is set.
func NewOCSPCerts(tb testing.TB, name string, mustStaple bool) (*Certs, *OCSPResponder) {
	tb.Helper()
	// The responder needs the CA to sign, and the certificate needs the
	// responder's URL: start it first and hand it the certificates after.
	r := startOCSPResponder(tb)
	c, err := certs.WriteWith(tb.TempDir(), name, certs.Options{OCSPServers: []string{r.URL}, MustStaple: mustStaple})
	if err != nil {
		tb.Fatalf("testkit: making certificates: %v", err)
	}
	r.mu.Lock()
	r.certs = c
	r.mu.Unlock()
	return c, r
}
