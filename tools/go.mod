module github.com/switchyard-io/switchyard/tools

go 1.26.0

require (
	github.com/nats-io/jwt/v2 v2.8.3
	github.com/nats-io/nats.go v1.55.0
	github.com/nats-io/nkeys v0.4.17
)

require (
	github.com/klauspost/compress v1.20.3 // indirect
	github.com/nats-io/nuid v1.0.1 // indirect
	github.com/switchyard-io/switchyard/pkg v0.0.0
	golang.org/x/crypto v0.58.0 // indirect
	golang.org/x/sys v0.49.0 // indirect
)

replace github.com/switchyard-io/switchyard/pkg => ../pkg

replace github.com/switchyard-io/switchyard/proto => ../proto
