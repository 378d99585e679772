package testkit

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nkeys"
	"github.com/stretchr/testify/require"
)

// Operator is an operator with a system account, as `nsc init` makes one,
// for operator-mode (JWT) tests: it issues accounts and users the way nsc
// does and writes the configuration that trusts it.
type Operator struct {
	t    *testing.T
	Dir  string        // where the operator JWT and .creds files are written
	KP   nkeys.KeyPair // the operator's key
	File string        // the operator JWT's file
	Sys  *IssuedAccount
}

// IssuedAccount is an account the operator signed.
type IssuedAccount struct {
	KP     nkeys.KeyPair
	Pub    string
	Claims *jwt.AccountClaims // edit, then Resign
	Token  string             // the signed JWT
}

// NewOperator makes an operator and its system account "SYS".
func NewOperator(t *testing.T) *Operator {
	t.Helper()
	op, err := nkeys.CreateOperator()
	require.NoError(t, err)
	opPub, _ := op.PublicKey()
	o := &Operator{t: t, Dir: t.TempDir(), KP: op}
	o.Sys = o.Account("SYS", nil)
	oc := jwt.NewOperatorClaims(opPub)
	oc.Name = "OP"
	oc.SystemAccount = o.Sys.Pub
	token, err := oc.Encode(op)
	require.NoError(t, err)
	o.File = filepath.Join(o.Dir, "op.jwt")
	require.NoError(t, os.WriteFile(o.File, []byte(token), 0o600))
	return o
}

// Account issues an account JWT signed by the operator (edit, when not
// nil, changes the claims first).
func (o *Operator) Account(name string, edit func(*jwt.AccountClaims)) *IssuedAccount {
	o.t.Helper()
	kp, err := nkeys.CreateAccount()
	require.NoError(o.t, err)
	pub, _ := kp.PublicKey()
	ac := jwt.NewAccountClaims(pub)
	ac.Name = name
	a := &IssuedAccount{KP: kp, Pub: pub, Claims: ac}
	if edit != nil {
		edit(ac)
	}
	o.Resign(a)
	return a
}

// Resign encodes the account's (edited) claims again.
func (o *Operator) Resign(a *IssuedAccount) {
	o.t.Helper()
	token, err := a.Claims.Encode(o.KP)
	require.NoError(o.t, err)
	a.Token = token
}

// User issues a user of a (signed by signer, the account's key when nil)
// and writes its .creds file as nsc does; it returns the file and the
// user's public key.
func (o *Operator) User(a *IssuedAccount, edit func(*jwt.UserClaims), signer nkeys.KeyPair) (creds string, pub string) {
	o.t.Helper()
	ukp, err := nkeys.CreateUser()
	require.NoError(o.t, err)
	pub, _ = ukp.PublicKey()
	uc := jwt.NewUserClaims(pub)
	uc.Name = "u"
	if signer == nil {
		signer = a.KP
	}
	if edit != nil {
		edit(uc)
	}
	token, err := uc.Encode(signer)
	require.NoError(o.t, err)
	seed, _ := ukp.Seed()
	b, err := jwt.FormatUserConfig(token, seed)
	require.NoError(o.t, err)
	creds = filepath.Join(o.Dir, pub+".creds")
	require.NoError(o.t, os.WriteFile(creds, b, 0o600))
	return creds, pub
}

// MemoryConf is an operator-mode configuration with a MEMORY resolver
// preloaded with the system account and accounts.
func (o *Operator) MemoryConf(accounts ...*IssuedAccount) string {
	var b strings.Builder
	fmt.Fprintf(&b, "operator: %q\nsystem_account: %s\nresolver: MEMORY\nresolver_preload: {\n", o.File, o.Sys.Pub)
	for _, a := range append([]*IssuedAccount{o.Sys}, accounts...) {
		fmt.Fprintf(&b, "  %s: %q\n", a.Pub, a.Token)
	}
	b.WriteString("}\n")
	return b.String()
}

// FullConf is an operator-mode configuration with a full resolver whose
// store is given (`dir: "..."` or `url: "postgres://..."`), preloaded with
// the system account.
func (o *Operator) FullConf(store string) string {
	return fmt.Sprintf("operator: %q\nsystem_account: %s\nresolver { type: full, %s }\nresolver_preload: { %s: %q }\n",
		o.File, o.Sys.Pub, store, o.Sys.Pub, o.Sys.Token)
}
