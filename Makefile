# p4tcd — `make help` lists the targets.
.DEFAULT_GOAL := help

GO        ?= go
CLANG     ?= clang
BIN       := bin
FUZZTIME  ?= 10s
# Fuzz targets CI runs briefly on their corpus: package:Target.
FUZZ_TARGETS := ./translator:FuzzWrite ./translator:FuzzCompileP4Info ./translator:FuzzPacketIO \
	./translator:FuzzCompileConfig ./translator:FuzzIntrospection ./translator:FuzzEntryView \
	./server:FuzzWriteRequest ./server:FuzzReadRequest ./server:FuzzWriteRequestCodec \
	./tcbackend:FuzzDecodeMessage ./tcbackend:FuzzParseNlmsgerr \
	./ebpfdp:FuzzExpandRange ./ebpfdp:FuzzKeyRoundTrip ./ebpfdp:FuzzDecodeSaved ./ebpfdp:FuzzJournalRecord

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

.PHONY: build
build: ## build p4tcd and the tools into bin/
	$(GO) build -o $(BIN)/ ./cmd/...

.PHONY: test
test: ## run every test (privileged ones need root), then each fuzz target briefly
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 15m ./...
	cd integration/goclient && $(GO) vet ./... && $(GO) test -count=1 -timeout 5m ./...
	@GO=$(GO) FUZZTIME=$(FUZZTIME) .ci/fuzz $(FUZZ_TARGETS)

.PHONY: test-short
test-short: ## unit tests only, no root needed
	$(GO) test -count=1 -short -skip 'TestPrivileged' ./...

.PHONY: demo
demo: build ## see it work: a netns lab with p4tcd routing UDP between two hosts (root)
	$(GO) build -o $(BIN)/l3router-demo ./examples/l3router/demo
	$(BIN)/l3router-demo --p4tcd $(BIN)/p4tcd --dir examples/l3router

.PHONY: demo-control-plane
demo-control-plane: build ## the same without a kernel datapath: p4tcd --datapath none and a controller
	@set -e; addr=127.0.0.1:$$((20000 + $$$$ % 20000)); \
	$(BIN)/p4tcd --datapath none --grpc-addr $$addr 2>$(BIN)/demo-p4tcd.log & pid=$$!; \
	trap 'kill $$pid 2>/dev/null; wait $$pid 2>/dev/null || true' EXIT; \
	sleep 0.5; $(GO) run ./examples/quickstart --addr $$addr

.PHONY: test-p4tc
test-p4tc: ## tcbackend against this machine's P4TC kernel (run as root; P4TC must be loaded)
	P4TCD_P4TC_KERNEL=1 $(GO) test -count=1 -v -run 'P4TCKernel' ./tcbackend/

.PHONY: bench
bench: build ## run every benchmark (privileged ones need root) and print one table of rates and ratios
	@mkdir -p $(BIN)
	$(GO) test -run '^$$' -bench . -count 1 -timeout 30m ./... 2>&1 | tee $(BIN)/bench.txt | $(GO) run ./cmd/p4tcd-bench

.PHONY: generate
generate: ## regenerate protobuf Go code (and BPF objects) that are committed
	PATH="$$PATH:$$($(GO) env GOPATH)/bin" protoc \
		--plugin=protoc-gen-go="$$($(GO) tool -n protoc-gen-go)" \
		-I proto -I "$$($(GO) list -m -f '{{.Dir}}' github.com/p4lang/p4runtime)/proto" \
		--go_out=. --go_opt=module=github.com/p4tcd/p4tcd \
		--go_opt=Mp4/v1/p4runtime.proto=github.com/p4lang/p4runtime/go/p4/v1 \
		proto/p4tcd/v1/*.proto
	$(MAKE) generate-bpf

# BPF C of the ebpf datapath: tables headers (p4tcd-gen) and objects, all
# committed. The ebpfdp tests check the headers (TestTablesHeaderGolden).
BPF_CFLAGS := -target bpf -O2 -g -Wall -Werror -mcpu=v3 \
	-I/usr/include/$(shell uname -m)-linux-gnu -I../bpf/include
EBPFDP_TESTDATA := ebpfdp/testdata

.PHONY: generate-bpf
generate-bpf: ## regenerate the BPF tables headers and objects (needs clang)
	$(MAKE) -C examples/l3router generate CLANG=$(CLANG) GO=$(GO)
	$(MAKE) -C examples/conntrack generate CLANG=$(CLANG) GO=$(GO)
	$(MAKE) -C examples/l2switch generate CLANG=$(CLANG) GO=$(GO)
	$(MAKE) -C examples/ecmp generate CLANG=$(CLANG) GO=$(GO)
	$(GO) run ./cmd/p4tcd-gen tables --p4info $(EBPFDP_TESTDATA)/kinds.p4info.txt \
		--introspection $(EBPFDP_TESTDATA)/kinds.json -o $(EBPFDP_TESTDATA)/kinds_tables.h
	$(GO) run ./cmd/p4tcd-gen tables --p4info $(EBPFDP_TESTDATA)/xtss.p4info.txt \
		--introspection $(EBPFDP_TESTDATA)/xtss.json -o $(EBPFDP_TESTDATA)/xtss_tables.h
	$(GO) run ./cmd/p4tcd-gen tables --p4info examples/conntrack/conntrack.p4info.txt \
		--introspection $(EBPFDP_TESTDATA)/ctcrud.json -o $(EBPFDP_TESTDATA)/ctcrud_tables.h
	cd $(EBPFDP_TESTDATA) && for f in kinds kinds_bad ctbench ctcrud xtss; do \
		$(CLANG) $(BPF_CFLAGS) -c $$f.c -o $$f.o || exit 1; \
	done

.PHONY: lint
lint: ## gofmt and go vet
	@test -z "$$(gofmt -l .)" || (gofmt -l .; echo "gofmt: files above need formatting"; exit 1)
	$(GO) vet ./...
