module github.com/switchyard-io/switchyard/services/frontdoor

go 1.26.0

require github.com/switchyard-io/switchyard/pkg v0.0.0

require (
	github.com/klauspost/compress v1.20.3 // indirect
	github.com/nats-io/nats-server/v2 v2.15.2 // indirect
	github.com/nats-io/nuid v1.0.1 // indirect
	github.com/switchyard-io/switchyard/proto v0.0.0 // indirect
	go.yaml.in/yaml/v3 v3.0.5 // indirect
	golang.org/x/net v0.60.0 // indirect
	golang.org/x/sys v0.49.0 // indirect
	golang.org/x/text v0.43.0 // indirect
	google.golang.org/genproto/googleapis/rpc v0.0.0-20260817212433-ac3dfec99bb1 // indirect
	google.golang.org/grpc v1.85.0 // indirect
	google.golang.org/protobuf v1.36.12 // indirect
)

replace github.com/switchyard-io/switchyard/pkg => ../../pkg

require (
	github.com/gorilla/websocket v1.5.3
	github.com/nats-io/jwt/v2 v2.8.3
	github.com/nats-io/nats.go v1.55.0
	github.com/nats-io/nkeys v0.4.17
	github.com/stretchr/testify v1.12.1
	golang.org/x/crypto v0.58.0
)

replace github.com/switchyard-io/switchyard/proto => ../../proto
