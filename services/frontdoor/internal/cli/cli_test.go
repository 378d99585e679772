package cli

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestCLILayering(t *testing.T) {
	file := filepath.Join(t.TempDir(), "fd.conf")
	require.NoError(t, os.WriteFile(file, []byte("port: 5000\nserver_name: from-file\nhttp_port: 8000\nmax_payload: 2KB\n"), 0o600))

	o, err := Parse([]string{"-c", file}, env(nil))
	require.NoError(t, err)
	require.Equal(t, 5000, o.Config.Port, "file over defaults")
	require.Equal(t, int32(2048), o.Config.MaxPayload)

	o, err = Parse([]string{"-c", file}, env(map[string]string{"SWITCHYARD_PORT": "6000", "SWITCHYARD_SERVER_NAME": "from-env"}))
	require.NoError(t, err)
	require.Equal(t, 6000, o.Config.Port, "environment over the file")
	require.Equal(t, "from-env", o.Config.ServerName)
	require.Equal(t, 8000, o.Config.HTTPPort, "untouched keys keep the file's value")

	o, err = Parse([]string{"-c", file, "-p", "7000", "--name", "from-flag", "-DV"},
		env(map[string]string{"SWITCHYARD_PORT": "6000", "SWITCHYARD_SERVER_NAME": "from-env"}))
	require.NoError(t, err)
	require.Equal(t, 7000, o.Config.Port, "flags over the environment")
	require.Equal(t, "from-flag", o.Config.ServerName)
	require.True(t, o.Config.Debug && o.Config.Trace)

	o, err = Parse(nil, env(map[string]string{"SWITCHYARD_CONFIG": file}))
	require.NoError(t, err)
	require.Equal(t, file, o.ConfigFile, "SWITCHYARD_CONFIG names the file")
	require.Equal(t, 5000, o.Config.Port)
}

func TestCLIReloadKeepsOverrides(t *testing.T) {
	file := filepath.Join(t.TempDir(), "fd.conf")
	require.NoError(t, os.WriteFile(file, []byte("port: 5000\nmax_payload: 2KB\n"), 0o600))
	o, err := Parse([]string{"-c", file, "-p", "7000"}, env(nil))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(file, []byte("port: 5000\nmax_payload: 4KB\n"), 0o600))
	next, err := o.Reload()
	require.NoError(t, err)
	require.Equal(t, int32(4096), next.MaxPayload, "reload reads the file again")
	require.Equal(t, 7000, next.Port, "and keeps the flags on top")
}

func TestCLIErrors(t *testing.T) {
	_, err := Parse([]string{"--nosuch"}, env(nil))
	require.ErrorContains(t, err, "nosuch")
	_, err = Parse([]string{"stray"}, env(nil))
	require.ErrorContains(t, err, `unexpected argument "stray"`)
	_, err = Parse(nil, env(map[string]string{"SWITCHYARD_PORT": "abc"}))
	require.ErrorContains(t, err, "SWITCHYARD_PORT")
	_, err = Parse([]string{"-c", "/nonexistent/fd.conf"}, env(nil))
	require.ErrorContains(t, err, "/nonexistent/fd.conf")
	_, err = Parse([]string{"-p", "70000"}, env(nil))
	require.ErrorContains(t, err, "port")
}

func TestCLIStringSettingsFromFlagsAndEnv(t *testing.T) {
	e := env(map[string]string{"SWITCHYARD_MESH_LISTEN": "0.0.0.0:6222", "SWITCHYARD_AUTHSVC": "auth:7522", "SWITCHYARD_HOST": "10.0.0.1"})
	o, err := Parse([]string{"--mesh_advertise", "fd-1:6222", "--authsvc", "flag-auth:7522", "-l", "/tmp/fd.log"}, e)
	require.NoError(t, err)
	c := o.Config
	require.Equal(t, "0.0.0.0:6222", c.MeshListen, "from the environment")
	require.Equal(t, "10.0.0.1", c.Host, "from the environment")
	require.Equal(t, "fd-1:6222", c.MeshAdvertise, "from a flag")
	require.Equal(t, "flag-auth:7522", c.AuthService, "a flag wins over the environment")
	require.Equal(t, "/tmp/fd.log", c.LogFile)
}
