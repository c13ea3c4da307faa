// Router top-k and the MXFP4 experts (spec §4, §5 h, i). Weights stay in
// MXFP4 on the device (4.25 bits per weight: 16 bytes of nibbles and one
// scale byte per 32 values) and are decoded in registers; low nibble =
// even element, matrices stored [out][in] as blocks [rows][in/32][16].

#include "common.cuh"
#include <cuda_bf16.h>
#include <math.h>
#include <mma.h>

// Per row: the k largest logits, descending, lower index first on ties,
// and the softmax over them (in double, like kernels.TopK). One warp per
// row: each round every lane offers its best untaken expert and a warp
// reduction picks the winner. grid ceil(n/4), block 128.
KERNEL void topk_softmax(int *idx, float *w, const float *logits, int n, int experts, int k) {
	int r = blockIdx.x * (blockDim.x / WARP) + threadIdx.x / WARP, lane = threadIdx.x % WARP;
	if (r >= n) return;
	const float *l = logits + (int64_t)r * experts;
	int *ir = idx + (int64_t)r * k;
	float *wr = w + (int64_t)r * k;
	uint32_t taken = 0; // bit j: expert lane + 32j was chosen
	for (int j = 0; j < k; j++) {
		float bv = -INFINITY;
		int bi = -1;
		for (int e = lane, b = 0; e < experts; e += WARP, b++) {
			if (taken >> b & 1) continue;
			float v = l[e];
			if (bi < 0 || v > bv) bv = v, bi = e;
		}
#pragma unroll
		for (int o = 16; o > 0; o >>= 1) {
			float ov = __shfl_xor_sync(0xffffffffu, bv, o);
			int oi = __shfl_xor_sync(0xffffffffu, bi, o);
			if (oi >= 0 && (bi < 0 || ov > bv || (ov == bv && oi < bi))) bv = ov, bi = oi;
		}
		if (bi >= 0 && bi % WARP == lane) taken |= 1u << (bi / WARP);
		if (lane == 0) ir[j] = bi;
	}
	__syncwarp();
	if (lane == 0) {
		float m = l[ir[0]];
		double sum = 0;
		for (int j = 0; j < k; j++) {
			double e = exp((double)(l[ir[j]] - m));
			wr[j] = (float)e;
			sum += e;
		}
		for (int j = 0; j < k; j++) wr[j] = (float)((double)wr[j] / sum);
	}
}

// The E2M1 table in shared memory: lanes of a warp look up different
// codes, which the constant cache would serve one distinct address at a
// time; 16 words in 16 banks serve a whole warp at once.
#define E2M1_SHARED(lut)                                        \
	__shared__ float lut[16];                                   \
	if (threadIdx.x < 16) lut[threadIdx.x] = kE2M1[threadIdx.x]; \
	__syncthreads()

// Two MXFP4 rows · x at once (two rows' loads in flight): two lanes per
// 32-value block, lane half h taking values 16h … 16h+15 (nibble bytes
// 8h … 8h+7), so a warp reads 16 blocks (256 contiguous bytes) of each row
// and 2 KiB of x per step, all coalesced. Returns the warp-summed dots.
__device__ __forceinline__ float mxfp4_dot16(uint2 q, const float *xs, const float *lut) {
	const float4 *x4 = (const float4 *)xs;
	uint32_t words[2] = {q.x, q.y};
	float s = 0.f;
#pragma unroll
	for (int wi = 0; wi < 2; wi++) {
		float4 a = x4[2 * wi], b = x4[2 * wi + 1];
		uint32_t w = words[wi];
		s += lut[w & 0xf] * a.x + lut[(w >> 4) & 0xf] * a.y + lut[(w >> 8) & 0xf] * a.z + lut[(w >> 12) & 0xf] * a.w +
		     lut[(w >> 16) & 0xf] * b.x + lut[(w >> 20) & 0xf] * b.y + lut[(w >> 24) & 0xf] * b.z + lut[w >> 28] * b.w;
	}
	return s;
}

__device__ __forceinline__ float2 mxfp4_rows2_dot(const uint8_t *b0, const uint8_t *s0, const uint8_t *b1,
                                                  const uint8_t *s1, const float *x, int groups, int lane,
                                                  const float *lut) {
	float acc0 = 0.f, acc1 = 0.f;
	int h = lane & 1;
	for (int g = lane >> 1; g < groups; g += WARP / 2) {
		uint2 q0 = ((const uint2 *)b0)[2 * g + h], q1 = ((const uint2 *)b1)[2 * g + h];
		float e0 = e8m0(s0[g]), e1 = e8m0(s1[g]);
		const float *xs = x + g * 32 + 16 * h;
		acc0 += mxfp4_dot16(q0, xs, lut) * e0;
		acc1 += mxfp4_dot16(q1, xs, lut) * e1;
	}
	return make_float2(warp_sum(acc0), warp_sum(acc1));
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
	E2M1_SHARED(lut);
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
	float2 gu = mxfp4_rows2_dot(blocks + g0 * 16, scales + g0, blocks + g1 * 16, scales + g1, xr, groups, lane, lut);
	float g = gu.x + bias[erow + 2 * i], u = gu.y + bias[erow + 2 * i + 1];
	if (lane == 0) {
		g = fminf(g, limit);
		u = fminf(fmaxf(u, -limit), limit);
		act[(int64_t)slot * inter + i] = g / (1.f + expf(-alpha * g)) * (u + 1.f);
	}
}

// Down product of every slot: y[slot][o], a warp taking rows 2j and 2j+1.
// grid (ceil(rows/16), n·k), block 256.
KERNEL void moe_down(float *y, const float *act, const int *idx, const uint8_t *blocks, const uint8_t *scales,
                     const float *bias, int rows, int cols, int experts, int *err) {
	E2M1_SHARED(lut);
	int o = 2 * (blockIdx.x * (blockDim.x / WARP) + threadIdx.x / WARP), lane = threadIdx.x % WARP;
	int slot = blockIdx.y, e = idx[slot];
	if (bad_expert(e, experts, err)) {
		if (lane == 0)
			for (int j = o; j < min(o + 2, rows); j++) y[(int64_t)slot * rows + j] = NAN;
		return;
	}
	if (o >= rows) return;
	int groups = cols / 32;
	int64_t row = (int64_t)e * rows + o;
	int64_t next = o + 1 < rows ? row + 1 : row; // an odd last row pairs with itself
	float2 s = mxfp4_rows2_dot(blocks + row * groups * 16, scales + row * groups, blocks + next * groups * 16,
	                           scales + next * groups, act + (int64_t)slot * cols, groups, lane, lut);
	if (lane == 0) {
		y[(int64_t)slot * rows + o] = s.x + bias[row];
		if (o + 1 < rows) y[(int64_t)slot * rows + o + 1] = s.y + bias[next];
	}
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
	E2M1_SHARED(lut);
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
				wv = lut[(c & 1) ? byte >> 4 : byte & 0xf] * e8m0(scales[row * groups + g]);
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

// Tensor-core grouped product (opt-in with the BF16 tensor-core products,
// Backend.SetTensorCores): the same tiles as moe_grouped, 64 output rows ×
// up to 32 slots per block. MXFP4 weights decode exactly into BF16 (two
// significant bits times a power of two); each activation is split into
// hi = bf16(x) and lo = bf16(x − hi), both multiplied into the float32
// accumulator, as in matmul_bf16_tc. The inner dimension goes in stages
// of 64 (two MXFP4 groups) staged in shared memory, the next stage's
// global loads in flight while the tensor cores work on the current one.
// grid (ceil(rows/64), tiles), block 128 (4 warps, 16 rows each).
#define MG_R 64
#define MG_S 32
#define MG_K 64
#define MG_LD (MG_K + 8)
#define MG_LDC (MG_R + 4)
KERNEL void moe_grouped_tc(float *out, const float *in, const int *slots, const int *tile_expert, const int *tile_first,
                           const int *offsets, const uint8_t *blocks, const uint8_t *scales, const float *bias,
                           int rows, int cols, int in_div) {
	using namespace nvcuda;
	__shared__ __align__(32) __nv_bfloat16 ahi[MG_S][MG_LD];
	__shared__ __align__(32) __nv_bfloat16 alo[MG_S][MG_LD];
	__shared__ __align__(32) uint16_t bs[MG_R][MG_LD];
	__shared__ __align__(32) float cs[MG_S][MG_LDC];
	E2M1_SHARED(lut);
	int e = tile_expert[blockIdx.y], first = tile_first[blockIdx.y];
	int count = min(MG_S, offsets[e + 1] - first);
	int o0 = blockIdx.x * MG_R, groups = cols / 32;
	int t = threadIdx.x, warp = t / WARP;
	// This thread's share of a stage: weight row t/2, group t%2 of the
	// stage (16 bytes, 32 values); slot t/4, values 16·(t%4) … +15.
	int wrow = o0 + t / 2, si = t / 4;
	const uint8_t *wb = blocks + ((int64_t)e * rows + min(wrow, rows - 1)) * groups * 16;
	const uint8_t *ws = scales + ((int64_t)e * rows + min(wrow, rows - 1)) * groups;
	const float *xr = in + (int64_t)(si < count ? slots[first + si] / in_div : 0) * cols;
	uint4 wq = make_uint4(0, 0, 0, 0);
	uint8_t sc = 0;
	float4 xv[4];
	auto load = [&](int k0) {
		int g = k0 / 32 + t % 2;
		bool ok = wrow < rows && g < groups;
		wq = ok ? ((const uint4 *)wb)[g] : make_uint4(0, 0, 0, 0);
		sc = ok ? ws[g] : 0;
		int c = k0 + 16 * (t % 4);
#pragma unroll
		for (int j = 0; j < 4; j++)
			xv[j] = (si < count && c < cols) ? ((const float4 *)(xr + c))[j] : make_float4(0.f, 0.f, 0.f, 0.f);
	};
	wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[2];
	wmma::fill_fragment(acc[0], 0.f);
	wmma::fill_fragment(acc[1], 0.f);
	load(0);
	for (int k0 = 0; k0 < cols; k0 += MG_K) {
		__syncthreads(); // the previous stage is consumed
		{
			float s = e8m0(sc);
			uint32_t words[4] = {wq.x, wq.y, wq.z, wq.w};
			uint16_t *dst = &bs[t / 2][32 * (t % 2)];
#pragma unroll
			for (int j = 0; j < 32; j++) {
				uint32_t nib = (words[j / 8] >> (4 * (j % 8))) & 0xf;
				dst[j] = (uint16_t)(__float_as_uint(lut[nib] * s) >> 16); // exact: two significant bits
			}
			float xs[16] = {xv[0].x, xv[0].y, xv[0].z, xv[0].w, xv[1].x, xv[1].y, xv[1].z, xv[1].w,
			                xv[2].x, xv[2].y, xv[2].z, xv[2].w, xv[3].x, xv[3].y, xv[3].z, xv[3].w};
#pragma unroll
			for (int j = 0; j < 16; j++) {
				__nv_bfloat16 hi = __float2bfloat16_rn(xs[j]);
				ahi[si][16 * (t % 4) + j] = hi;
				alo[si][16 * (t % 4) + j] = __float2bfloat16_rn(xs[j] - __bfloat162float(hi));
			}
		}
		__syncthreads();
		if (k0 + MG_K < cols) load(k0 + MG_K);
#pragma unroll
		for (int ks = 0; ks < MG_K; ks += 16) {
			wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::col_major> fb;
			wmma::load_matrix_sync(fb, (const __nv_bfloat16 *)&bs[16 * warp][ks], MG_LD);
#pragma unroll
			for (int i = 0; i < 2; i++) {
				wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> fhi, flo;
				wmma::load_matrix_sync(fhi, &ahi[16 * i][ks], MG_LD);
				wmma::load_matrix_sync(flo, &alo[16 * i][ks], MG_LD);
				wmma::mma_sync(acc[i], flo, fb, acc[i]);
				wmma::mma_sync(acc[i], fhi, fb, acc[i]);
			}
		}
	}
#pragma unroll
	for (int i = 0; i < 2; i++) wmma::store_matrix_sync(&cs[16 * i][16 * warp], acc[i], MG_LDC, wmma::mem_row_major);
	__syncthreads();
	for (int l = t; l < MG_S * MG_R; l += blockDim.x) {
		int s = l / MG_R, c = l % MG_R, o = o0 + c;
		if (s < count && o < rows) out[(int64_t)slots[first + s] * rows + o] = cs[s][c] + bias[(int64_t)e * rows + o];
	}
}
