// Device memory read bandwidth, the roofline of decode on the GPU (as
// `gptoss bench membw` measures it for the CPU): every thread streams
// 16-byte loads over the buffer, grid-stride with four loads in flight,
// and folds them with XOR so that the loads cannot be optimised away. The
// loads are evict-first (__ldcs): the buffer is read once per pass and
// should not settle in L2.

#include "common.cuh"

// grid SMs·8, block 256; n is the buffer size in 16-byte words.
KERNEL void read_bw(const uint4 *buf, long long n, unsigned *sink) {
	long long stride = (long long)gridDim.x * blockDim.x;
	long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
	unsigned acc = 0;
	for (; i + 3 * stride < n; i += 4 * stride) {
		uint4 a = __ldcs(buf + i), b = __ldcs(buf + i + stride);
		uint4 c = __ldcs(buf + i + 2 * stride), d = __ldcs(buf + i + 3 * stride);
		acc ^= a.x ^ a.y ^ a.z ^ a.w ^ b.x ^ b.y ^ b.z ^ b.w ^ c.x ^ c.y ^ c.z ^ c.w ^ d.x ^ d.y ^ d.z ^ d.w;
	}
	for (; i < n; i += stride) {
		uint4 a = __ldcs(buf + i);
		acc ^= a.x ^ a.y ^ a.z ^ a.w;
	}
#pragma unroll
	for (int o = 16; o > 0; o >>= 1) acc ^= __shfl_xor_sync(0xffffffffu, acc, o);
	if (threadIdx.x % WARP == 0) atomicXor(sink, acc);
}
