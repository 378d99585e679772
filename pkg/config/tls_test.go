package config

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestConfigTLS(t *testing.T) {
	c, err := Parse(`tls { cert_file: "s.pem", key_file: "s.key", ca_file: "ca.pem", verify: true, timeout: 0.5, handshake_first: true, min_version: "1.3" }`)
	require.NoError(t, err)
	require.Equal(t, &TLS{CertFile: "s.pem", KeyFile: "s.key", CAFile: "ca.pem", Verify: true,
		Timeout: 500 * time.Millisecond, HandshakeFirst: true, MinVersion: "1.3"}, c.TLS)
	c, err = Parse(`tls { cert_file: "s.pem", key_file: "s.key", timeout: 3 }`)
	require.NoError(t, err)
	require.Equal(t, 3*time.Second, c.TLS.Timeout)
	c, err = Parse(`tls { cert_file: "s.pem", key_file: "s.key", ca_file: "ca.pem", verify_and_map: true }`)
	require.NoError(t, err)
	require.True(t, c.TLS.Verify && c.TLS.VerifyAndMap, "verify_and_map verifies")
	c, err = Parse(`tls { cert_file: "s.pem", key_file: "s.key", pinned_certs: ["AB12", "cd34"] }`)
	require.NoError(t, err)
	require.Equal(t, []string{"ab12", "cd34"}, c.TLS.PinnedCerts)
	c, err = Parse(`port: 4222`)
	require.NoError(t, err)
	require.Nil(t, c.TLS, "no block: plain TCP")
}

func TestConfigOCSP(t *testing.T) {
	for text, want := range map[string]*OCSP{
		`ocsp: true`:                           {Mode: OCSPAuto},
		`ocsp: false`:                          {Mode: OCSPNever},
		`ocsp { mode: Always }`:                {Mode: OCSPAlways},
		`ocsp { mode: must, url: "http://r" }`: {Mode: OCSPMust, URLs: []string{"http://r"}},
		// nats-server fails to read a urls list (v2.15.2); we take it.
		`ocsp { urls: ["http://a", "http://b"] }`: {Mode: OCSPAuto, URLs: []string{"http://a", "http://b"}},
		`port: 4222`: nil,
	} {
		c, err := Parse(text)
		require.NoError(t, err, text)
		require.Equal(t, want, c.OCSP, text)
	}
	for text, says := range map[string]string{
		`ocsp { mode: sometimes }`: `"sometimes" is not an OCSP mode`,
		`ocsp { refresh: 10 }`:     "refresh",
		`ocsp: "yes"`:              "ocsp",
		`ocsp_cache: true`:         "ocsp_peer",
		`tls { cert_file: "a", key_file: "b", ocsp_peer: true }`: "OCSP checks of client certificates",
	} {
		_, err := Parse(text)
		require.ErrorContains(t, err, says, text)
	}
}
