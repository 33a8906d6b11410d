# Hermes-Go. `make demo` runs the main job, `make test` runs every test; both
# install what is missing (scripts/deps.sh).
GO ?= go
GOFMT ?= $(shell $(GO) env GOROOT)/bin/gofmt
PEER ?= ../shared/peers/torch_engine.py
export CGO_ENABLED = 0

.PHONY: all build demo test cross arm64-test bench bench-engine deps-data deps-peer deps-nats deps-browser deps-ort deps-qemu onnx-fixtures clean

all: build

build:
	$(GO) build -o hermes ./cmd/hermes

deps-data:
	scripts/deps.sh data

deps-peer:
	scripts/deps.sh peer

deps-nats:
	scripts/deps.sh nats

deps-browser:
	scripts/deps.sh browser

deps-ort:
	scripts/deps.sh ort

deps-qemu:
	scripts/deps.sh qemu

# The ONNX import tests' fixtures, exported by PyTorch (committed, so that
# make test does not need torch).
onnx-fixtures: deps-peer
	/usr/bin/python3 scripts/onnx-fixtures.py nn/onnx/testdata

# The main job: a parameter server and four local worker processes, 1x to
# 8x slower, train the MLP on Fashion-MNIST to 85% test accuracy.
demo: deps-data build
	./hermes demo

# The packages that start goroutines (cluster, cmd/hermes) run under the
# race detector, which needs cgo.
# HERMES_ORT=required: the ONNX export's check by onnxruntime fails rather
# than skips when the runtime is missing.
# HERMES_QEMU=required: the arm64 binary's training check under qemu fails
# rather than skips when qemu is missing.
test: deps-data deps-nats deps-browser deps-ort deps-qemu
	@test -z "$$($(GOFMT) -l .)" || { echo "gofmt needed:"; $(GOFMT) -l .; exit 1; }
	$(GO) vet ./...
	HERMES_ORT=required $(GO) test $$($(GO) list ./... | grep -v -e '/cluster$$' -e '/cmd/hermes$$')
	HERMES_QEMU=required CGO_ENABLED=1 $(GO) test -race ./cluster ./cmd/hermes
	$(MAKE) cross arm64-test

# The engine's tests on arm64 (the NEON kernel against gonum), run by qemu.
arm64-test: deps-qemu
	GOARCH=arm64 $(GO) test -exec qemu-aarch64-static ./nn

# The binary is static and must build for the boards it runs on.
cross:
	GOOS=linux GOARCH=arm64 $(GO) build -o /dev/null ./cmd/hermes
	GOOS=linux GOARCH=arm GOARM=7 $(GO) build -o /dev/null ./cmd/hermes

# Engine speed against the PyTorch peer, measured in the same run.
bench-engine: deps-peer build
	./hermes bench engine --model mlp --batch 16 --steps 3000 --threads 1 --peer $(PEER)
	./hermes bench engine --model cnn --batch 16 --steps 60 --threads 2 --peer $(PEER)

bench:
	$(GO) test -run XXX -bench . -benchtime 2s ./nn

clean:
	rm -f hermes
