# ekslink developer targets. Prerequisite: Go (see go.mod). Everything else is installed by these targets.
GO          ?= go
TOOLS_DIR   := $(CURDIR)/.tools
STATICCHECK_VERSION := v0.8.2
STATICCHECK := $(TOOLS_DIR)/staticcheck-$(STATICCHECK_VERSION)
TEST_TIMEOUT ?= 30m
# Images (hack/images): VERSION defaults to git describe / the commit's pseudo-version; the names in
# the archives are $(IMAGE_PREFIX)/<name>:<version>; make push needs REGISTRY, TAG defaults to the
# version.
IMAGES_DIR  := $(CURDIR)/_output/images
IMAGE_PREFIX ?= localhost/ekslink
VERSION     ?=
REGISTRY    ?=
TAG         ?=
# Modules besides the SDK's: tested and linted by make test, with their own go.mod.
TOOL_MODULES := hack/images charts test/interop

.PHONY: all test lint fmt-check vet staticcheck testbin bench demo build clean images push

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
## packages (installed when missing, needs root), the control plane, a kubelet, and the images of
## make images installed through the renderer and the charts; vet and staticcheck too. One package
## at a time (-p 1): each starts a node, and a node owns machine-wide addresses (the kubernetes
## Service IP, the pod identity agent's link-local addresses).
e2e: testbin nodebin images $(STATICCHECK)
	@./hack/node-deps.sh
	cd test/e2e && $(GO) vet ./... && $(STATICCHECK) ./...
	cd test/e2e && EKSLINK_E2E_IMAGES=$(IMAGES_DIR) $(GO) test -race -p 1 -count=1 -timeout $(TEST_TIMEOUT) ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...
	@for m in $(TOOL_MODULES); do echo "cd $$m && $(GO) vet ./..."; (cd $$m && $(GO) vet ./...) || exit 1; done

$(STATICCHECK):
	@mkdir -p $(TOOLS_DIR)
	GOBIN=$(TOOLS_DIR) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	@mv $(TOOLS_DIR)/staticcheck $(STATICCHECK)

staticcheck: $(STATICCHECK)
	$(STATICCHECK) ./...
	@for m in $(TOOL_MODULES); do echo "cd $$m && staticcheck ./..."; (cd $$m && $(STATICCHECK) ./...) || exit 1; done

lint: fmt-check vet staticcheck

## test: formatting, vet, staticcheck, then every test with the race detector (including the
## real-API-server tests; they fail instead of skipping when CI is set and the binaries are missing)
test: testbin lint
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./...
	@for m in $(TOOL_MODULES); do echo "cd $$m && $(GO) test -race ./..."; (cd $$m && $(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./...) || exit 1; done
	$(MAKE) e2e

## bench: Go benchmarks plus the load tests that compare against the direct path and print ratios
bench: testbin
	$(GO) test -run '^$$' -bench . -benchmem ./...
	@for m in $(TOOL_MODULES); do (cd $$m && $(GO) test -run '^$$' -bench . -benchmem ./...) || exit 1; done
	$(GO) test -tags loadtest -run '^TestLoad' -count=1 -v -timeout $(TEST_TIMEOUT) ./... | grep -E '^(=== RUN|--- |ok|FAIL|PASS)|ratio|p50|p99|upstream|memory|throughput|LOAD' 

## demo: the connector end to end on loopback with a transcript (see README); exits 0 only if every step passed
demo: testbin
	$(GO) run ./examples/demo

## images: one OCI image per binary for linux/amd64 and linux/arm64, without Docker, into
## _output/images/<name>.tar (ctr image import, docker load); see docs/deploy.md#images
images:
	cd hack/images && $(GO) run . build -root $(CURDIR) -out $(IMAGES_DIR) -prefix '$(IMAGE_PREFIX)' -version '$(VERSION)'

## push: push the multi-platform images built by make images: make push REGISTRY=registry.example/team VERSION=v0.1.0
ifneq ($(filter push,$(MAKECMDGOALS)),)
ifeq ($(REGISTRY),)
$(error make push needs REGISTRY=<registry>/<path>, e.g. make push REGISTRY=ghcr.io/your-org VERSION=v0.1.0)
endif
endif
push: images
	cd hack/images && $(GO) run . push -in $(IMAGES_DIR) -registry '$(REGISTRY)' -tag '$(TAG)'

clean:
	rm -rf $(TOOLS_DIR) $(CURDIR)/_output
