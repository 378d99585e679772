package nonce

import (
	"encoding/base64"
	"testing"

	"github.com/nats-io/nkeys"
)

func TestVerify(t *testing.T) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := kp.PublicKey()
	n := New()
	sig, _ := kp.Sign([]byte(n))
	for _, enc := range []*base64.Encoding{base64.RawURLEncoding, base64.StdEncoding} {
		if err := Verify(pub, n, enc.EncodeToString(sig)); err != nil {
			t.Errorf("a good signature: %v", err)
		}
	}
	other, _ := nkeys.CreateUser()
	otherPub, _ := other.PublicKey()
	for name, tc := range map[string][3]string{
		"another key":   {otherPub, n, base64.RawURLEncoding.EncodeToString(sig)},
		"another nonce": {pub, New(), base64.RawURLEncoding.EncodeToString(sig)},
		"no nonce":      {pub, "", base64.RawURLEncoding.EncodeToString(sig)},
		"not base64":    {pub, n, "!!!"},
		"not a key":     {"UABC", n, base64.RawURLEncoding.EncodeToString(sig)},
		"truncated":     {pub, n, base64.RawURLEncoding.EncodeToString(sig[:20])},
	} {
		if err := Verify(tc[0], tc[1], tc[2]); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
