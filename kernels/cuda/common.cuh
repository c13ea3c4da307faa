// Shared helpers of the gptoss CUDA kernels. Every kernel is extern "C" so
// the Go side finds it by its plain name (cuModuleGetFunction), and takes
// sizes as int (4 bytes) and pointers (8 bytes), as driver.Args packs them.
#pragma once
#include <stdint.h>

#define WARP 32
#define KERNEL extern "C" __global__

// BF16 is the top half of an IEEE float32: widening is a shift.
__device__ __forceinline__ float bf16(uint16_t u) { return __uint_as_float((uint32_t)u << 16); }

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
	for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
	return v;
}

__device__ __forceinline__ double warp_sum_d(double v) {
#pragma unroll
	for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
	return v;
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
	for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
	return v;
}

// E2M1 code to value (spec §4); bit 3 is the sign.
__device__ __constant__ float kE2M1[16] = {0.f, .5f, 1.f, 1.5f, 2.f, 3.f, 4.f, 6.f,
                                           -0.f, -.5f, -1.f, -1.5f, -2.f, -3.f, -4.f, -6.f};

// E8M0 scale 2^(e-127): byte 0 is the float32 subnormal 2^-127, 255
// overflows to +Inf like the reference implementations (mxfp4.Scale).
__device__ __forceinline__ float e8m0(uint8_t e) {
	return e == 0 ? __uint_as_float(1u << 22) : __uint_as_float((uint32_t)e << 23);
}
