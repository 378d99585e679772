// Package nonce is the server nonce of the NATS CONNECT handshake: the
// random string a server puts in INFO, and the check of the signature an
// NKey or JWT user's client returns in CONNECT "sig".
package nonce

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"

	"github.com/nats-io/nkeys"
)

// New returns a nonce as nats-server makes them: 11 random bytes,
// base64url.
func New() string {
	var b [11]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// Verify checks that sig is nonce signed by the seed of the public nkey
// pub. Clients encode it base64url without padding; nats-server also
// accepts standard encoding.
func Verify(pub, nonce, sig string) error {
	if nonce == "" {
		return fmt.Errorf("no nonce was sent to this client")
	}
	raw, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil {
		raw, err = base64.StdEncoding.DecodeString(sig)
	}
	if err != nil {
		return fmt.Errorf("signature is not base64")
	}
	kp, err := nkeys.FromPublicKey(pub)
	if err != nil {
		return fmt.Errorf("not a valid public nkey")
	}
	if err := kp.Verify([]byte(nonce), raw); err != nil {
		return fmt.Errorf("signature does not verify")
	}
	return nil
}
