package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// writeConf writes files into a fresh directory and returns the path of
// the first one.
func writeConf(tb testing.TB, files ...string) string {
	tb.Helper()
	dir := tb.TempDir()
	var first string
	for i := 0; i < len(files); i += 2 {
		p := filepath.Join(dir, files[i])
		require.NoError(tb, os.WriteFile(p, []byte(files[i+1]), 0o600))
		if first == "" {
			first = p
		}
	}
	return first
}

func mustParse(tb testing.TB, data string) *Server {
	tb.Helper()
	s, err := Parse(data)
	require.NoError(tb, err)
	return s
}

// requireErrLines checks that err holds each wanted fragment, and returns
// its lines for further checks.
func requireErrLines(tb testing.TB, err error, want ...string) []string {
	tb.Helper()
	require.Error(tb, err)
	for _, w := range want {
		require.Contains(tb, err.Error(), w)
	}
	return strings.Split(err.Error(), "\n")
}

func TestConfigDefaults(t *testing.T) {
	d := Default()
	require.Equal(t, Server{
		Host: "0.0.0.0", Port: 4222, HTTPHost: "",
		MaxPayload: 1048576, MaxControlLine: 4096, MaxConnections: 65536,
		MaxPending: 67108864, PingInterval: 2 * time.Minute, MaxPingsOut: 2,
		WriteDeadline: 10 * time.Second, Logtime: true,
		LameDuckDuration: 2 * time.Minute, LameDuckGracePeriod: 10 * time.Second,
	}, d)
	require.NoError(t, d.Validate())

	// An empty file is the defaults.
	require.Equal(t, d, *mustParse(t, ""))
	require.Equal(t, d, *mustParse(t, "# only a comment\n"))
}

func TestConfigEveryKey(t *testing.T) {
	s := mustParse(t, `
		host: 127.0.0.1
		port: 4333
		server_name: fd-1
		client_advertise: "nats.example.com:4222"
		no_advertise: true
		http_host: 127.0.0.2
		http_port: 8222
		max_payload: 2097152
		max_control_line: 8192
		max_connections: 100
		max_pending: 33554432
		max_subscriptions: 1000
		ping_interval: 30
		ping_max: 5
		write_deadline: "3s"
		debug: true
		trace: yes
		logtime: false
		log_file: "/var/log/fd.log"
		lame_duck_duration: "45s"
		lame_duck_grace_period: 5
		mappings { "a": "b" }
		routers: ["r1:7422", "r2:7422"]
		mesh_listen: "0.0.0.0:6222"
		mesh_advertise: "fd-1.example:6222"
	`)
	require.Equal(t, Server{
		Host: "127.0.0.1", Port: 4333, ServerName: "fd-1",
		ClientAdvertise: "nats.example.com:4222", NoAdvertise: true,
		HTTPHost: "127.0.0.2", HTTPPort: 8222,
		MaxPayload: 2 << 20, MaxControlLine: 8192, MaxConnections: 100,
		MaxPending: 32 << 20, MaxSubscriptions: 1000,
		PingInterval: 30 * time.Second, MaxPingsOut: 5, WriteDeadline: 3 * time.Second,
		Debug: true, Trace: true, Logtime: false, LogFile: "/var/log/fd.log",
		LameDuckDuration: 45 * time.Second, LameDuckGracePeriod: 5 * time.Second,
		Mappings: []Mapping{{Source: "a", Destinations: []Destination{{Subject: "b", Weight: 100}}}},
		Routers:  []string{"r1:7422", "r2:7422"}, MeshListen: "0.0.0.0:6222", MeshAdvertise: "fd-1.example:6222",
	}, *s)

	_, err := Parse("mesh_listen: \"6222\"\n")
	require.ErrorContains(t, err, "mesh_listen")
}

func TestConfigAliases(t *testing.T) {
	s := mustParse(t, `
		net: 10.0.0.1
		monitor_port: 8333
		max_conn: 7
		max_subs: 9
		logfile: "x.log"
		MAX_PAYLOAD: 1024 # nats-server keys are case-insensitive
		maps { "a": "b" }
	`)
	require.Equal(t, "10.0.0.1", s.Host)
	require.Equal(t, 8333, s.HTTPPort)
	require.Equal(t, 7, s.MaxConnections)
	require.Equal(t, 9, s.MaxSubscriptions)
	require.Equal(t, "x.log", s.LogFile)
	require.Equal(t, int32(1024), s.MaxPayload)
	require.Len(t, s.Mappings, 1)

	s = mustParse(t, `subject_mappings { "c": "d" }`)
	require.Equal(t, "c", s.Mappings[0].Source)

	_, err := Parse("max_conn: 5\nmax_connections: 6")
	requireErrLines(t, err, `line 2: "max_connections" sets the same thing as "max_conn" (line 1)`)
}

func TestConfigSizes(t *testing.T) {
	for in, want := range map[string]int64{
		`1MB`:      1 << 20,
		`"1MB"`:    1 << 20,
		`64MB`:     64 << 20,
		`"64MB"`:   64 << 20,
		`512KB`:    512 << 10,
		`"512KB"`:  512 << 10,
		`"512kib"`: 512 << 10,
		`"2k"`:     2000, // same meaning as the unquoted form
		`2k`:       2000,
		`"1 MB"`:   1 << 20,
		`1048576`:  1 << 20,
		`"12345"`:  12345,
		`"1G"`:     1e9,
		`1GB`:      1 << 30,
	} {
		s := mustParse(t, "max_pending: "+in+"\nmax_payload: 1024")
		require.Equal(t, want, s.MaxPending, in)
	}

	s := mustParse(t, `max_payload: "8MB"`)
	require.Equal(t, int32(8<<20), s.MaxPayload)
	s = mustParse(t, `max_control_line: 16KB`)
	require.Equal(t, int32(16<<10), s.MaxControlLine)

	_, err := Parse(`max_pending: "12 parsecs"`)
	requireErrLines(t, err, `line 1: "max_pending": "12 parsecs" has an unknown unit`)
	_, err = Parse(`max_pending: "lots"`)
	requireErrLines(t, err, `"max_pending": "lots" is not a size`)
	_, err = Parse(`max_pending: true`)
	requireErrLines(t, err, `"max_pending": expected a size such as 1048576 or 1MB, got true`)
	_, err = Parse(`max_payload: 4GB`)
	requireErrLines(t, err, `"max_payload": 4294967296 is too large`)
}

func TestConfigDurations(t *testing.T) {
	for in, want := range map[string]time.Duration{
		`30`:       30 * time.Second,
		`"2m"`:     2 * time.Minute,
		`"1h30m"`:  90 * time.Minute,
		`"500ms"`:  500 * time.Millisecond,
		`10s`:      10 * time.Second, // unquoted, the parser keeps it a string
		`"1m30s"`:  90 * time.Second,
		`1h`:       time.Hour,
		`"0.5s"`:   500 * time.Millisecond,
		`3600`:     time.Hour,
		`"45s"`:    45 * time.Second,
		`"2m0s"`:   2 * time.Minute,
		`"1h0m0s"`: time.Hour,
	} {
		s := mustParse(t, "ping_interval: "+in+"\nwrite_deadline: "+in+"\nlame_duck_duration: "+in+"\nlame_duck_grace_period: "+in)
		require.Equal(t, want, s.PingInterval, in)
		require.Equal(t, want, s.WriteDeadline, in)
		require.Equal(t, want, s.LameDuckDuration, in)
		require.Equal(t, want, s.LameDuckGracePeriod, in)
	}

	_, err := Parse(`ping_interval: "soon"`)
	requireErrLines(t, err, `"ping_interval": "soon" is not a duration`)

	// Unquoted 2m is a size to the parser (2,000,000): refuse rather than
	// wait 23 days between PINGs.
	_, err = Parse(`ping_interval: 2m`)
	requireErrLines(t, err, `"ping_interval": 2000000 seconds looks like an unquoted duration`, `"2m"`)

	_, err = Parse(`write_deadline: 1.5`)
	requireErrLines(t, err, `"write_deadline": expected seconds or a duration such as "2m", got the number 1.5`)
}

func TestConfigListenAndHTTP(t *testing.T) {
	s := mustParse(t, `listen: "127.0.0.1:4333"`)
	require.Equal(t, "127.0.0.1", s.Host)
	require.Equal(t, 4333, s.Port)
	require.Equal(t, "127.0.0.1", s.MonitorHost(), "http host follows host when not set")

	s = mustParse(t, `listen: 127.0.0.1:4333`)
	require.Equal(t, "127.0.0.1", s.Host)
	require.Equal(t, 4333, s.Port)

	s = mustParse(t, `listen: 4444`)
	require.Equal(t, "0.0.0.0", s.Host)
	require.Equal(t, 4444, s.Port)

	s = mustParse(t, `listen: ":4555"`)
	require.Equal(t, "0.0.0.0", s.Host)
	require.Equal(t, 4555, s.Port)

	s = mustParse(t, `listen: "[::1]:4666"`)
	require.Equal(t, "::1", s.Host)

	s = mustParse(t, `listen: "127.0.0.1:-1"`)
	require.Equal(t, -1, s.Port)

	s = mustParse(t, "listen: 127.0.0.1:4333\nhttp: \"127.0.0.2:8222\"")
	require.Equal(t, "127.0.0.2", s.HTTPHost)
	require.Equal(t, 8222, s.HTTPPort)

	s = mustParse(t, "host: 10.1.1.1\nhttp: 8222")
	require.Equal(t, "10.1.1.1", s.MonitorHost())
	require.Equal(t, 8222, s.HTTPPort)

	s = mustParse(t, "host: 10.1.1.1\nhttp_port: 8222")
	require.Equal(t, "10.1.1.1", s.MonitorHost())

	_, err := Parse(`listen: "nonsense"`)
	requireErrLines(t, err, `line 1: "listen": "nonsense" is not host:port`)
	_, err = Parse(`listen: "h:port"`)
	requireErrLines(t, err, `port "port" is not a number`)
	_, err = Parse(`http: true`)
	requireErrLines(t, err, `"http": expected a port or "host:port", got true`)

	// Two spellings of one setting: nats-server would pick one at random.
	_, err = Parse("listen: 127.0.0.1:4333\nport: 4222")
	requireErrLines(t, err, `line 1: "listen" and "port" (line 2) both set the port`)
	_, err = Parse("http: 8222\nhttp_port: 8223")
	requireErrLines(t, err, `"http" and "http_port" (line 2) both set the http_port`)

	// Range errors found after "listen" point at it.
	_, err = Parse(`listen: "127.0.0.1:70000"`)
	requireErrLines(t, err, `line 1: "port": 70000 is out of range`, `(set by "listen")`)
}

func TestConfigMappings(t *testing.T) {
	s := mustParse(t, `
		mappings {
			"foo": "bar"
			"src.*": "dst.$1"
			"orders.*.*": "orders.{{wildcard(2)}}.{{wildcard(1)}}"
			"all.>": "everything.>"
			"part.*": "part.{{partition(3,1)}}.$1"
			w: [
				{destination: "a", weight: "50%"},
				{destination: "b", weight: 50}
			]
			canary: [ {dest: "v2", weight: 10} ]
			single: {destination: "one", weight: 20%}
		}
	`)
	require.Equal(t, []Mapping{
		{Source: "all.>", Destinations: []Destination{{"everything.>", 100}}},
		{Source: "canary", Destinations: []Destination{{"v2", 10}}},
		{Source: "foo", Destinations: []Destination{{"bar", 100}}},
		{Source: "orders.*.*", Destinations: []Destination{{"orders.{{wildcard(2)}}.{{wildcard(1)}}", 100}}},
		{Source: "part.*", Destinations: []Destination{{"part.{{partition(3,1)}}.$1", 100}}},
		{Source: "single", Destinations: []Destination{{"one", 20}}},
		{Source: "src.*", Destinations: []Destination{{"dst.$1", 100}}},
		{Source: "w", Destinations: []Destination{{"a", 50}, {"b", 50}}},
	}, s.Mappings)
}

func TestConfigMappingErrors(t *testing.T) {
	for name, tc := range map[string]struct{ conf, want string }{
		"weight over 100":  {`mappings { w: [ {destination: a, weight: 150} ] }`, `line 1: mappings["w"][0].weight: 150 is not a weight`},
		"weight zero":      {`mappings { w: [ {destination: a, weight: "0%"} ] }`, `mappings["w"][0].weight: 0 is not a weight`},
		"weight text":      {`mappings { w: [ {destination: a, weight: "half"} ] }`, `"half" is not a weight`},
		"weights sum":      {"mappings {\n w: [ {destination: a, weight: 70}, {destination: b, weight: 50} ]\n}", `line 2: mappings["w"]: weights add up to 120%, more than 100%`},
		"missing weight":   {`mappings { w: [ {destination: a} ] }`, `mappings["w"][0]: missing weight for destination "a"`},
		"missing dest":     {`mappings { w: [ {weight: 10} ] }`, `mappings["w"][0]: missing destination`},
		"unknown field":    {`mappings { w: [ {destination: a, weight: 10, color: red} ] }`, `mappings["w"][0].color is not a field of a mapping destination`},
		"cluster field":    {`mappings { w: [ {destination: a, weight: 10, cluster: east} ] }`, `mappings["w"][0].cluster is not supported: cluster-scoped mappings`},
		"empty list":       {`mappings { w: [] }`, `mappings["w"]: the list of destinations is empty`},
		"number dest":      {`mappings { w: 5 }`, `mappings["w"]: expected a destination subject or a list of {destination, weight}, got the number 5`},
		"not a block":      {`mappings: "a"`, `"mappings": expected a block`},
		"bad source":       {`mappings { "a..b": "c" }`, `mappings["a..b"]: source "a..b" is not a valid subject`},
		"fwc not last":     {`mappings { "a.>.b": "c" }`, `source "a.>.b" is not a valid subject`},
		"wildcard range":   {`mappings { "a.*": "b.$2" }`, `mappings["a.*"]: mapping "a.*" -> "b.$2": "$2" refers to wildcard 2 but the source has 1`},
		"fn range":         {`mappings { "a.*": "b.{{wildcard(3)}}" }`, `refers to wildcard 3`},
		"unknown fn":       {`mappings { "a.*": "b.{{shuffle(1)}}" }`, `unknown mapping function "{{shuffle(1)}}"`},
		"fn arg count":     {`mappings { "a.*": "b.{{wildcard(1,2)}}" }`, `"{{wildcard(1,2)}}" takes one wildcard number`},
		"star in dest":     {`mappings { "a.*": "b.*" }`, `destination may not contain '*'`},
		"space in dest":    {`mappings { "a": "b c" }`, `destination token "b c" contains white space`},
		"duplicate dest":   {`mappings { w: [ {destination: a, weight: 10}, {destination: a, weight: 10} ] }`, `destination "a" is listed twice`},
		"dest and dest":    {`mappings { w: [ {destination: a, dest: b, weight: 10} ] }`, `repeats the destination`},
		"no fn without wc": {`mappings { "a": "b.{{wildcard(1)}}" }`, `refers to wildcard 1 but the source has 0`},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Parse(tc.conf)
			requireErrLines(t, err, tc.want)
		})
	}

	// A multi-line list element is located at its first field, not at its
	// closing brace.
	_, err := Parse("mappings {\n  w: [\n    {\n      destination: a\n    }\n  ]\n}")
	requireErrLines(t, err, `line 4: mappings["w"][0]: missing weight`)
}

func TestConfigValidate(t *testing.T) {
	s := Default()
	s.Port = 70000
	s.MaxPayload = -1
	s.MaxPending = 0
	s.MaxConnections = 0
	s.PingInterval = 0
	s.HTTPPort = -2
	s.Mappings = []Mapping{
		{Source: "a", Destinations: []Destination{{"b", 60}, {"c", 60}}},
		{Source: "d"},
		{Source: "e", Destinations: []Destination{{"f", 0}}},
	}
	lines := requireErrLines(t, s.Validate(),
		`"port": 70000 is out of range`,
		`"max_payload": -1 must be positive`,
		`"max_pending": 0 must be positive`,
		`"max_connections": 0 must be at least 1`,
		`"ping_interval": 0s must be positive`,
		`"http_port": -2 is out of range`,
		`mappings["a"]: weights add up to 120%`,
		`mappings["d"]: has no destination`,
		`mappings["e"]: destination "f" has weight 0`,
	)
	require.Len(t, lines, 9)

	s = Default()
	s.MaxPayload = 65<<20 + 1
	s.MaxPending = 1 << 30
	requireErrLines(t, s.Validate(), `"max_payload": 68157441 is more than the 64MB limit`)

	s = Default()
	s.Port = -1
	s.HTTPPort = -1
	require.NoError(t, s.Validate())
}

func TestConfigBadValuesFromFile(t *testing.T) {
	_, err := Parse("port: 70000\nmax_payload: -5\nmappings {\n  w: [ {destination: a, weight: 60}, {destination: b, weight: 60} ]\n}")
	lines := requireErrLines(t, err,
		`line 1: "port": 70000 is out of range`,
		`line 2: "max_payload": -5 must be positive`,
		`line 4: mappings["w"]: weights add up to 120%`,
	)
	require.Len(t, lines, 3)

	// Relations name both keys and point at the one in the file.
	_, err = Parse("\nmax_pending: 512KB")
	requireErrLines(t, err, `line 2: "max_payload": 1048576 is more than max_pending (524288)`, `(see "max_pending")`)

	for conf, want := range map[string]string{
		`port: "4222"`:          `"port": expected a whole number, got the string "4222"`,
		`debug: "yes please"`:   `"debug": expected true or false, got the string "yes please"`,
		`server_name: 5`:        `"server_name": expected a string, got the number 5`,
		`server_name: "a b"`:    `"server_name": "a b" contains white space`,
		`ping_max: 0`:           `"ping_max": 0 must be at least 1`,
		`max_subs: -1`:          `"max_subscriptions": -1 must not be negative`,
		`max_control_line: 0`:   `"max_control_line": 0 must be positive`,
		`host: ""`:              `"host": is empty`,
		`lame_duck_duration: 0`: `"lame_duck_duration": 0s must be positive`,
	} {
		_, err := Parse(conf)
		requireErrLines(t, err, want)
	}
}

func TestConfigRefusesCluster(t *testing.T) {
	path := writeConf(t, "fd.conf", "port: 4222\n\ncluster {\n  port: 6222\n}\n")
	_, err := Load(path)
	lines := requireErrLines(t, err, path+`:3: "cluster" is not supported: Switchyard does not cluster frontdoors with nats-server routes`,
		"services/router", "docs/architecture.md")
	require.Len(t, lines, 1)
}

func TestConfigRefusals(t *testing.T) {
	for conf, want := range map[string]string{
		"gateway {}":              `"gateway" is not supported: handled by linkd (not built yet)`,
		"leafnodes {}":            `"leafnodes" is not supported: handled by linkd`,
		"leaf {}":                 `"leaf" is not supported: handled by linkd`,
		"jetstream: sometimes":    `"jetstream" "sometimes" is not a choice: use enabled, disabled or a block`,
		"jetstream { cipher: x }": `"jetstream.cipher" is not supported in jetstream {} yet`,
		"resolver_tls {}":         `"resolver_tls" is not supported: handled by authsvc, which supports authorization {}, no_auth_user, accounts {}, system_account, operator, resolver and resolver_preload so far`,
		"no_system_account: true": `"no_system_account" is not supported: handled by authsvc`,
		"tls {}":                  `"tls" needs cert_file and key_file`,
		"tls { cert_store: x, cert_file: a, key_file: b }":        `"tls.cert_store" is not supported in tls {} yet`,
		"tls { cert_file: a, key_file: b, verify: true }":         `"tls" verify: true needs ca_file`,
		"tls { cert_file: a, key_file: b, min_version: \"1.0\" }": `"tls.min_version" "1.0" is not a TLS version`,
		"websocket { port: 8080 }":                                `"websocket" requires TLS configuration`,
		"mqtt {}":                                                 `"mqtt" is not supported`,
		"syslog: true":                                            `"syslog" is not supported: syslog output is not built in`,
		"logfile_size_limit: 1GB":                                 `"logfile_size_limit" is not supported: log rotation is not built in`,
		"Cluster {}":                                              `"cluster" is not supported`,
	} {
		_, err := Parse(conf)
		requireErrLines(t, err, "line 1: "+want)
	}

	// Every refused key has something to say.
	for name, spec := range keys {
		if spec.apply == nil {
			require.NotEmpty(t, spec.reason(), name)
			require.NotEqual(t, Frontdoor, spec.owner, name)
		}
	}
}

// jetstream {} as nats-server reads it; streamsvc applies it.
func TestConfigJetStream(t *testing.T) {
	s := mustParse(t, "jetstream: enabled")
	require.Equal(t, JetStream{Enabled: true, SyncAlways: true}, s.JetStream, "fsync before the PubAck unless told otherwise")
	s = mustParse(t, `jetstream { store_dir: "/var/js", max_mem: 1GB, max_file_store: 10GB, sync_interval: "2m", domain: hub }`)
	require.Equal(t, JetStream{Enabled: true, StoreDir: "/var/js", MaxMemory: 1 << 30, MaxFile: 10 << 30,
		MaxMemorySet: true, MaxFileSet: true, SyncInterval: 2 * time.Minute, Domain: "hub"}, s.JetStream)
	s = mustParse(t, "jetstream { sync_interval: always }\nstore_dir: \"./here\"")
	require.True(t, s.JetStream.SyncAlways)
	require.Equal(t, "./here", s.JetStream.StoreDir)
	require.False(t, mustParse(t, "jetstream: disabled").JetStream.Enabled)
	require.False(t, mustParse(t, "").JetStream.Enabled)
	s = mustParse(t, "accounts { A: { jetstream: enabled }, B: { jetstream: disabled }, C: {} }")
	require.Equal(t, []bool{true, false, false}, []bool{s.Accounts[0].JetStream, s.Accounts[1].JetStream, s.Accounts[2].JetStream})
	// Account limits: jetstream_test.go.
}

func TestConfigUnknownKey(t *testing.T) {
	_, err := Parse("port: 4222\nmax_paylod: 10")
	lines := requireErrLines(t, err, `line 2: "max_paylod" is an unknown configuration key`)
	require.Len(t, lines, 1)
}

func TestConfigVariables(t *testing.T) {
	// A variable used elsewhere is not a key; one never used is.
	s := mustParse(t, "limit = 2MB\nmax_payload: $limit")
	require.Equal(t, int32(2<<20), s.MaxPayload)

	_, err := Parse("unused = 5")
	requireErrLines(t, err, `"unused" is an unknown configuration key`)
}

func TestConfigManyErrorsAtOnce(t *testing.T) {
	path := writeConf(t, "fd.conf", `port: 4222
cluster { port: 6222 }
jetstream { max_file: "lots" }
bogus: 1
port_typo: 2
max_payload: "huge"
mappings { "a.*": "b.$3" }
`)
	_, err := Load(path)
	lines := requireErrLines(t, err,
		path+`:2: "cluster" is not supported`,
		path+`:3: "jetstream.max_file": "lots" is not a size`,
		path+`:4: "bogus" is an unknown configuration key`,
		path+`:5: "port_typo" is an unknown configuration key`,
		path+`:6: "max_payload": "huge" is not a size`,
		path+`:7: mappings["a.*"]: mapping "a.*" -> "b.$3": "$3" refers to wildcard 3`,
	)
	require.Len(t, lines, 6)
	// In file order.
	for i, l := range lines {
		require.True(t, strings.HasPrefix(l, path+":"+string(rune('2'+i))+":"), l)
	}
}

func TestConfigLoadFile(t *testing.T) {
	path := writeConf(t, "fd.conf", "listen: 127.0.0.1:4333\nmappings { a: b }\n")
	s, err := Load(path)
	require.NoError(t, err)
	require.Equal(t, 4333, s.Port)
	require.Equal(t, "127.0.0.1", s.Host)
	require.Len(t, s.Mappings, 1)
}

func TestConfigMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope.conf")
	_, err := Load(path)
	require.Error(t, err)
	require.Equal(t, 1, strings.Count(err.Error(), path), err.Error())
	require.ErrorIs(t, err, os.ErrNotExist)
}

func TestConfigSyntaxError(t *testing.T) {
	path := writeConf(t, "fd.conf", "port: 4222\nmappings { a: \n")
	_, err := Load(path)
	require.Error(t, err)
	require.Contains(t, err.Error(), path)
}

func TestConfigIncludeKeepsFileAndLine(t *testing.T) {
	path := writeConf(t,
		"main.conf", "port: 4222\ninclude \"limits.conf\"\n",
		"limits.conf", "# limits\nmax_payload: 2MB\n\ncluster {}\nmax_pending: \"bad\"\n",
	)
	inc := filepath.Join(filepath.Dir(path), "limits.conf")
	_, err := Load(path)
	lines := requireErrLines(t, err,
		inc+`:4: "cluster" is not supported`,
		inc+`:5: "max_pending": "bad" is not a size`,
	)
	require.Len(t, lines, 2)

	// A key set in both files names the other file.
	require.NoError(t, os.WriteFile(inc, []byte("max_conn: 5\n"), 0o600))
	require.NoError(t, os.WriteFile(path, []byte("include \"limits.conf\"\n\nmax_connections: 6\n"), 0o600))
	_, err = Load(path)
	requireErrLines(t, err, path+`:3: "max_connections" sets the same thing as "max_conn" (`+inc+`:1)`)
	require.NoError(t, os.WriteFile(path, []byte("port: 4222\ninclude \"limits.conf\"\n"), 0o600))

	// And a clean include applies.
	require.NoError(t, os.WriteFile(inc, []byte("max_payload: 2MB\nmappings { x: y }\n"), 0o600))
	s, err := Load(path)
	require.NoError(t, err)
	require.Equal(t, int32(2<<20), s.MaxPayload)
	require.Equal(t, "x", s.Mappings[0].Source)

	// A value error found by Validate points into the included file too.
	require.NoError(t, os.WriteFile(inc, []byte("\nport_ignored = 1\nmax_connections: 0\n"), 0o600))
	_, err = Load(path)
	requireErrLines(t, err, inc+`:3: "max_connections": 0 must be at least 1`)
}

func TestConfigAdvertiseProbe(t *testing.T) {
	for in, want := range map[string][3]any{
		"host.docker.internal:4230-4239": {"host.docker.internal", 4230, 4239},
		"10.0.0.1:4222":                  {"10.0.0.1", 4222, 4222},
		"[::1]:1-1024":                   {"::1", 1, 1024},
	} {
		s := Server{ClientAdvertiseProbe: in}
		host, lo, hi, err := s.AdvertiseProbe()
		require.NoError(t, err, in)
		require.Equal(t, want, [3]any{host, lo, hi}, in)
	}
	for _, in := range []string{"4230-4239", ":4230", "h:0-5", "h:5-4", "h:1-1025", "h:x-5", "h:4230-"} {
		s := Server{ClientAdvertiseProbe: in}
		_, _, _, err := s.AdvertiseProbe()
		require.Error(t, err, in)
	}
}
