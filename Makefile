# gptoss: a native Go inference engine for gpt-oss.
GO      ?= go
BIN     ?= bin/gptoss

.PHONY: build test bench run lint clean

build:
	$(GO) build -o $(BIN) ./cmd/gptoss

# The whole test suite: golden logits, loader, mxfp4, tokenizer, harmony, CLI.
test:
	$(GO) test ./...

# Kernel and tokenizer throughput (GB/s, MB/s); no timing is asserted.
bench:
	$(GO) test -run '^$$' -bench . -benchtime 2x ./kernels/ ./mxfp4/ ./tokenizer/

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# The main job: serve the OpenAI-compatible API on http://127.0.0.1:8000.
# Without a model it serves the default tiny synthetic checkpoint (random
# weights), created on first run in the user cache directory.
run: build
	$(BIN) serve $(ARGS)

clean:
	rm -rf bin
