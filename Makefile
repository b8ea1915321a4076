# breakwater: `make run` builds and starts the exporter, `make test` runs the
# whole suite (installing the pinned tools and starting the Docker engine it
# needs). Everything else is a building block of those two.
SHELL := /bin/bash
GO ?= go
TOOLS_BIN := $(CURDIR)/.tools/bin
export BREAKWATER_TOOLS_BIN := $(TOOLS_BIN)
LISTEN ?= :9760
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/prometheus/common/version.Version=$(VERSION) \
	-X github.com/prometheus/common/version.Revision=$(shell git rev-parse HEAD 2>/dev/null) \
	-X github.com/prometheus/common/version.Branch=$(shell git rev-parse --abbrev-ref HEAD 2>/dev/null)

.PHONY: all build run test test-arm64 test-kernels test-engine-restart fuzz unit e2e bench generate check-generated rules dashboards lint tools deps docker

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/breakwater ./cmd/breakwater

run: build
	./bin/breakwater --web.listen-address=$(LISTEN)

# deps installs the Debian packages the suite uses (needs root).
deps:
	bash scripts/deps.sh

tools: $(TOOLS_BIN)/promtool $(TOOLS_BIN)/prometheus $(TOOLS_BIN)/alertmanager $(TOOLS_BIN)/amtool

$(TOOLS_BIN)/promtool $(TOOLS_BIN)/prometheus &: tools/go.mod tools/go.sum
	cd tools && $(GO) build -o $(TOOLS_BIN)/ github.com/prometheus/prometheus/cmd/promtool github.com/prometheus/prometheus/cmd/prometheus

$(TOOLS_BIN)/alertmanager $(TOOLS_BIN)/amtool &: tools/alertmanager/go.mod tools/alertmanager/go.sum
	cd tools/alertmanager && $(GO) build -o $(TOOLS_BIN)/ github.com/prometheus/alertmanager/cmd/alertmanager github.com/prometheus/alertmanager/cmd/amtool

docker:
	bash scripts/docker-up.sh

# test is the whole suite: unit tests, privileged BPF and container tests,
# promtool rule tests and the end-to-end path. Root-only tests skip when not root.
# The end-to-end and hardening packages load the whole machine (storms,
# churn, timed alerts): they run one at a time, after the rest; e2e verbose,
# so that its table of alert timings is printed. The rest runs under the race
# detector: collectors share maps and tables between goroutines.
test: deps tools docker test-arm64
	$(GO) vet ./...
	$(GO) test -count=1 -race -timeout 40m $$($(GO) list ./... | grep -v -e /hardening -e /e2e)
	$(GO) test -count=1 -timeout 20m ./hardening/...
	$(MAKE) e2e
	cd deploy/validate && $(GO) vet ./... && $(GO) test -count=1 -timeout 10m ./...

# test-arm64 builds and vets everything for arm64 and runs the tests of
# what differs there (syscall tables, the BPF programs' names, the syscall
# classification) under qemu-user.
test-arm64:
	GOARCH=arm64 $(GO) build ./...
	GOARCH=arm64 $(GO) vet ./...
	GOARCH=arm64 $(GO) test -c -o .tools/arm64-syscalls.test ./internal/syscalls
	qemu-aarch64 .tools/arm64-syscalls.test
	GOARCH=arm64 $(GO) test -c -o .tools/arm64-bpf.test ./bpf
	qemu-aarch64 .tools/arm64-bpf.test -test.run '^(TestNames|TestNoaudit)'
	GOARCH=arm64 $(GO) test -c -o .tools/arm64-security.test ./collectors/security
	qemu-aarch64 .tools/arm64-security.test -test.run '^(TestDescs|TestCapabilityNames|TestProfiles|TestSeccompProfileShape|TestCorrupt)'

# test-kernels boots Debian's cloud kernels (5.10, 6.1, 6.12; amd64 and
# arm64) under QEMU TCG and runs breakwater check, the exporter and the
# escape corpus of internal/corpus in each; see docs/kernels.md. Not part
# of test: it takes minutes of its own. Not in CI yet: on 2026-12-08 the
# arm64 guests spent over 10 minutes in `breakwater check` loading the
# programs under TCG (amd64 guests: under a minute), so the matrix no
# longer fits CI's budget until that is brought down.
KERNELS_CACHE ?= .tools/kernels
KERNELS_PARALLEL ?= 2
test-kernels:
	bash scripts/deps.sh kernels
	$(GO) run ./kernels -cache $(KERNELS_CACHE) -parallel $(KERNELS_PARALLEL)

# test-engine-restart stops and starts the Docker engine: it runs alone,
# after every other test, because it stops every container on the host.
test-engine-restart: docker
	BREAKWATER_TEST_ENGINE_RESTART=1 $(GO) test -count=1 -run TestDockerEngineRestart ./collectors/resources/
	BREAKWATER_TEST_ENGINE_RESTART=1 $(GO) test -count=1 -run 'TestAlertNamedAcross(Engine|Containerd)Restart' ./hardening/

# fuzz runs every fuzz target briefly (CI does); -fuzzminimizetime keeps
# minimisation from eating the whole budget. The budget is a count, not a
# duration: Go 1.26's coordinator can fail a duration run with "context
# deadline exceeded" as the time runs out (golang/go#75804, fixed in 1.27).
FUZZTIME ?= 20000x
fuzz:
	$(GO) test -run='^$$' -fuzz='^FuzzContainerIDFromCgroupPath$$' -fuzztime=$(FUZZTIME) -fuzzminimizetime=10x ./exporter/identity
	$(GO) test -run='^$$' -fuzz='^FuzzLoad$$' -fuzztime=$(FUZZTIME) -fuzzminimizetime=10x ./rules
	$(GO) test -run='^$$' -fuzz='^FuzzFlags$$' -fuzztime=$(FUZZTIME) -fuzzminimizetime=10x ./exporter/alertpush
	$(GO) test -run='^$$' -fuzz='^FuzzWebConfig$$' -fuzztime=$(FUZZTIME) -fuzzminimizetime=10x ./cmd/breakwater

unit:
	$(GO) test -count=1 -short ./...

e2e: tools docker
	$(GO) test -count=1 -timeout 30m -v ./e2e/...

bench: build tools docker
	$(GO) run ./bench

# generate regenerates the BPF objects (needs clang, llvm, libbpf-dev) and
# every generated artifact; check-generated fails when the committed files drift.
generate: rules dashboards
	$(GO) generate ./bpf/... ./bench/floor/... ./internal/syscalls/...
	$(GO) run ./deploy/helm/generate

check-generated: generate
	git diff --exit-code -- bpf bench/floor internal/syscalls rules deploy dashboards || (echo "generated files drifted: run make generate and commit" >&2; exit 1)

rules:
	$(GO) run ./rules/generate

dashboards:
	$(GO) run ./dashboards/generate

lint: tools
	test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)
	$(GO) vet ./...
	$(GO) tool -modfile=tools/go.mod staticcheck ./...
	$(TOOLS_BIN)/promtool check rules rules/breakwater.rules.yml
