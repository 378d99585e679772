package resolver

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/nats-io/nkeys"
	"github.com/stretchr/testify/require"
)

func TestDirStoreKeepsJWTsAndRefusesOtherNames(t *testing.T) {
	kp, _ := nkeys.CreateAccount()
	pub, _ := kp.PublicKey()
	dir := filepath.Join(t.TempDir(), "jwt")
	d, err := NewDir(dir, map[string]string{pub: "first"})
	require.NoError(t, err)
	got, ok, err := d.Get(pub)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, "first", got)
	g0, _ := d.Generation()
	require.NoError(t, d.Put(pub, "second"))
	g1, _ := d.Generation()
	require.Greater(t, g1, g0)

	// Preloading again keeps what was pushed since.
	d2, err := NewDir(dir, map[string]string{pub: "first"})
	require.NoError(t, err)
	got, _, _ = d2.Get(pub)
	require.Equal(t, "second", got)

	// Only account keys name files: nothing can be written elsewhere.
	for _, bad := range []string{"../escape", "/etc/passwd", "", "UABC", pub + "/x"} {
		require.Error(t, d.Put(bad, "x"), bad)
		_, ok, err := d.Get(bad)
		require.NoError(t, err)
		require.False(t, ok)
	}
	entries, _ := os.ReadDir(dir)
	require.Len(t, entries, 1)
	_, err = os.Stat(filepath.Join(filepath.Dir(dir), "escape.jwt"))
	require.True(t, os.IsNotExist(err))

	require.ErrorIs(t, NewMemory(nil).Put(pub, "x"), ErrReadOnly)
}

func TestStoresListTheirAccounts(t *testing.T) {
	var keys []string
	for range 2 {
		kp, _ := nkeys.CreateAccount()
		pub, _ := kp.PublicKey()
		keys = append(keys, pub)
	}
	slices.Sort(keys)
	dir := filepath.Join(t.TempDir(), "jwt")
	d, err := NewDir(dir, map[string]string{keys[1]: "b"})
	require.NoError(t, err)
	require.NoError(t, d.Put(keys[0], "a"))
	// Neither a stray file nor an unfinished write is an account.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "README.jwt"), nil, 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, ".tmp-"+keys[0]+"-1"), nil, 0o600))
	got, err := d.List()
	require.NoError(t, err)
	require.Equal(t, keys, got)

	got, err = NewMemory(map[string]string{keys[1]: "b", keys[0]: "a"}).List()
	require.NoError(t, err)
	require.Equal(t, keys, got)
}
