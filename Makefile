# Switchyard — `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

SERVICES    := frontdoor router authsvc streamsvc linkd
MODULES     := ./pkg ./proto $(addprefix ./services/,$(SERVICES)) ./tools ./deploy
PKGS        := ./pkg/... ./proto/... $(foreach s,$(SERVICES),./services/$(s)/...)
TOOLS_BIN   := $(CURDIR)/.tools/bin
# Integration tests run race-detector builds of the services from here.
RACE_BIN    := $(CURDIR)/.tools/race
VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS     := -s -w -X github.com/switchyard-io/switchyard/pkg/node.SwitchyardVersion=$(VERSION)
CONFIG      ?=
FUZZTIME    ?= 15s
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
NATSCLI     := github.com/nats-io/natscli/nats@v0.5.1
BUF         := github.com/bufbuild/buf/cmd/buf@v1.75.0
REFERENCE   := github.com/nats-io/nats-server/v2@v2.15.2
PROTOC_GEN_GO      := google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
PROTOC_GEN_GO_GRPC := google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.0

export GOFLAGS := -buildvcs=false

.PHONY: help
help: ## Show this help
	@awk 'BEGIN{FS=":.*## "} /^[a-zA-Z_-]+:.*## /{printf "  \033[1m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: check-go
check-go:
	@command -v go >/dev/null || { echo "Go 1.26+ is required: https://go.dev/dl/"; exit 1; }

.PHONY: build
build: check-go ## Build static binaries of every service into bin/
	@mkdir -p bin
	@for s in $(SERVICES); do \
		CGO_ENABLED=0 go build -trimpath -ldflags "$(LDFLAGS)" -o bin/$$s ./services/$$s/cmd/$$s || exit 1; \
	done
	@echo "built: $(addprefix bin/,$(SERVICES))"

.PHONY: run
run: build ## Run the suite in the foreground: authsvc, a router, streamsvc (JetStream, data in ./data) and two frontdoors, clients on nats://127.0.0.1:4222 and :4223 (CONFIG=file.conf for a nats-server config)
	@echo "Switchyard: clients on nats://127.0.0.1:4222 and nats://127.0.0.1:4223 (monitoring :8222, :8223), router 127.0.0.1:7422 (monitoring :8422), authsvc 127.0.0.1:7522 (monitoring :8522), streamsvc (JetStream, streams in ./data, monitoring :8622) — Ctrl-C stops it all"
	@bash -c 'bin/authsvc -a 127.0.0.1 -p 7522 -m 8522 $(if $(CONFIG),-c $(CONFIG)) & authsvc=$$!; \
		bin/router -a 127.0.0.1 -p 7422 -m 8422 & router=$$!; \
		bin/streamsvc -a 127.0.0.1 -m 8622 --routers 127.0.0.1:7422 $(if $(CONFIG),-c $(CONFIG)) & streamsvc=$$!; \
		bin/frontdoor -p 4223 -m 8223 --routers 127.0.0.1:7422 --authsvc 127.0.0.1:7522 $(if $(CONFIG),-c $(CONFIG)) & second=$$!; \
		trap "kill $$second $$streamsvc $$router $$authsvc 2>/dev/null; wait $$second $$streamsvc $$router $$authsvc 2>/dev/null" EXIT; trap "" INT; \
		bin/frontdoor -p 4222 -m 8222 --routers 127.0.0.1:7422 --authsvc 127.0.0.1:7522 $(if $(CONFIG),-c $(CONFIG))'

.PHONY: test
test: check-go reference $(TOOLS_BIN)/nats postgres build ## Run every test (unit, integration against race-detector builds with nats.go, differential against nats-server, the bench harness against bin/, a short fuzz run)
	@mkdir -p $(RACE_BIN)
	for s in frontdoor router authsvc streamsvc; do go build -race -o $(RACE_BIN)/$$s ./services/$$s/cmd/$$s || exit 1; done
	GORACE=halt_on_error=1 SWITCHYARD_BIN_DIR=$(RACE_BIN) NATS_SERVER_BIN=$(TOOLS_BIN)/nats-server \
		go test -race -count=1 -timeout 20m $(PKGS)
	cd tools && go test -count=1 ./...
	$(MAKE) --no-print-directory test-deploy
	$(MAKE) --no-print-directory fuzz

.PHONY: test-deploy
test-deploy: ## Test deploy/: the Kubernetes manifests (strict decode, kustomize, invariants) and the compose suite for real (images, nats.go, kill, scale, rolling restart); the compose tests skip, saying so, where docker is not installed
	@if command -v docker >/dev/null; then $(MAKE) --no-print-directory images; \
	else echo "deploy: docker is not installed: the compose tests skip (the Kubernetes manifest tests still run)"; fi
	cd deploy && go test -count=1 -v -timeout 15m ./...

# Images: FROM scratch around bin/ (no registry is needed or reached).
# linkd has none until it is built.
IMAGE_SERVICES := frontdoor router authsvc streamsvc
IMAGE_REPO     ?= switchyard
IMAGE_TAG      ?= latest
CA_CERTS       ?= /etc/ssl/certs/ca-certificates.crt
COMPOSE_FILE   := deploy/compose/compose.yaml
# Compose v2 (docker compose) where installed, else the older docker-compose.
COMPOSE        ?= $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose)

.PHONY: images
images: build ## Build one FROM-scratch image per service from bin/ (switchyard/<svc>:latest, IMAGE_TAG= to change; version label; nothing is pulled)
	@docker info >/dev/null 2>&1 || { echo "images: no Docker engine answers (docker info failed): start dockerd"; exit 1; }
	@test -r $(CA_CERTS) || { echo "images: no CA bundle at $(CA_CERTS) (install ca-certificates or set CA_CERTS=)"; exit 1; }
	@for s in $(IMAGE_SERVICES); do \
		ctx=.tools/images/$$s; rm -rf $$ctx; mkdir -p $$ctx/data && \
		cp bin/$$s $$ctx/$$s && cp $(CA_CERTS) $$ctx/ca-certificates.crt && \
		out=$$(docker build -q -f deploy/docker/$$s.Dockerfile --build-arg VERSION=$(VERSION) \
			-t $(IMAGE_REPO)/$$s:$(IMAGE_TAG) $$ctx 2>&1) || { echo "$$out"; exit 1; }; \
		echo "image: $(IMAGE_REPO)/$$s:$(IMAGE_TAG) ($(VERSION))"; \
	done

.PHONY: compose-up
compose-up: images ## docker compose up: two routers, authsvc, streamsvc and frontdoors on nats://127.0.0.1:4222 and :4223 (see deploy/compose/README.md)
	$(COMPOSE) -f $(COMPOSE_FILE) up -d
	@echo "Switchyard: clients on nats://127.0.0.1:4222 and nats://127.0.0.1:4223 (monitoring http://127.0.0.1:8222, :8223); make compose-down stops it"

.PHONY: compose-down
compose-down: ## Stop the compose suite and remove its containers, network and volumes
	$(COMPOSE) -f $(COMPOSE_FILE) down -v --remove-orphans

.PHONY: postgres
postgres: ## Make sure PostgreSQL's binaries are installed (tests start throwaway servers from them); apt-get installs them when missing
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null || { \
		echo "Installing PostgreSQL (tests start throwaway servers from its binaries)"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq postgresql >/dev/null && \
		{ [ "$$(id -u)" = 0 ] && $$SUDO service postgresql stop >/dev/null 2>&1; true; }; }

.PHONY: fuzz
fuzz: ## Fuzz the client-protocol parser, the mesh frame decoder, the WebSocket frame reader and the stream backup reader, FUZZTIME each (default 15s; e.g. FUZZTIME=10m)
	cd pkg && go test -run '^$$' -fuzz '^FuzzParser$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 2s ./protocol
	cd pkg && go test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 2s ./mesh
	cd pkg && go test -run '^$$' -fuzz '^FuzzWebSocketFrames$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 2s ./node
	cd services/streamsvc && go test -run '^$$' -fuzz '^FuzzReader$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 2s ./internal/archive

.PHONY: bench
bench: build ## Compare Switchyard with nats-server v2.15.2 using nats bench (natscli v0.5.1); writes docs/benchmarks.md
	cd tools && go run ./cmd/bench -switchyard $(CURDIR)/bin/frontdoor -tools $(TOOLS_BIN) -write-doc $(CURDIR)/docs/benchmarks.md $(BENCH_ARGS)

.PHONY: reference
reference: $(TOOLS_BIN)/nats-server ## Install the reference nats-server v2.15.2 (for differential tests and make bench) into .tools/bin

$(TOOLS_BIN)/nats-server:
	@mkdir -p $(TOOLS_BIN)
	GOBIN=$(TOOLS_BIN) go install $(REFERENCE)

.PHONY: tools
tools: $(TOOLS_BIN)/nats ## Install the pinned nats CLI (natscli v0.5.1) into .tools/bin
	@echo; echo "Use it with:  export PATH=\"$(TOOLS_BIN):\$$PATH\""

$(TOOLS_BIN)/nats:
	@mkdir -p $(TOOLS_BIN)
	GOBIN=$(TOOLS_BIN) go install $(NATSCLI)

.PHONY: lint
lint: ## gofmt, go vet and staticcheck (pinned)
	@out=$$(gofmt -l $$(git ls-files -co --exclude-standard '*.go' | grep -v '\.pb\.go$$' | xargs -r ls 2>/dev/null)); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	go vet $(PKGS)
	cd tools && go vet ./...
	cd deploy && go vet ./...
	@test -x $(TOOLS_BIN)/staticcheck || GOBIN=$(TOOLS_BIN) go install $(STATICCHECK)
	$(TOOLS_BIN)/staticcheck $(PKGS)

.PHONY: proto
proto: $(TOOLS_BIN)/buf $(TOOLS_BIN)/protoc-gen-go $(TOOLS_BIN)/protoc-gen-go-grpc ## Regenerate Go code from proto/**/*.proto with pinned buf and plugins
	cd proto && PATH="$(TOOLS_BIN):$$PATH" buf generate

.PHONY: verify-proto
verify-proto: proto ## Fail when the committed generated code differs from the .proto files
	@git diff --exit-code -- proto || { echo "proto: generated code is stale: run make proto and commit"; exit 1; }

$(TOOLS_BIN)/buf:
	GOBIN=$(TOOLS_BIN) go install $(BUF)
$(TOOLS_BIN)/protoc-gen-go:
	GOBIN=$(TOOLS_BIN) go install $(PROTOC_GEN_GO)
$(TOOLS_BIN)/protoc-gen-go-grpc:
	GOBIN=$(TOOLS_BIN) go install $(PROTOC_GEN_GO_GRPC)

.PHONY: tidy
tidy: ## go mod tidy in every module
	@for m in $(MODULES); do (cd $$m && GOWORK=off go mod tidy) || exit 1; done

.PHONY: clean
clean: ## Remove bin/ (keeps .tools/)
	rm -rf bin
