// Package kernels holds the CPU compute kernels: dense BF16 and MXFP4
// matrix products, normalisation, the clamped SwiGLU and top-k routing.
// Kernels work on plain slices and know nothing of the model. Each kernel
// here is the portable Go version; SIMD versions of the same functions are
// tested against these.
package kernels
