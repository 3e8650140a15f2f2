# ekslink developer targets. Prerequisite: Go (see go.mod). Everything else is installed by these targets.
GO          ?= go
TOOLS_DIR   := $(CURDIR)/.tools
STATICCHECK_VERSION := v0.8.2
STATICCHECK := $(TOOLS_DIR)/staticcheck-$(STATICCHECK_VERSION)
TEST_TIMEOUT ?= 30m

.PHONY: all test lint fmt-check vet staticcheck testbin bench demo build clean

all: build

build:
	$(GO) build -buildvcs=auto ./...

## testbin: build kube-apiserver and etcd for the tests (idempotent, cached outside the repo)
testbin:
	@./hack/testbin.sh

## nodebin: build kubelet, kube-controller-manager and kube-scheduler for the e2e node (idempotent, cached beside testbin)
.PHONY: nodebin e2e
nodebin:
	@./hack/testbin.sh kubelet kube-controller-manager kube-scheduler

## e2e: the test/e2e module (its own go.mod) on a real node: containerd, runc and CNI plugins from Debian
## packages (installed when missing, needs root), the control plane, a kubelet; vet and staticcheck too
e2e: testbin nodebin $(STATICCHECK)
	@./hack/node-deps.sh
	cd test/e2e && $(GO) vet ./... && $(STATICCHECK) ./...
	cd test/e2e && $(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

$(STATICCHECK):
	@mkdir -p $(TOOLS_DIR)
	GOBIN=$(TOOLS_DIR) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	@mv $(TOOLS_DIR)/staticcheck $(STATICCHECK)

staticcheck: $(STATICCHECK)
	$(STATICCHECK) ./...

lint: fmt-check vet staticcheck

## test: formatting, vet, staticcheck, then every test with the race detector (including the
## real-API-server tests; they fail instead of skipping when CI is set and the binaries are missing)
test: testbin lint
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./...

## bench: Go benchmarks plus the load tests that compare against the direct path and print ratios
bench: testbin
	$(GO) test -run '^$$' -bench . -benchmem ./...
	$(GO) test -tags loadtest -run '^TestLoad' -count=1 -v -timeout $(TEST_TIMEOUT) ./... | grep -E '^(=== RUN|--- |ok|FAIL|PASS)|ratio|p50|p99|upstream|memory|throughput|LOAD' 

## demo: the connector end to end on loopback with a transcript (see README); exits 0 only if every step passed
demo: testbin
	$(GO) run ./examples/demo

clean:
	rm -rf $(TOOLS_DIR)
