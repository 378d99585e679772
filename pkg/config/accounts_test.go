package config

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestConfigAccounts(t *testing.T) {
	s := mustParse(t, `
accounts {
  Orders: {
    users: [ {user: o, password: p} ]
    exports: [
      {stream: "orders.>"}
      {service: "svc.price", accounts: [Shop], response_type: stream, response_threshold: "5s"}
    ]
    mappings { "in.*": "orders.$1" }
  }
  Shop: {
    users: [ {user: s, password: p, permissions: {publish: "x"}} ]
    default_permissions: { subscribe: "y" }
    imports: [
      {stream: {account: Orders, subject: "orders.>"}, prefix: "ext"}
      {service: {account: Orders, subject: "svc.price"}, to: "price"}
      {stream: {account: Orders, subject: "orders.*"}, to: "o.*"}
    ]
  }
}
system_account: Orders
`)
	require.Equal(t, "Orders", s.SystemAccount)
	require.Len(t, s.Accounts, 2)
	o, sh := s.Accounts[0], s.Accounts[1]
	require.Equal(t, "Orders", o.Name)
	require.Equal(t, []Export{
		{Subject: "orders.>"},
		{Subject: "svc.price", Service: true, Accounts: []string{"Shop"}, ResponseType: ResponseStream, ResponseThreshold: 5 * time.Second},
	}, o.Exports)
	require.Equal(t, []Mapping{{Source: "in.*", Destinations: []Destination{{Subject: "orders.$1", Weight: 100}}}}, o.Mappings)
	require.Equal(t, "Shop", sh.Name)
	require.Equal(t, []Import{
		{Account: "Orders", Subject: "orders.>", To: "ext.orders.>"},
		{Service: true, Account: "Orders", Subject: "svc.price", To: "price"},
		{Account: "Orders", Subject: "orders.*", To: "o.*"},
	}, sh.Imports)
	require.NotNil(t, sh.Default)
	require.Equal(t, []string{"x"}, sh.Users[0].Permissions.Publish.Allow)

	// Wildcards in "to" stand for the source's, in order; a service maps
	// the other way.
	tr, err := ImportTransform(sh.Imports[2])
	require.NoError(t, err)
	got, ok := tr.Apply("orders.42")
	require.True(t, ok)
	require.Equal(t, "o.42", got)
	tr, err = ImportTransform(sh.Imports[1])
	require.NoError(t, err)
	got, ok = tr.Apply("price")
	require.True(t, ok)
	require.Equal(t, "svc.price", got)
}

func TestConfigAccountErrors(t *testing.T) {
	for name, tc := range map[string]struct{ conf, want string }{
		"unknown source": {`accounts { A: { imports: [ {stream: {account: B, subject: x}} ] } }`,
			`account A imports "x" from account B, which is not defined`},
		"no export": {`accounts { A: { imports: [ {stream: {account: B, subject: x}} ] }, B: {} }`,
			`account A imports "x" from B: it has no stream export covering that subject`},
		"wrong kind": {`accounts { A: { imports: [ {service: {account: B, subject: x}} ] }, B: { exports: [ {stream: x} ] } }`,
			`it has no service export covering that subject`},
		"private": {`accounts { A: { imports: [ {stream: {account: B, subject: x}} ] }, B: { exports: [ {stream: x, accounts: [C]} ] }, C: {} }`,
			`the export "x" is private to C`},
		"wider than export": {`accounts { A: { imports: [ {stream: {account: B, subject: "x.>"}} ] }, B: { exports: [ {stream: "x.*"} ] } }`,
			`no stream export covering that subject`},
		"cycle": {`accounts {
  A: { exports: [ {service: a} ], imports: [ {service: {account: B, subject: b}, to: a} ] }
  B: { exports: [ {service: b} ], imports: [ {service: {account: A, subject: a}, to: b} ] }
}`, `service imports form a cycle (A "a" -> B "b" -> A)`},
		"dup user": {`accounts { A: { users: [ {user: u, password: p} ] }, B: { users: [ {user: u, password: q} ] } }`,
			`user "u" is in accounts A and B`},
		"global name":   {`accounts { $G: {} }`, `$G is the global account's reserved name`},
		"both kinds":    {`accounts { A: { exports: [ {stream: x, service: y} ] } }`, `needs exactly one of stream and service`},
		"bad response":  {`accounts { A: { exports: [ {service: x, response_type: many} ] } }`, `"many" is not a response type`},
		"stream resp":   {`accounts { A: { exports: [ {stream: x, response_type: stream} ] } }`, `response_type is for service exports only`},
		"prefix + to":   {`accounts { A: { imports: [ {stream: {account: B, subject: x}, prefix: p, to: y} ] }, B: { exports: [ {stream: x} ] } }`, `has both prefix and to`},
		"service pfx":   {`accounts { A: { imports: [ {service: {account: B, subject: x}, prefix: p} ] }, B: { exports: [ {service: x} ] } }`, `prefix is for stream imports`},
		"bad subject":   {`accounts { A: { exports: [ {stream: "a..b"} ] } }`, `"a..b" is not a valid subject`},
		"bad to":        {`accounts { A: { imports: [ {stream: {account: B, subject: "x.*"}, to: "y.$3"} ] }, B: { exports: [ {stream: "x.*"} ] } }`, `to "y.$3"`},
		"unknown key":   {`accounts { A: { color: red } }`, `"accounts.A.color" is not supported in an account yet`},
		"bad mapping":   {`accounts { A: { mappings { "a.*": "b.$2" } } }`, `account A mapping "a.*"`},
		"unknown sys":   {`accounts { A: {} }` + "\nsystem_account: B", `"system_account": "B" is not an account`},
		"not a block":   {`accounts: "x"`, `expected a block { NAME: { users: [...] } }`},
		"account field": {`authorization { users: [ {user: a, password: b, account: A} ] }`, `list the user under accounts { NAME: { users: [...] } }`},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Parse(tc.conf)
			requireErrLines(t, err, tc.want)
		})
	}

	// Two accounts may serve each other different services: no cycle.
	mustParse(t, `accounts {
  A: { exports: [ {service: a} ], imports: [ {service: {account: B, subject: b}} ] }
  B: { exports: [ {service: b} ], imports: [ {service: {account: A, subject: a}} ] }
}`)
}

func TestConfigOperator(t *testing.T) {
	s := mustParse(t, `
operator: "/etc/nats/op.jwt"
system_account: ADSYS
resolver: MEMORY
resolver_preload: { ADSYS: "eyJ.sys", AXYZ: "eyJ.xyz" }
`)
	require.Equal(t, []string{"/etc/nats/op.jwt"}, s.Operators)
	require.Equal(t, ResolverMemory, s.Resolver.Type)
	require.Equal(t, map[string]string{"ADSYS": "eyJ.sys", "AXYZ": "eyJ.xyz"}, s.Resolver.Preload)

	s = mustParse(t, `operator: [a.jwt, b.jwt]
resolver { type: full, allow_delete: true, postgres: "postgres://x/y", interval: "2m" }`)
	require.Equal(t, Resolver{Type: ResolverFull, Dir: DefaultResolverDir, AllowDelete: true, Postgres: "postgres://x/y"}, s.Resolver)

	for conf, want := range map[string]string{
		"operator: a.jwt":                                       `needs a resolver`,
		"resolver: MEMORY":                                      `is for operator (JWT) mode`,
		"operator: a.jwt\nresolver: URL(http://x)":              `"URL(http://x)" is not supported`,
		"operator: a.jwt\nresolver { type: cache }":             `the cache resolver is not supported yet`,
		"operator: a.jwt\nresolver { dir: x }":                  `needs a type: full`,
		"operator: a.jwt\nresolver: MEMORY\naccounts { A: {} }": `remove accounts {} and authorization {}`,
		"operator: 5":                                           `expected an operator JWT file`,
	} {
		_, err := Parse(conf)
		requireErrLines(t, err, want)
	}
}
