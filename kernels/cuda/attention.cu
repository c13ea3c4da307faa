// Attention with a learned sink and the sliding window (spec §5 d, e).
// Decode and short segments: split-K flash-decoding, the keys of each
// (row, head) cut into `splits` chunks, each block folding its chunk into
// a running (max, sum, weighted values) with the online softmax, and
// attn_combine merging the chunks starting from the sink: max = sink,
// sum = exp(sink - max) = 1, so the sink costs nothing inside the loop.
// Long prefill segments: attn_tiled, a tile of query rows against tiles
// of keys staged in shared memory, with the same sink initialisation.
// Keys before a segment's first position come from its cache (a ring on
// sliding layers); later ones from the rows' own k, v, as in the CPU
// backend.

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
// max, sum, then the unnormalised weighted values. rows, when set, lists
// the batch rows this launch covers (the others go to attn_tiled); part is
// indexed by the position in that list.
KERNEL void attn_split(float *part, const float *q, const float *k, const float *v, const RowMeta *meta,
                       const int *rows, int heads, int kv_heads, int hd, float scale) {
	int r = rows ? rows[blockIdx.x] : blockIdx.x, h = blockIdx.y, s = blockIdx.z, splits = gridDim.z;
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
	float *out = part + (((int64_t)blockIdx.x * heads + h) * splits + s) * (hd + 2);
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
// grid (rows, heads), block 64; rows as in attn_split.
KERNEL void attn_combine(float *o, const float *part, const float *sinks, const int *rows, int heads, int hd, int splits) {
	int r = rows ? rows[blockIdx.x] : blockIdx.x, h = blockIdx.y;
	const float *p = part + ((int64_t)blockIdx.x * heads + h) * splits * (hd + 2);
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

// Prefill attention, tiled: a block takes ATT_TQ consecutive rows of one
// segment (tiles never straddle segments) and one query head, and walks
// the keys those rows see in tiles of ATT_TK keys staged in shared memory,
// each K and V value read from global memory once per block instead of
// once per row. Each warp owns ATT_RPW rows; lane j scores key j of the
// tile against each of them (dot over the head dimension from shared
// memory), then the row's running max, sum and weighted values are
// updated with the online softmax, lane d owning values d, d+32, ….
// Causal plus window mask: the row at position t sees key p when p ≤ t
// and, on sliding layers, t − p < window. The running state starts from
// the sink (max = sink, sum = exp(sink − sink) = 1), so the sink needs no
// pass of its own. A sink of −∞ (the no-sinks ablation) starts an empty
// state instead (sum 0), whose rescaling factor is then 0, not
// exp(−∞ − −∞); every row sees at least its own key, so the sum ends > 0.
//
// tiles[2i], tiles[2i+1]: first batch row and row count (≤ ATT_TQ) of tile
// i. Dynamic shared memory: (ATT_TQ·hd + ATT_TK·(hd+1) + ATT_TK·hd) floats;
// K rows are padded to hd+1 so that the 32 lanes (32 keys) of a warp read
// 32 different banks. grid (tiles, heads), block ATT_TW·32.
#define ATT_TQ 32
#define ATT_TK 32
#define ATT_TW 4
#define ATT_RPW (ATT_TQ / ATT_TW)
KERNEL void attn_tiled(float *o, const float *q, const float *k, const float *v, const float *sinks,
                       const RowMeta *meta, const int *tiles, int heads, int kv_heads, int hd, float scale) {
	extern __shared__ float sm[];
	float *qs = sm;                 // [ATT_TQ][hd]
	float *ks = qs + ATT_TQ * hd;   // [ATT_TK][hd+1]
	float *vs = ks + ATT_TK * (hd + 1); // [ATT_TK][hd]
	int r0 = tiles[2 * blockIdx.x], count = tiles[2 * blockIdx.x + 1], h = blockIdx.y;
	int warp = threadIdx.x / WARP, lane = threadIdx.x % WARP;
	int kv_dim = kv_heads * hd, kvh = h / (heads / kv_heads);
	RowMeta m = meta[r0]; // every row of the tile belongs to the same segment
	int first = m.pos, last = m.pos + count - 1;
	int lo = key_lo(m);

	for (int i = threadIdx.x; i < ATT_TQ * hd; i += blockDim.x) {
		int r = i / hd, d = i % hd;
		qs[i] = r < count ? q[(int64_t)(r0 + r) * heads * hd + h * hd + d] : 0.f;
	}
	float sink = sinks[h];
	float mx[ATT_RPW], l[ATT_RPW], acc[ATT_RPW][ATT_MAXD];
#pragma unroll
	for (int rr = 0; rr < ATT_RPW; rr++) {
		mx[rr] = sink;
		l[rr] = sink == -INFINITY ? 0.f : 1.f;
#pragma unroll
		for (int j = 0; j < ATT_MAXD; j++) acc[rr][j] = 0.f;
	}
	for (int kb = lo; kb <= last; kb += ATT_TK) {
		__syncthreads(); // the previous tile is consumed (and qs is written)
		for (int i = threadIdx.x; i < ATT_TK * hd; i += blockDim.x) {
			int j = i / hd, d = i % hd, p = kb + j;
			float kv = 0.f, vv = 0.f;
			if (p <= last) {
				kv = key_at(m, k, m.k_cache, p, kv_dim)[kvh * hd + d];
				vv = key_at(m, v, m.v_cache, p, kv_dim)[kvh * hd + d];
			}
			ks[j * (hd + 1) + d] = kv;
			vs[j * hd + d] = vv;
		}
		__syncthreads();
		int p = kb + lane; // this lane's key
#pragma unroll
		for (int rr = 0; rr < ATT_RPW; rr++) {
			int r = warp * ATT_RPW + rr; // uniform across the warp
			if (r >= count) break;
			int t = first + r;
			bool seen = p <= t && (m.window == 0 || t - p < m.window);
			float sc = -INFINITY;
			if (seen) {
				const float *qr = qs + r * hd, *kr = ks + lane * (hd + 1);
				float dot = 0.f;
				for (int d = 0; d < hd; d++) dot += qr[d] * kr[d];
				sc = dot * scale;
			}
			float nm = fmaxf(mx[rr], warp_max(sc));
			float e = seen ? expf(sc - nm) : 0.f;
			float corr = mx[rr] == -INFINITY ? 0.f : expf(mx[rr] - nm);
			l[rr] = l[rr] * corr + warp_sum(e);
			mx[rr] = nm;
#pragma unroll
			for (int j = 0; j < ATT_MAXD; j++) acc[rr][j] *= corr;
			for (int j = 0; j < ATT_TK; j++) {
				float pj = __shfl_sync(0xffffffffu, e, j);
				const float *vr = vs + j * hd;
#pragma unroll
				for (int jj = 0; jj < ATT_MAXD; jj++) {
					int d = lane + WARP * jj;
					if (d < hd) acc[rr][jj] += pj * vr[d];
				}
			}
		}
	}
#pragma unroll
	for (int rr = 0; rr < ATT_RPW; rr++) {
		int r = warp * ATT_RPW + rr;
		if (r >= count) break;
		float inv = 1.f / l[rr];
		float *out = o + (int64_t)(r0 + r) * heads * hd + h * hd;
#pragma unroll
		for (int jj = 0; jj < ATT_MAXD; jj++) {
			int d = lane + WARP * jj;
			if (d < hd) out[d] = acc[rr][jj] * inv;
		}
	}
}

// Store each row's k, v into its sequence's cache, after every row has
// attended (a ring slot may hold a key an earlier row of the chunk needs).
// On a sliding layer, a segment longer than the window has several rows
// per ring slot; only the last one, the row window rows further on being
// in another segment or past the batch, stores (blocks run in no order,
// so letting all of them write would leave any of them in the slot).
// grid (rows), block 256.
KERNEL void kv_store(const float *k, const float *v, const RowMeta *meta, int kv_dim) {
	RowMeta m = meta[blockIdx.x];
	if (m.window && blockIdx.x + m.window < gridDim.x && meta[blockIdx.x + m.window].seg_row == m.seg_row) return;
	int slot = m.window ? m.pos % m.window : m.pos;
	float *kc = (float *)m.k_cache + (int64_t)slot * kv_dim;
	float *vc = (float *)m.v_cache + (int64_t)slot * kv_dim;
	for (int c = threadIdx.x; c < kv_dim; c += blockDim.x) {
		kc[c] = k[(int64_t)blockIdx.x * kv_dim + c];
		vc[c] = v[(int64_t)blockIdx.x * kv_dim + c];
	}
}
