// Attention with a learned sink and the sliding window (spec §5 d, e),
// split-K flash-decoding: the keys of each (row, head) are cut into
// `splits` chunks, each block folds its chunk into a running (max, sum,
// weighted values) with the online softmax, and attn_combine merges the
// chunks starting from the sink: max = sink, sum = exp(sink - max) = 1, so
// the sink costs nothing inside the loop. Prefill rows use the same
// kernels (one block per row, head and chunk). Keys before a segment's
// first position come from its cache (a ring on sliding layers); later
// ones from the rows' own k, v, as in the CPU backend.

#include "common.cuh"
#include <math.h>

// Per-row description, packed by the Go side (32 bytes, see rowMeta).
struct RowMeta {
	const float *k_cache, *v_cache; // this layer's cache of the row's sequence
	int pos;                        // the row's position
	int seg_row, seg_pos;           // first row and position of its segment
	int window;                     // ring size on sliding layers, else 0
};

#define ATT_WARPS 4
#define ATT_MAXD 8 // head_dim up to 256 (8 values per lane)

__device__ __forceinline__ int key_lo(const RowMeta &m) { return m.window ? max(0, m.pos - m.window + 1) : 0; }

__device__ __forceinline__ const float *key_at(const RowMeta &m, const float *k, const float *cache, int p, int kv_dim) {
	if (p >= m.seg_pos) return k + (int64_t)(m.seg_row + p - m.seg_pos) * kv_dim;
	int slot = m.window ? p % m.window : p;
	return cache + (int64_t)slot * kv_dim;
}

// grid (rows, heads, splits), block 128. part is [rows][heads][splits][hd+2]:
// max, sum, then the unnormalised weighted values.
KERNEL void attn_split(float *part, const float *q, const float *k, const float *v, const RowMeta *meta,
                       int heads, int kv_heads, int hd, float scale) {
	int r = blockIdx.x, h = blockIdx.y, s = blockIdx.z, splits = gridDim.z;
	int warp = threadIdx.x / WARP, lane = threadIdx.x % WARP;
	RowMeta m = meta[r];
	int kv_dim = kv_heads * hd, kvh = h / (heads / kv_heads);
	int lo = key_lo(m), total = m.pos - lo + 1;
	int per = (total + splits - 1) / splits;
	int begin = lo + s * per, end = min(lo + (s + 1) * per, m.pos + 1);

	float qr[ATT_MAXD], acc[ATT_MAXD];
	const float *qh = q + (int64_t)r * heads * hd + h * hd;
#pragma unroll
	for (int j = 0; j < ATT_MAXD; j++) {
		int d = lane + WARP * j;
		qr[j] = d < hd ? qh[d] : 0.f;
		acc[j] = 0.f;
	}
	float mx = -INFINITY, sum = 0.f;
	for (int p = begin + warp; p < end; p += ATT_WARPS) {
		const float *kp = key_at(m, k, m.k_cache, p, kv_dim) + kvh * hd;
		const float *vp = key_at(m, v, m.v_cache, p, kv_dim) + kvh * hd;
		float dot = 0.f;
#pragma unroll
		for (int j = 0; j < ATT_MAXD; j++) {
			int d = lane + WARP * j;
			if (d < hd) dot += qr[j] * kp[d];
		}
		float sc = warp_sum(dot) * scale;
		float nm = fmaxf(mx, sc);
		float corr = expf(mx - nm), e = expf(sc - nm);
		sum = sum * corr + e;
#pragma unroll
		for (int j = 0; j < ATT_MAXD; j++) {
			int d = lane + WARP * j;
			if (d < hd) acc[j] = acc[j] * corr + e * vp[d];
		}
		mx = nm;
	}
	// Merge the warps' states.
	__shared__ float wm[ATT_WARPS], wl[ATT_WARPS];
	__shared__ float wacc[ATT_WARPS][ATT_MAXD * WARP];
	if (lane == 0) {
		wm[warp] = mx;
		wl[warp] = sum;
	}
#pragma unroll
	for (int j = 0; j < ATT_MAXD; j++) wacc[warp][lane + WARP * j] = acc[j];
	__syncthreads();
	float M = -INFINITY;
	for (int w = 0; w < ATT_WARPS; w++) M = fmaxf(M, wm[w]);
	float *out = part + (((int64_t)r * heads + h) * splits + s) * (hd + 2);
	for (int d = threadIdx.x; d < hd; d += blockDim.x) {
		float a = 0.f;
		for (int w = 0; w < ATT_WARPS; w++)
			if (wm[w] != -INFINITY) a += wacc[w][d] * expf(wm[w] - M);
		out[2 + d] = a;
	}
	if (threadIdx.x == 0) {
		float l = 0.f;
		for (int w = 0; w < ATT_WARPS; w++)
			if (wm[w] != -INFINITY) l += wl[w] * expf(wm[w] - M);
		out[0] = M;
		out[1] = l;
	}
}

// out[r][h] = Σ_s acc_s·exp(m_s - M) / (exp(sink - M) + Σ_s l_s·exp(m_s - M)).
// grid (rows, heads), block 64.
KERNEL void attn_combine(float *o, const float *part, const float *sinks, int heads, int hd, int splits) {
	int r = blockIdx.x, h = blockIdx.y;
	const float *p = part + ((int64_t)r * heads + h) * splits * (hd + 2);
	float M = sinks[h];
	for (int s = 0; s < splits; s++) M = fmaxf(M, p[s * (hd + 2)]);
	float l = expf(sinks[h] - M);
	for (int s = 0; s < splits; s++) {
		float ms = p[s * (hd + 2)];
		if (ms != -INFINITY) l += p[s * (hd + 2) + 1] * expf(ms - M);
	}
	float inv = 1.f / l;
	for (int d = threadIdx.x; d < hd; d += blockDim.x) {
		float a = 0.f;
		for (int s = 0; s < splits; s++) {
			float ms = p[s * (hd + 2)];
			if (ms != -INFINITY) a += p[s * (hd + 2) + 2 + d] * expf(ms - M);
		}
		o[(int64_t)r * heads * hd + h * hd + d] = a * inv;
	}
}

// Store each row's k, v into its sequence's cache, after every row has
// attended (a ring slot may hold a key an earlier row of the chunk needs).
// grid (rows), block 256.
KERNEL void kv_store(const float *k, const float *v, const RowMeta *meta, int kv_dim) {
	RowMeta m = meta[blockIdx.x];
	int slot = m.window ? m.pos % m.window : m.pos;
	float *kc = (float *)m.k_cache + (int64_t)slot * kv_dim;
	float *vc = (float *)m.v_cache + (int64_t)slot * kv_dim;
	for (int c = threadIdx.x; c < kv_dim; c += blockDim.x) {
		kc[c] = k[(int64_t)blockIdx.x * kv_dim + c];
		vc[c] = v[(int64_t)blockIdx.x * kv_dim + c];
	}
}
