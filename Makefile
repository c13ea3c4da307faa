# gptoss: a native Go inference engine for gpt-oss.
GO      ?= go
BIN     ?= bin/gptoss
CACHE   ?= .cache
TINY    ?= $(CACHE)/tiny

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

# The main job: a synthetic tiny checkpoint (made once, in $(CACHE)), its
# description, and the logits of a few tokens.
run: build
	@test -f $(TINY)/config.json || $(BIN) synth --preset tiny --out $(TINY)
	$(BIN) inspect --model $(TINY) | head -12
	$(BIN) logits --model $(TINY) --tokens 12194,11,2375,0 --mode decode --out $(CACHE)/logits.f32

clean:
	rm -rf bin $(CACHE)
