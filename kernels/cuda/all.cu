// The single translation unit nvcc compiles into gptoss.fatbin: one module,
// so the Go side loads one image (cuModuleLoadData) and finds every kernel.
#include "elementwise.cu"
#include "matmul.cu"
#include "attention.cu"
#include "moe.cu"
#include "sample.cu"
#include "membw.cu"
