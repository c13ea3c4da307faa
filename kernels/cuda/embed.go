// Package cuda holds the CUDA kernels of gptoss: the .cu sources and the
// fatbin nvcc built from them (SASS for sm_80, sm_86, sm_89, sm_90 and PTX
// for compute_90, so newer GPUs JIT it), committed so that `go build`
// needs no CUDA toolkit. `make kernels` rebuilds it; CI rebuilds it and
// fails if the bytes differ from the committed file.
package cuda

import _ "embed"

// Fatbin is the module image the CUDA backend loads with cuModuleLoadData.
//
//go:embed gptoss.fatbin
var Fatbin []byte
