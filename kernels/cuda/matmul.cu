// BF16 weight products: dst[r][o] = Σ_i x[r][i]·W[o][i] + bias[o], W stored
// [out, in] in BF16, x and dst float32. Accumulation is float32 FMA: the
// golden fixtures bound logits to 2e-4, which BF16 or TF32 tensor-core
// inputs would not meet for the activations.

#include "common.cuh"

// Decode and small batches (n ≤ MV_ROWS): `split` warps per output (1,
// 2, 4 or 8, so that small matrices such as k, v and the router still
// spread over every SM), each lane striding over the input, every weight
// read once for all n rows. With in % 8 == 0 the weights are read 16
// bytes at a time, four loads in flight per lane.
// grid ceil(out·split/8), block 256 (8 warps).
#define MV_ROWS 8
__device__ __forceinline__ void mv_dot8(float *acc, uint4 q, const float *x, int i, int n, int in) {
	float wv[8] = {bf16(q.x & 0xffff), bf16(q.x >> 16), bf16(q.y & 0xffff), bf16(q.y >> 16),
	               bf16(q.z & 0xffff), bf16(q.z >> 16), bf16(q.w & 0xffff), bf16(q.w >> 16)};
#pragma unroll
	for (int r = 0; r < MV_ROWS; r++) {
		if (r < n) {
			const float4 *x4 = (const float4 *)(x + (int64_t)r * in + 8 * i);
			float4 a = x4[0], b = x4[1];
			acc[r] += wv[0] * a.x + wv[1] * a.y + wv[2] * a.z + wv[3] * a.w + wv[4] * b.x + wv[5] * b.y +
			          wv[6] * b.z + wv[7] * b.w;
		}
	}
}

KERNEL void matvec_bf16(float *dst, const float *x, const uint16_t *w, const float *bias, int n, int out, int in,
                        int split) {
	__shared__ float red[8][MV_ROWS];
	int warp = threadIdx.x / WARP, lane = threadIdx.x % WARP;
	int o = blockIdx.x * (8 / split) + warp / split, sub = warp % split;
	float acc[MV_ROWS];
#pragma unroll
	for (int r = 0; r < MV_ROWS; r++) acc[r] = 0;
	if (o < out) {
		const uint16_t *wr = w + (int64_t)o * in;
		int step = WARP * split;
		if (in % 8 == 0) {
			const uint4 *w4 = (const uint4 *)wr;
			int n4 = in / 8, i = sub * WARP + lane;
			for (; i + 3 * step < n4; i += 4 * step) {
				uint4 q0 = w4[i], q1 = w4[i + step], q2 = w4[i + 2 * step], q3 = w4[i + 3 * step];
				mv_dot8(acc, q0, x, i, n, in);
				mv_dot8(acc, q1, x, i + step, n, in);
				mv_dot8(acc, q2, x, i + 2 * step, n, in);
				mv_dot8(acc, q3, x, i + 3 * step, n, in);
			}
			for (; i < n4; i += step) mv_dot8(acc, w4[i], x, i, n, in);
		} else {
			for (int i = sub * WARP + lane; i < in; i += step) {
				float wv = bf16(wr[i]);
#pragma unroll
				for (int r = 0; r < MV_ROWS; r++)
					if (r < n) acc[r] += wv * x[(int64_t)r * in + i];
			}
		}
	}
#pragma unroll
	for (int r = 0; r < MV_ROWS; r++) {
		if (r < n) {
			float s = warp_sum(acc[r]);
			if (lane == 0) red[warp][r] = s;
		}
	}
	__syncthreads();
	if (o < out && sub == 0 && lane < n) {
		float s = 0.f;
		for (int j = 0; j < split; j++) s += red[warp + j][lane];
		dst[(int64_t)lane * out + o] = s + (bias ? bias[o] : 0.f);
	}
}

// Batches: a 64×64 output tile per block (rows of x × outputs), 16-wide
// slices of the inner dimension staged in shared memory, 4×4 outputs per
// thread. grid (ceil(out/64), ceil(n/64)), block 256.
#define MM_T 64
#define MM_K 16
KERNEL void matmul_bf16(float *dst, const float *x, const uint16_t *w, const float *bias, int n, int out, int in) {
	__shared__ float xs[MM_K][MM_T + 1];
	__shared__ float ws[MM_K][MM_T + 1];
	int o0 = blockIdx.x * MM_T, r0 = blockIdx.y * MM_T;
	int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
	float acc[4][4] = {};
	for (int k0 = 0; k0 < in; k0 += MM_K) {
		// 256 threads load 64×16 of x and of W each: 4 values per thread.
		for (int l = threadIdx.x; l < MM_T * MM_K; l += blockDim.x) {
			int t = l / MM_K, k = l % MM_K;
			int r = r0 + t, o = o0 + t, kk = k0 + k;
			xs[k][t] = (r < n && kk < in) ? x[(int64_t)r * in + kk] : 0.f;
			ws[k][t] = (o < out && kk < in) ? bf16(w[(int64_t)o * in + kk]) : 0.f;
		}
		__syncthreads();
#pragma unroll
		for (int k = 0; k < MM_K; k++) {
			float a[4], b[4];
#pragma unroll
			for (int j = 0; j < 4; j++) {
				a[j] = xs[k][ty + 16 * j];
				b[j] = ws[k][tx + 16 * j];
			}
#pragma unroll
			for (int i = 0; i < 4; i++)
#pragma unroll
				for (int j = 0; j < 4; j++) acc[i][j] += a[i] * b[j];
		}
		__syncthreads();
	}
#pragma unroll
	for (int i = 0; i < 4; i++) {
		int r = r0 + ty + 16 * i;
		if (r >= n) continue;
#pragma unroll
		for (int j = 0; j < 4; j++) {
			int o = o0 + tx + 16 * j;
			if (o < out) dst[(int64_t)r * out + o] = acc[i][j] + (bias ? bias[o] : 0.f);
		}
	}
}

// Tensor-core batches (opt-in, Backend.SetTensorCores): WMMA BF16 16×16×16
// products with float32 accumulation, sm_80 and newer. The weights are
// BF16 already, so they enter the tensor cores exactly; each activation is
// split into two BF16 values, hi = bf16(x) and lo = bf16(x − hi), and both
// halves are multiplied into the same accumulator: x is then carried with
// about 16 mantissa bits (|x − hi − lo| ≤ 2⁻¹⁸|x|) instead of 8, close to
// the float32 path's accuracy, for twice the tensor-core work (still far
// below the bandwidth cost of reading W). A block computes a 64×64 output
// tile (rows of x × outputs) with 4 warps of 32×32 (2×2 fragments). The
// inner dimension goes in stages of 64 staged in shared memory, each
// thread loading 32 values of one x row and of one W row (16-byte loads
// when in % 8 == 0), the next stage's loads in flight while the tensor
// cores work on the current one (the first version loaded one value per
// thread per step and spent 89 ms of a 64-row decode step waiting).
// grid (ceil(out/64), ceil(n/64)), block 128.
#include <mma.h>
#include <cuda_bf16.h>
#define TC_T 64
#define TC_K 64
#define TC_LD (TC_K + 8)  // bf16 row stride: a multiple of 8, rows 16-byte aligned
#define TC_LDC (TC_T + 4) // float row stride of the output staging
KERNEL void matmul_bf16_tc(float *dst, const float *x, const uint16_t *w, const float *bias, int n, int out, int in) {
	using namespace nvcuda;
	__shared__ __align__(32) __nv_bfloat16 ahi[TC_T][TC_LD];
	__shared__ __align__(32) __nv_bfloat16 alo[TC_T][TC_LD];
	__shared__ __align__(32) uint16_t bs[TC_T][TC_LD];
	__shared__ __align__(32) float cs[TC_T][TC_LDC];
	int o0 = blockIdx.x * TC_T, r0 = blockIdx.y * TC_T;
	int t = threadIdx.x, warp = t / WARP, wr = (warp / 2) * 32, wc = (warp % 2) * 32;
	int lr = t / 2, lk = 32 * (t % 2); // this thread's row (of x and of W) and first k in a stage
	int r = r0 + lr, o = o0 + lr;
	const float *xr = x + (int64_t)min(r, n - 1) * in;
	const uint16_t *wrow = w + (int64_t)min(o, out - 1) * in;
	bool vec = in % 8 == 0;
	float xv[32];
	uint32_t wv[16]; // pairs of BF16
	auto load = [&](int k0) {
		int k = k0 + lk;
		if (vec && k + 32 <= in) {
			const float4 *x4 = (const float4 *)(xr + k);
#pragma unroll
			for (int j = 0; j < 8; j++) {
				float4 v = r < n ? x4[j] : make_float4(0.f, 0.f, 0.f, 0.f);
				xv[4 * j] = v.x, xv[4 * j + 1] = v.y, xv[4 * j + 2] = v.z, xv[4 * j + 3] = v.w;
			}
			const uint4 *w4 = (const uint4 *)(wrow + k);
#pragma unroll
			for (int j = 0; j < 4; j++) {
				uint4 q = o < out ? w4[j] : make_uint4(0, 0, 0, 0);
				wv[4 * j] = q.x, wv[4 * j + 1] = q.y, wv[4 * j + 2] = q.z, wv[4 * j + 3] = q.w;
			}
		} else {
#pragma unroll
			for (int j = 0; j < 32; j++) xv[j] = (r < n && k + j < in) ? xr[k + j] : 0.f;
#pragma unroll
			for (int j = 0; j < 16; j++) {
				uint32_t lo = (o < out && k + 2 * j < in) ? wrow[k + 2 * j] : 0u;
				uint32_t hi = (o < out && k + 2 * j + 1 < in) ? wrow[k + 2 * j + 1] : 0u;
				wv[j] = lo | hi << 16;
			}
		}
	};
	wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[2][2];
#pragma unroll
	for (int i = 0; i < 2; i++)
#pragma unroll
		for (int j = 0; j < 2; j++) wmma::fill_fragment(acc[i][j], 0.f);
	load(0);
	for (int k0 = 0; k0 < in; k0 += TC_K) {
		__syncthreads(); // the previous stage is consumed
#pragma unroll
		for (int j = 0; j < 32; j++) {
			__nv_bfloat16 hi = __float2bfloat16_rn(xv[j]);
			ahi[lr][lk + j] = hi;
			alo[lr][lk + j] = __float2bfloat16_rn(xv[j] - __bfloat162float(hi));
		}
		uint32_t *bd = (uint32_t *)&bs[lr][lk];
#pragma unroll
		for (int j = 0; j < 16; j++) bd[j] = wv[j];
		__syncthreads();
		if (k0 + TC_K < in) load(k0 + TC_K);
#pragma unroll
		for (int ks = 0; ks < TC_K; ks += 16) {
			wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> fhi[2], flo[2];
			wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::col_major> fb[2];
#pragma unroll
			for (int i = 0; i < 2; i++) {
				wmma::load_matrix_sync(fhi[i], &ahi[wr + 16 * i][ks], TC_LD);
				wmma::load_matrix_sync(flo[i], &alo[wr + 16 * i][ks], TC_LD);
			}
			// W is [out][in]: as the k×out matrix B it is column-major
			// with the row stride as leading dimension.
#pragma unroll
			for (int j = 0; j < 2; j++)
				wmma::load_matrix_sync(fb[j], (const __nv_bfloat16 *)&bs[wc + 16 * j][ks], TC_LD);
#pragma unroll
			for (int i = 0; i < 2; i++)
#pragma unroll
				for (int j = 0; j < 2; j++) {
					wmma::mma_sync(acc[i][j], flo[i], fb[j], acc[i][j]);
					wmma::mma_sync(acc[i][j], fhi[i], fb[j], acc[i][j]);
				}
		}
	}
#pragma unroll
	for (int i = 0; i < 2; i++)
#pragma unroll
		for (int j = 0; j < 2; j++)
			wmma::store_matrix_sync(&cs[wr + 16 * i][wc + 16 * j], acc[i][j], TC_LDC, wmma::mem_row_major);
	__syncthreads();
	for (int l = threadIdx.x; l < TC_T * TC_T; l += blockDim.x) {
		int tr = l / TC_T, c = l % TC_T, rr = r0 + tr, oo = o0 + c;
		if (rr < n && oo < out) dst[(int64_t)rr * out + oo] = cs[tr][c] + (bias ? bias[oo] : 0.f);
	}
}
