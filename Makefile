# gptoss: a native Go inference engine for gpt-oss.
GO      ?= go
BIN     ?= bin/gptoss

.PHONY: build test bench run lint clean kernels

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

# The CUDA kernels: one fatbin (SASS sm_80/86/89/90 + PTX compute_90) from
# kernels/cuda/all.cu, committed and embedded, so `go build` needs no CUDA.
# Needs nvcc (Debian: nvidia-cuda-toolkit 11.8; gcc 12 is newer than it
# officially supports, hence -allow-unsupported-compiler).
NVCC       ?= nvcc
CUDA_ARCHS ?= -gencode arch=compute_80,code=sm_80 -gencode arch=compute_86,code=sm_86 \
	-gencode arch=compute_89,code=sm_89 -gencode arch=compute_90,code=[sm_90,compute_90]
kernels:
	cd kernels/cuda && $(NVCC) -fatbin -O3 -allow-unsupported-compiler $(CUDA_ARCHS) -o gptoss.fatbin all.cu

clean:
	rm -rf bin
