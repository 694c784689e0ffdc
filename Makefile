# golden: `make test` is the one command that checks everything.
GO        ?= go
TOOLS_BIN := $(CURDIR)/.tools/bin

# Code generators, pinned; `make generate` installs them into .tools/bin.
BUF_VERSION                := v1.47.2
PROTOC_GEN_GO_VERSION      := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.5.1

.PHONY: build dev test test-compose test-kubernetes test-short vet fmt-check lint backends check-configs generate env test-e2e bench clean

build:
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/golden ./cmd/golden

## dev: the services with Consul, Jaeger, Mailpit, Alertmanager and
## Prometheus on loopback, without Docker (`golden dev`), building the
## backends into the cache first when they are missing.
dev: build
	@scripts/install-backends.sh consul jaeger mailpit alertmanager prometheus >/dev/null
	bin/golden dev

## test: vet, formatting, the linter, backend configs, every test with the
## race detector against real backends (built once into a cache by
## `backends`), then docker-compose.yml on a Docker engine (test-compose)
## and kubernetes/ on a Kubernetes node of this machine (test-kubernetes).
test: vet fmt-check lint backends check-configs
	GOLDEN_REQUIRE_BACKENDS=1 $(GO) test -race -count=1 -timeout 30m ./...
	$(MAKE) test-compose
	$(MAKE) test-kubernetes

## test-compose: docker-compose.yml as it is on a real Docker engine, under
## load (integration/compose_engine_test.go). Uses the running engine, or
## installs and starts Debian's docker.io as root; images that cannot be
## pulled are stood in for (README "Stand-in images").
test-compose: backends
	GO=$(GO) scripts/test-compose.sh

## test-kubernetes: kubernetes/ on a Kubernetes node of this machine, under
## load (integration/kubernetes_node_test.go): control plane, containerd,
## kubelet, kube-proxy and CoreDNS, the images of test-compose. As root;
## installs Debian's docker.io and containernetworking-plugins if missing.
test-kubernetes: backends
	GO=$(GO) scripts/test-kubernetes.sh

## backends: build Consul, Prometheus, Alertmanager, Jaeger, Mailpit,
## docker compose, the Kubernetes binaries, etcd and CoreDNS from the Go module proxy
## into ~/.cache/golden/backends (first run only), and install PostgreSQL 15
## from Debian's packages where it is missing.
backends:
	@scripts/install-backends.sh consul prometheus alertmanager jaeger compose mailpit postgres kube etcd coredns >/dev/null

## check-configs: promtool and amtool checks and tests of prometheus/ and alertmanager/.
check-configs: backends
	scripts/check-configs.sh

## test-e2e: the end-to-end test alone (fault -> alert -> lookup, restart
## under load) against real backends; also part of `make test`.
test-e2e: backends
	GOLDEN_REQUIRE_BACKENDS=1 $(GO) test -race -count=1 -timeout 20m -run TestEndToEndFaultToAlertToLookup -v ./integration

## test-short: the unit tests only, in seconds, without backends.
test-short:
	$(GO) test -short ./...

vet:
	$(GO) vet ./...

## lint: golangci-lint with .golangci.yml, pinned and installed into
## .tools/bin by scripts/install-lint.sh (first run only).
lint:
	"$$(scripts/install-lint.sh)" run ./...

fmt-check:
	@out="$$(gofmt -l $$(find . -name '*.go' -not -path './.tools/*'))"; \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

## generate: regenerate the Go code of the contracts in api/.
generate: $(TOOLS_BIN)/buf $(TOOLS_BIN)/protoc-gen-go $(TOOLS_BIN)/protoc-gen-go-grpc
	cd api && PATH="$(TOOLS_BIN):$$PATH" buf lint && PATH="$(TOOLS_BIN):$$PATH" buf generate

$(TOOLS_BIN)/buf:
	GOBIN=$(TOOLS_BIN) $(GO) install github.com/bufbuild/buf/cmd/buf@$(BUF_VERSION)
$(TOOLS_BIN)/protoc-gen-go:
	GOBIN=$(TOOLS_BIN) $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
$(TOOLS_BIN)/protoc-gen-go-grpc:
	GOBIN=$(TOOLS_BIN) $(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)

## bench: what the instrumentation costs (per RPC, ghz, log calls, RSS, sampling);
## writes bench/RESULTS.md.
bench:
	scripts/bench.sh

## env: write .env with random secrets for docker compose (never replaces an existing one).
env:
	scripts/gen-env.sh

clean:
	rm -rf bin .golden
