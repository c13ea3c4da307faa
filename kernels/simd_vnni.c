//go:build cgo && amd64

// The int8-activation MXFP4 product (q8.go) with AVX-512 VNNI and VBMI. A
// file of its own so that the other AVX-512 kernels are not compiled for
// them; only called when the CPU reports both.
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx512vbmi,avx2,fma,bmi2")
#include <immintrin.h>
#include "simd.h"

#define AI static inline __attribute__((always_inline))
#define RN (_MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)

// The int8 layout is described in q8.go: one block per 32-bit lane, 16
// blocks (512 columns) per group, the codes taken as u = 2·E2M1 + 12.

// Tiles of up to Q8_TB tokens × Q8_RB rows, the rows' weights decoded once
// per block of Q8_GB groups into an L1 panel.
#ifndef Q8_TB
#define Q8_TB 32
#endif
#define Q8_RB 4
#ifndef Q8_GB
#define Q8_GB 4
#endif
#ifndef Q8_PF_ROWS
#define Q8_PF_ROWS 8
#endif

typedef struct {
	__m512i u[8]; // vector v of the row's group: lane j = 4 unsigned codes of block j
	__m512 s;     // lane j: block j's scale / 2
} q8_panel;

// Q8_GATHER[k] = 16·((k/4) mod 8) + k mod 4: with 4q added, byte k of a
// gather is byte 4q + k mod 4 of block (k/4) mod 8 of a 128-byte pair.
static const uint8_t Q8_GATHER[64] __attribute__((aligned(64))) = {
	0, 1, 2, 3, 16, 17, 18, 19, 32, 33, 34, 35, 48, 49, 50, 51,
	64, 65, 66, 67, 80, 81, 82, 83, 96, 97, 98, 99, 112, 113, 114, 115,
	0, 1, 2, 3, 16, 17, 18, 19, 32, 33, 34, 35, 48, 49, 50, 51,
	64, 65, 66, 67, 80, 81, 82, 83, 96, 97, 98, 99, 112, 113, 114, 115,
};

// q8_scales returns the nb (≤ 16) block scales at s as lanes of
// float32 2^(e-127)/2 (missing lanes: 2^-128).
AI __m512 q8_scales(const uint8_t *s, long nb) {
	__m512i e = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8((__mmask16)((1u << nb) - 1), s));
	__m512 f = _mm512_castsi512_ps(_mm512_slli_epi32(e, 23));
	f = _mm512_mask_mov_ps(f, _mm512_testn_epi32_mask(e, e), _mm512_castsi512_ps(_mm512_set1_epi32(1 << 22)));
	return _mm512_mul_round_ps(f, _mm512_set1_ps(0.5f), RN);
}

// q8_pack decodes group g (nb blocks) of row r into p.
AI void q8_pack(q8_panel *p, const uint8_t *blocks, const uint8_t *scales, long nblocks, long r, long g, long nb) {
	const uint8_t *b = blocks + (r * nblocks + 16 * g) * 16;
	__m512i z[4];
	for (int i = 0; i < 4; i++) {
		long have = 16 * nb - 64 * i; // code bytes left for this vector
		__mmask64 m = have >= 64 ? ~0ull : have <= 0 ? 0 : (1ull << have) - 1;
		z[i] = _mm512_maskz_loadu_epi8(m, b + 64 * i);
#if Q8_PF_ROWS > 0
		// The same group Q8_PF_ROWS rows on: decode reads each weight
		// once, and without it the core keeps too few misses in flight.
		_mm_prefetch((const char *)(b + Q8_PF_ROWS * nblocks * 16 + 64 * i), _MM_HINT_T0);
#endif
	}
#if Q8_PF_ROWS > 0
	_mm_prefetch((const char *)(scales + (r + Q8_PF_ROWS) * nblocks + 16 * g), _MM_HINT_T0);
#endif
	const __m512i tab = _mm512_broadcast_i32x4(_mm_setr_epi8(12, 13, 14, 15, 16, 18, 20, 24, 12, 11, 10, 9, 8, 6, 4, 0));
	const __m512i m4 = _mm512_set1_epi8(0x0F);
	const __m512i base = _mm512_load_si512(Q8_GATHER);
	for (int q = 0; q < 4; q++) {
		// Lanes 0-7 gather from (z0, z1), lanes 8-15 from (z2, z3).
		__m512i idx = _mm512_add_epi8(base, _mm512_set1_epi8((char)(4 * q)));
		__m512i a = _mm512_permutex2var_epi8(z[0], idx, z[1]);
		__m512i c = _mm512_permutex2var_epi8(z[2], idx, z[3]);
		__m512i gth = _mm512_mask_blend_epi8(0xFFFFFFFF00000000ull, a, c);
		__m512i lo = _mm512_and_si512(gth, m4), hi = _mm512_and_si512(_mm512_srli_epi16(gth, 4), m4);
		p->u[2 * q] = _mm512_shuffle_epi8(tab, lo);
		p->u[2 * q + 1] = _mm512_shuffle_epi8(tab, hi);
	}
	p->s = q8_scales(scales + r * nblocks + 16 * g, nb);
}

// q8_tile adds groups [g0, g1) of an R×T tile (panel rows at p[r·Q8_GB],
// tokens t…) to acc (row r, token c at acc[r·Q8_TB + c]). The epilogue's
// float operations are rounded one by one (the _round forms are never
// contracted into FMAs), as the Go twin does.
AI void q8_tile(int R, int T, __m512 *acc, const q8_panel *p, const uint8_t *xq, long qb, long t, long g0, long g1) {
	for (long g = g0; g < g1; g++) {
		const q8_panel *pg = p + (g - g0);
		__m512i is[4][4];
#pragma GCC unroll 4
		for (int r = 0; r < R; r++)
#pragma GCC unroll 4
			for (int c = 0; c < T; c++) is[r][c] = _mm512_setzero_si512();
#pragma GCC unroll 8
		for (int v = 0; v < 8; v++) {
			__m512i w[4];
#pragma GCC unroll 4
			for (int r = 0; r < R; r++) w[r] = pg[r * Q8_GB].u[v];
#pragma GCC unroll 4
			for (int c = 0; c < T; c++) {
				__m512i x = _mm512_loadu_si512(xq + (t + c) * qb + g * GPTOSS_Q8_GROUP_BYTES + v * 64);
#pragma GCC unroll 4
				for (int r = 0; r < R; r++) is[r][c] = _mm512_dpbusd_epi32(is[r][c], w[r], x);
			}
		}
#pragma GCC unroll 4
		for (int c = 0; c < T; c++) {
			const uint8_t *tail = xq + (t + c) * qb + g * GPTOSS_Q8_GROUP_BYTES + 512;
			__m512 d = _mm512_loadu_ps((const float *)tail);
			__m512i corr = _mm512_loadu_si512(tail + 64);
#pragma GCC unroll 4
			for (int r = 0; r < R; r++) {
				__m512 f = _mm512_cvtepi32_ps(_mm512_sub_epi32(is[r][c], corr));
				__m512 sc = _mm512_mul_round_ps(d, pg[r * Q8_GB].s, RN);
				__m512 *a = &acc[r * Q8_TB + c];
				*a = _mm512_add_round_ps(*a, _mm512_mul_round_ps(f, sc, RN), RN);
			}
		}
	}
}

#define Q8_TILE_FN(R, T)                                                                                 \
	static __attribute__((noinline)) void q8_tile_##R##_##T(__m512 *acc, const q8_panel *p, const uint8_t *xq, \
	                                                        long qb, long t, long g0, long g1) {           \
		q8_tile(R, T, acc, p, xq, qb, t, g0, g1);                                                     \
	}
Q8_TILE_FN(4, 4)
Q8_TILE_FN(4, 3)
Q8_TILE_FN(4, 2)
Q8_TILE_FN(4, 1)
Q8_TILE_FN(1, 4)
Q8_TILE_FN(1, 3)
Q8_TILE_FN(1, 2)
Q8_TILE_FN(1, 1)

typedef void (*q8_tile_fn)(__m512 *, const q8_panel *, const uint8_t *, long, long, long, long);

// q8_reduce sums the 16 lanes in the order the Go twin does: halves, then
// quarters, then pairs.
AI float q8_reduce(__m512 a) {
	__m256 a8 = _mm256_add_ps(_mm512_castps512_ps256(a), _mm512_extractf32x8_ps(a, 1));
	__m128 a4 = _mm_add_ps(_mm256_castps256_ps128(a8), _mm256_extractf128_ps(a8, 1));
	__m128 a2 = _mm_add_ps(a4, _mm_movehl_ps(a4, a4));
	return _mm_cvtss_f32(a2) + _mm_cvtss_f32(_mm_shuffle_ps(a2, a2, 1));
}

static __attribute__((noinline)) void q8_pack_block(q8_panel *panel, const uint8_t *blocks, const uint8_t *scales,
                                                    long nblocks, long r0, long r1, long g0, long g1) {
	for (long r = r0; r < r1; r++)
		for (long g = g0; g < g1; g++) {
			long nb = nblocks - 16 * g < 16 ? nblocks - 16 * g : 16;
			q8_pack(&panel[(r - r0) * Q8_GB + (g - g0)], blocks, scales, nblocks, r, g, nb);
		}
}

// Decode (n = 1) reads each weight once, so it decodes in registers and
// keeps the weights in their stored order: a 64-byte load is 4 whole
// blocks, and nibble codes become u8 by one vpermb each (the table
// repeats every 16 entries, so the bits above the nibble need no mask).
// Lane i of such a vector holds code bytes 4i…4i+3, all of block i/4, so
// two dpbusd against x in the same order (q8_natural) give four partial
// sums per block; a 4-to-1 reduction (q8_blocksums) then yields the same
// exact block sums, one block per lane, as the batch panels, and the
// epilogue is q8_tile's: a row's bits do not depend on n. Against
// gathering each group into the panel layout first (vpermt2b), 27-30 →
// 38-40 GB/s per thread in L1/L2 (throwaway benchmark).
#define Q8_NATURAL_GROUPS 32 // x copied on the stack: 16 KiB, up to 16384 columns
typedef struct {
	__m512i lo, hi; // x of a 4-block chunk in load order: the low and the high nibbles' columns
} q8_chunk;

// q8_natural copies xq's groups (q8.go layout) into chunk order: lane
// 4b + q of chunk c holds dword q of vector 2q (lo) or 2q+1 (hi), lane
// 4c + b, of the group.
static void q8_natural(q8_chunk *nx, const uint8_t *xq, long groups) {
	for (long g = 0; g < groups; g++) {
		const uint8_t *grp = xq + g * GPTOSS_Q8_GROUP_BYTES;
		for (int c = 0; c < 4; c++) {
			uint32_t lo[16], hi[16];
			for (int b = 0; b < 4; b++)
				for (int q = 0; q < 4; q++) {
					__builtin_memcpy(&lo[4 * b + q], grp + 2 * q * 64 + 4 * (4 * c + b), 4);
					__builtin_memcpy(&hi[4 * b + q], grp + (2 * q + 1) * 64 + 4 * (4 * c + b), 4);
				}
			nx[4 * g + c].lo = _mm512_loadu_si512(lo);
			nx[4 * g + c].hi = _mm512_loadu_si512(hi);
		}
	}
}

// q8_blocksums adds each 4 neighbouring lanes of s0…s3 (16 blocks, 4 lanes
// each, in order) into one lane per block. A lane is a sum of 8 products
// u·q, at most 8·24·127 = 24384 in magnitude, so it fits int16: the first
// level packs two vectors to
// words (vpackssdw, exact) and adds word pairs (vpmaddwd by 1), which
// leaves in 128-bit lane k of a: blocks k, k, 4+k, 4+k (of b: 8+k, 8+k,
// 12+k, 12+k); the second level adds those pairs into block order. Two
// fewer shuffles than three levels of permutes: 39-41 -> 44-45 GB/s in
// L2 (throwaway benchmark, 256 x 2880).
AI __m512i q8_blocksums(__m512i s0, __m512i s1, __m512i s2, __m512i s3) {
	const __m512i one = _mm512_set1_epi16(1);
	__m512i a = _mm512_madd_epi16(_mm512_packs_epi32(s0, s1), one);
	__m512i b = _mm512_madd_epi16(_mm512_packs_epi32(s2, s3), one);
	const __m512i ev = _mm512_setr_epi32(0, 4, 8, 12, 2, 6, 10, 14, 16, 20, 24, 28, 18, 22, 26, 30);
	const __m512i od = _mm512_setr_epi32(1, 5, 9, 13, 3, 7, 11, 15, 17, 21, 25, 29, 19, 23, 27, 31);
	return _mm512_add_epi32(_mm512_permutex2var_epi32(a, ev, b), _mm512_permutex2var_epi32(a, od, b));
}

// q8_rows1 computes outputs o…o+R-1 of a matrix-vector product.
AI void q8_rows1(int R, float *dst, const q8_chunk *nx, const uint8_t *xq, const uint8_t *blocks, const uint8_t *scales,
                 long nblocks, const float *bias, long o) {
	long groups = (nblocks + 15) / 16;
	const __m512i tab = _mm512_broadcast_i32x4(_mm_setr_epi8(12, 13, 14, 15, 16, 18, 20, 24, 12, 11, 10, 9, 8, 6, 4, 0));
	__m512 acc[4];
	for (int r = 0; r < R; r++) acc[r] = _mm512_setzero_ps();
	for (long g = 0; g < groups; g++) {
		long nb = nblocks - 16 * g < 16 ? nblocks - 16 * g : 16;
		__m512i s[4][4];
#pragma GCC unroll 4
		for (int c = 0; c < 4; c++) {
			long have = 16 * (nb - 4 * c); // code bytes of this chunk
			__mmask64 m = have >= 64 ? ~0ull : have <= 0 ? 0 : (1ull << have) - 1;
			__m512i xl = nx[4 * g + c].lo, xh = nx[4 * g + c].hi;
#pragma GCC unroll 4
			for (int r = 0; r < R; r++) {
				const uint8_t *b = blocks + ((o + r) * nblocks + 16 * g + 4 * c) * 16;
				__m512i w = nb == 16 ? _mm512_loadu_si512(b) : _mm512_maskz_loadu_epi8(m, b);
#if Q8_PF_ROWS > 0
				// The same chunk Q8_PF_ROWS rows on: without it the core
				// keeps too few misses in flight.
				_mm_prefetch((const char *)(b + Q8_PF_ROWS * nblocks * 16), _MM_HINT_T0);
#endif
				__m512i lo = _mm512_permutexvar_epi8(w, tab), hi = _mm512_permutexvar_epi8(_mm512_srli_epi16(w, 4), tab);
				s[r][c] = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), lo, xl), hi, xh);
			}
		}
		const uint8_t *xg = xq + g * GPTOSS_Q8_GROUP_BYTES;
		__m512 d = _mm512_loadu_ps((const float *)(xg + 512));
		__m512i corr = _mm512_loadu_si512(xg + 576);
#pragma GCC unroll 4
		for (int r = 0; r < R; r++) {
			__m512i is = q8_blocksums(s[r][0], s[r][1], s[r][2], s[r][3]);
			__m512 f = _mm512_cvtepi32_ps(_mm512_sub_epi32(is, corr));
			__m512 sc = _mm512_mul_round_ps(d, q8_scales(scales + (o + r) * nblocks + 16 * g, nb), RN);
			acc[r] = _mm512_add_round_ps(acc[r], _mm512_mul_round_ps(f, sc, RN), RN);
		}
	}
	for (int r = 0; r < R; r++) {
		float v = q8_reduce(acc[r]);
		dst[o + r] = bias ? v + bias[o + r] : v;
	}
}

static __attribute__((noinline)) void q8_rows1_4(float *dst, const q8_chunk *nx, const uint8_t *xq,
                                                 const uint8_t *blocks, const uint8_t *scales, long nblocks,
                                                 const float *bias, long o) {
	q8_rows1(4, dst, nx, xq, blocks, scales, nblocks, bias, o);
}

static __attribute__((noinline)) void q8_rows1_1(float *dst, const q8_chunk *nx, const uint8_t *xq,
                                                 const uint8_t *blocks, const uint8_t *scales, long nblocks,
                                                 const float *bias, long o) {
	q8_rows1(1, dst, nx, xq, blocks, scales, nblocks, bias, o);
}

// Batches: the tiles differ only in how many rows and tokens share a
// panel; decode (n = 1) decodes in registers. Neither changes a lane's
// operations, so a row's bits do not depend on n.
void gptoss_matmul_mxfp4_q8_vnni(float *dst, const uint8_t *xq, long n, const uint8_t *blocks, const uint8_t *scales,
                                 long rows, long cols, const float *bias, long lo, long hi) {
	static const q8_tile_fn tiles[2][4] = {
	    {q8_tile_1_1, q8_tile_1_2, q8_tile_1_3, q8_tile_1_4},
	    {q8_tile_4_1, q8_tile_4_2, q8_tile_4_3, q8_tile_4_4},
	};
	long nblocks = cols / 32, groups = (nblocks + 15) / 16, qb = groups * GPTOSS_Q8_GROUP_BYTES;
	if (n == 1 && groups <= Q8_NATURAL_GROUPS) { // wider rows take the batch path
		q8_chunk nx[4 * Q8_NATURAL_GROUPS];
		q8_natural(nx, xq, groups);
		long o = lo;
		for (; o + 4 <= hi; o += 4) q8_rows1_4(dst, nx, xq, blocks, scales, nblocks, bias, o);
		for (; o < hi; o++) q8_rows1_1(dst, nx, xq, blocks, scales, nblocks, bias, o);
		return;
	}
	__m512 acc[Q8_RB * Q8_TB];
	q8_panel panel[Q8_RB * Q8_GB];
	for (long t0 = 0; t0 < n; t0 += Q8_TB) {
		long t1 = t0 + Q8_TB < n ? t0 + Q8_TB : n;
		for (long r0 = lo; r0 < hi; r0 += Q8_RB) {
			long r1 = r0 + Q8_RB < hi ? r0 + Q8_RB : hi;
			for (long o = 0; o < r1 - r0; o++)
				for (long t = 0; t < t1 - t0; t++) acc[o * Q8_TB + t] = _mm512_setzero_ps();
			for (long g0 = 0; g0 < groups; g0 += Q8_GB) {
				long g1 = g0 + Q8_GB < groups ? g0 + Q8_GB : groups;
				q8_pack_block(panel, blocks, scales, nblocks, r0, r1, g0, g1);
				for (long t = t0; t < t1; t += 4) {
					int T = t1 - t < 4 ? (int)(t1 - t) : 4;
					for (long o = r0; o < r1;) {
						int R = r1 - o < 4 ? 1 : 4;
						tiles[R == 4][T - 1](acc + (o - r0) * Q8_TB + (t - t0), panel + (o - r0) * Q8_GB, xq, qb, t,
						                     g0, g1);
						o += R;
					}
				}
			}
			for (long o = r0; o < r1; o++) {
				for (long t = t0; t < t1; t++) {
					float r = q8_reduce(acc[(o - r0) * Q8_TB + (t - t0)]);
					dst[t * rows + o] = bias ? r + bias[o] : r;
				}
			}
		}
	}
}

// Q8_COLUMNS[k]: the column whose int8 value is byte k of a block's eight
// dwords (dword v = vector v's four columns, q8Column in q8.go).
static const uint8_t Q8_COLUMNS[32] __attribute__((aligned(32))) = {
	0, 2, 4, 6, 1, 3, 5, 7, 8, 10, 12, 14, 9, 11, 13, 15,
	16, 18, 20, 22, 17, 19, 21, 23, 24, 26, 28, 30, 25, 27, 29, 31,
};

// gptoss_quantize_q8_avx512 is QuantizeQ8 (q8.go), the same bytes: the
// rounding half away from zero is trunc(v) + sign(v)·(|v - trunc(v)| ≥ ½),
// which is exactly what the Go code's float64 v ± 0.5 truncation gives.
void gptoss_quantize_q8_avx512(uint8_t *dst, const float *x, long cols) {
	long nblocks = cols / 32, groups = (nblocks + 15) / 16;
	__builtin_memset(dst, 0, groups * GPTOSS_Q8_GROUP_BYTES);
	const __m256i perm = _mm256_load_si256((const __m256i *)Q8_COLUMNS);
	const __m512i absmask = _mm512_set1_epi32(0x7FFFFFFF);
	for (long b = 0; b < nblocks; b++) {
		__m512 x0 = _mm512_loadu_ps(x + 32 * b), x1 = _mm512_loadu_ps(x + 32 * b + 16);
		__m512i m = _mm512_max_epu32(_mm512_and_si512(_mm512_castps_si512(x0), absmask),
		                             _mm512_and_si512(_mm512_castps_si512(x1), absmask));
		uint32_t mb = (uint32_t)_mm512_reduce_max_epu32(m);
		float mf;
		__builtin_memcpy(&mf, &mb, 4);
		float d = mf / 127.0f, id = d != 0 ? 1.0f / d : 0.0f;
		__m512i q[2];
		__m512 xs[2] = {x0, x1};
		for (int h = 0; h < 2; h++) {
			__m512 v = _mm512_mul_round_ps(xs[h], _mm512_set1_ps(id), RN);
			__m512 t = _mm512_roundscale_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
			__m512 fr = _mm512_sub_round_ps(v, t, RN);
			__mmask16 up = _mm512_cmp_ps_mask(fr, _mm512_set1_ps(0.5f), _CMP_GE_OQ);
			__mmask16 dn = _mm512_cmp_ps_mask(fr, _mm512_set1_ps(-0.5f), _CMP_LE_OQ);
			__m512i qi = _mm512_cvttps_epi32(t);
			qi = _mm512_mask_add_epi32(qi, up, qi, _mm512_set1_epi32(1));
			qi = _mm512_mask_sub_epi32(qi, dn, qi, _mm512_set1_epi32(1));
			q[h] = _mm512_max_epi32(_mm512_min_epi32(qi, _mm512_set1_epi32(127)), _mm512_set1_epi32(-127));
		}
		int32_t sum = _mm512_reduce_add_epi32(_mm512_add_epi32(q[0], q[1]));
		__m256i bytes = _mm256_set_m128i(_mm512_cvtepi32_epi8(q[1]), _mm512_cvtepi32_epi8(q[0]));
		bytes = _mm256_permutexvar_epi8(perm, bytes);
		uint32_t dw[8];
		_mm256_storeu_si256((__m256i *)dw, bytes);
		gptoss_q8_store_block(dst, b, dw, d, sum);
	}
}
