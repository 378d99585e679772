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
