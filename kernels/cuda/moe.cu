// Router top-k and the MXFP4 experts (spec §4, §5 h, i). Weights stay in
// MXFP4 on the device (4.25 bits per weight: 16 bytes of nibbles and one
// scale byte per 32 values) and are decoded in registers; low nibble =
// even element, matrices stored [out][in] as blocks [rows][in/32][16].

#include "common.cuh"
#include <math.h>

// Per row: the k largest logits, descending, lower index first on ties,
// and the softmax over them (in double, like kernels.TopK).
// grid ceil(n/128), block 128.
KERNEL void topk_softmax(int *idx, float *w, const float *logits, int n, int experts, int k) {
	int r = blockIdx.x * blockDim.x + threadIdx.x;
	if (r >= n) return;
	const float *l = logits + (int64_t)r * experts;
	int *ir = idx + (int64_t)r * k;
	float *wr = w + (int64_t)r * k;
	for (int j = 0; j < k; j++) {
		int best = -1;
		for (int e = 0; e < experts; e++) {
			bool taken = false;
			for (int i = 0; i < j; i++) taken |= ir[i] == e;
			if (taken || (best >= 0 && l[e] <= l[best])) continue;
			best = e;
		}
		ir[j] = best;
	}
	float m = l[ir[0]];
	double sum = 0;
	for (int j = 0; j < k; j++) {
		double e = exp((double)(l[ir[j]] - m));
		wr[j] = (float)e;
		sum += e;
	}
	for (int j = 0; j < k; j++) wr[j] = (float)((double)wr[j] / sum);
}

// One MXFP4 row · x: lanes stride over the 32-value blocks, each block is
// one 16-byte load of nibbles and one scale byte.
__device__ __forceinline__ float mxfp4_row_dot(const uint8_t *blocks, const uint8_t *scales, const float *x, int groups, int lane) {
	float acc = 0.f;
	for (int g = lane; g < groups; g += WARP) {
		uint4 q = ((const uint4 *)blocks)[g];
		const float *xs = x + g * 32;
		uint32_t words[4] = {q.x, q.y, q.z, q.w};
		float s0 = 0.f, s1 = 0.f;
#pragma unroll
		for (int wi = 0; wi < 4; wi++) {
#pragma unroll
			for (int b = 0; b < 4; b++) {
				uint32_t byte = (words[wi] >> (8 * b)) & 0xff;
				int j = wi * 4 + b;
				s0 += kE2M1[byte & 0xf] * xs[2 * j];
				s1 += kE2M1[byte >> 4] * xs[2 * j + 1];
			}
		}
		acc += (s0 + s1) * e8m0(scales[g]);
	}
	return warp_sum(acc);
}

// The per-slot kernels read the expert ids on the device (the host never
// waits for them, so a decode step needs no round trip and can be a CUDA
// graph). An id outside [0, experts) cannot come from topk_softmax, but
// indices from elsewhere could hold one: the slot's output is then NaN and
// bit 0 of *err is set, which the host reports at its next read instead
// of reading outside the weights.
__device__ __forceinline__ bool bad_expert(int e, int experts, int *err) {
	if ((unsigned)e < (unsigned)experts) return false;
	if (threadIdx.x == 0) atomicOr(err, 1);
	return true;
}

// Gate/up product of every (row, choice) slot with the clamped SwiGLU
// fused: one warp reads the gate row 2i and the up row 2i+1 (interleaved,
// kernels.SwiGLU) of the slot's expert and writes act[slot][i].
// grid (ceil(inter/8), n·k), block 256.
KERNEL void moe_gate_up_swiglu(float *act, const float *x, const int *idx, const uint8_t *blocks, const uint8_t *scales,
                               const float *bias, int k, int rows, int cols, float alpha, float limit, int experts,
                               int *err) {
	int inter = rows / 2;
	int i = blockIdx.x * (blockDim.x / WARP) + threadIdx.x / WARP, lane = threadIdx.x % WARP;
	int slot = blockIdx.y, e = idx[slot];
	if (bad_expert(e, experts, err)) {
		if (i < inter && lane == 0) act[(int64_t)slot * inter + i] = NAN;
		return;
	}
	if (i >= inter) return;
	int groups = cols / 32;
	const float *xr = x + (int64_t)(slot / k) * cols;
	int64_t erow = (int64_t)e * rows;
	int64_t g0 = (erow + 2 * i) * groups, g1 = (erow + 2 * i + 1) * groups;
	float g = mxfp4_row_dot(blocks + g0 * 16, scales + g0, xr, groups, lane) + bias[erow + 2 * i];
	float u = mxfp4_row_dot(blocks + g1 * 16, scales + g1, xr, groups, lane) + bias[erow + 2 * i + 1];
	if (lane == 0) {
		g = fminf(g, limit);
		u = fminf(fmaxf(u, -limit), limit);
		act[(int64_t)slot * inter + i] = g / (1.f + expf(-alpha * g)) * (u + 1.f);
	}
}

// Down product of every slot: y[slot][o]. grid (ceil(rows/8), n·k), block 256.
KERNEL void moe_down(float *y, const float *act, const int *idx, const uint8_t *blocks, const uint8_t *scales,
                     const float *bias, int rows, int cols, int experts, int *err) {
	int o = blockIdx.x * (blockDim.x / WARP) + threadIdx.x / WARP, lane = threadIdx.x % WARP;
	int slot = blockIdx.y, e = idx[slot];
	if (bad_expert(e, experts, err)) {
		if (o < rows && lane == 0) y[(int64_t)slot * rows + o] = NAN;
		return;
	}
	if (o >= rows) return;
	int groups = cols / 32;
	int64_t row = (int64_t)e * rows + o;
	float s = mxfp4_row_dot(blocks + row * groups * 16, scales + row * groups, act + (int64_t)slot * cols, groups, lane);
	if (lane == 0) y[(int64_t)slot * rows + o] = s + bias[row];
}

// dst[r][o] = Σ_j w[r][j]·y[r·k+j][o], in j order (deterministic, no
// atomics). grid ceil(n·rows/256), block 256.
//
// With counter set, block 0 also adds expert_bytes for every distinct
// expert among the batch's n·k ids: the experts the per-slot kernels read,
// which the ids alone decide. The ids stay on the device, so counting the
// bytes a decode step reads costs no round trip. Only the per-slot path
// passes a counter, with n·k < 64 (groupedMinSlots on the Go side).
#define COUNT_MAX_IDS 64
KERNEL void moe_combine(float *dst, const float *y, const float *w, int n, int k, int rows, const int *idx,
                        unsigned long long *counter, long long expert_bytes) {
	int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
	if (counter && blockIdx.x == 0) {
		__shared__ int ids[COUNT_MAX_IDS];
		int c = min(n * k, COUNT_MAX_IDS);
		if (threadIdx.x < c) ids[threadIdx.x] = idx[threadIdx.x];
		__syncthreads();
		if (threadIdx.x < c) {
			bool first = true; // no earlier slot has this expert
			for (int j = 0; j < (int)threadIdx.x; j++) first &= ids[j] != ids[threadIdx.x];
			if (first) atomicAdd(counter, (unsigned long long)expert_bytes);
		}
	}
	if (t >= (int64_t)n * rows) return;
	int r = t / rows, o = t % rows;
	float s = 0.f;
	for (int j = 0; j < k; j++) s += w[r * k + j] * y[((int64_t)r * k + j) * rows + o];
	dst[t] = s;
}

// Grouped product for prefill and batches: the slots are sorted by expert
// on the host (offsets[e] … offsets[e+1]-1 in `slots`, holding slot
// numbers), and each block multiplies one expert's 32 output rows by up
// to 32 of its slots, decoding every weight block once into shared memory
// for all of them. out[slot][o] = W_e[o]·in[src(slot)] + bias_e[o], where
// src is slot/k for gate_up (the token's row) and slot for down.
// grid (ceil(rows/32), tiles), block 256; tile_expert/tile_first describe
// each tile (expert, first sorted index), built on the host.
KERNEL void moe_grouped(float *out, const float *in, const int *slots, const int *tile_expert, const int *tile_first,
                        const int *offsets, const uint8_t *blocks, const uint8_t *scales, const float *bias,
                        int rows, int cols, int in_div) {
	__shared__ float wsh[32][33];
	__shared__ float xsh[32][33];
	int e = tile_expert[blockIdx.y], first = tile_first[blockIdx.y];
	int count = min(32, offsets[e + 1] - first);
	int o0 = blockIdx.x * 32;
	int groups = cols / 32;
	int tx = threadIdx.x % 32, ty = threadIdx.x / 32; // ty: 8 rows of 4 slots
	float acc[4] = {0.f, 0.f, 0.f, 0.f};
	for (int g = 0; g < groups; g++) {
		// Decode 32 rows × 32 values of weights and gather 32 slots × 32 inputs.
		for (int l = threadIdx.x; l < 32 * 32; l += blockDim.x) {
			int rr = l / 32, c = l % 32;
			int o = o0 + rr;
			float wv = 0.f;
			if (o < rows) {
				int64_t row = (int64_t)e * rows + o;
				uint8_t byte = blocks[(row * groups + g) * 16 + c / 2];
				wv = kE2M1[(c & 1) ? byte >> 4 : byte & 0xf] * e8m0(scales[row * groups + g]);
			}
			wsh[rr][c] = wv;
			float xv = 0.f;
			if (rr < count) xv = in[(int64_t)(slots[first + rr] / in_div) * cols + g * 32 + c];
			xsh[rr][c] = xv;
		}
		__syncthreads();
		// Thread (tx, ty): output row o0+tx, slots ty, ty+8, ty+16, ty+24.
#pragma unroll
		for (int c = 0; c < 32; c++) {
			float wv = wsh[tx][c];
#pragma unroll
			for (int s = 0; s < 4; s++) acc[s] += wv * xsh[ty + 8 * s][c];
		}
		__syncthreads();
	}
	int o = o0 + tx;
	if (o >= rows) return;
	float b = bias[(int64_t)e * rows + o];
#pragma unroll
	for (int s = 0; s < 4; s++) {
		int si = ty + 8 * s;
		if (si < count) out[(int64_t)slots[first + si] * rows + o] = acc[s] + b;
	}
}

// Clamped SwiGLU over interleaved gate/up rows: act[s][i] from
// h[s][2i], h[s][2i+1]. grid ceil(slots·inter/256), block 256.
KERNEL void swiglu(float *act, const float *h, int count, float alpha, float limit) {
	int t = blockIdx.x * blockDim.x + threadIdx.x;
	if (t >= count) return;
	float g = fminf(h[2 * t], limit);
	float u = fminf(fmaxf(h[2 * t + 1], -limit), limit);
	act[t] = g / (1.f + expf(-alpha * g)) * (u + 1.f);
}
