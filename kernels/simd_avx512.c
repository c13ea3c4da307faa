//go:build cgo && amd64

// AVX-512 kernels (F, BW, VL): 16 float32 lanes. Compiled for that target
// whatever the build flags; only called when the CPU reports AVX-512.
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c,bmi2")
#include <immintrin.h>
#include "simd.h"

#define SUFFIX avx512
#include "simd_portable.h"

// Software prefetch distance, in weight rows, of the decode (n = 1) tiles:
// the next tile's rows, one prefetch per cache line. With the two threads
// streaming 1 MiB chunks this took BF16 from 30-33 to 45-47 GB/s and MXFP4
// from 17 to 21-22 GB/s (BenchmarkPoolMatVec, checkpoint data); farther
// distances measured no better.
#ifndef BF_PF_ROWS
#define BF_PF_ROWS 4
#endif
#ifndef PF_ROWS
#define PF_ROWS 8
#endif

#define AI static inline __attribute__((always_inline))

// bf16_load widens 16 BF16 values (or the first `left` of them) to float32.
AI __m512 bf16_load(const uint16_t *p, __mmask16 m) {
	// A masked load costs more than a plain one even with every lane set
	// (the batch tile ran 25 % slower with masks on every step).
	__m256i h = m == 0xFFFF ? _mm256_loadu_si256((const __m256i *)p) : _mm256_maskz_loadu_epi16(m, p);
	return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

// bf16_rows1 computes outputs o…o+R-1 of a matrix-vector product. R is
// a constant at every call site, so the accumulators stay in registers.
AI void bf16_rows1(int R, float *dst, const float *x, long in, const uint16_t *w, const float *bias, long o) {
	__m512 acc[4];
	for (int r = 0; r < R; r++) acc[r] = _mm512_setzero_ps();
	long k = 0;
	for (; k + 16 <= in; k += 16) {
#if BF_PF_ROWS > 0
		// One line of the next tile's rows per 64 bytes of each row, spread
		// over the two 16-column steps of a line (rows 0-1, then 2-3): the
		// same four prefetches issued back to back streamed ~15 % slower.
		if (R == 4) {
			const uint16_t *p = w + (o + BF_PF_ROWS + ((k >> 3) & 2)) * in + (k & ~31L);
			_mm_prefetch((const char *)p, _MM_HINT_T0);
			_mm_prefetch((const char *)(p + in), _MM_HINT_T0);
		}
#endif
		__m512 wv[4];
		for (int r = 0; r < R; r++) wv[r] = bf16_load(w + (o + r) * in + k, 0xFFFF);
		__m512 xv = _mm512_loadu_ps(x + k);
		for (int r = 0; r < R; r++) acc[r] = _mm512_fmadd_ps(wv[r], xv, acc[r]);
	}
	if (k < in) {
		__mmask16 m = (__mmask16)((1u << (in - k)) - 1);
		__m512 xv = _mm512_maskz_loadu_ps(m, x + k);
		for (int r = 0; r < R; r++) acc[r] = _mm512_fmadd_ps(bf16_load(w + (o + r) * in + k, m), xv, acc[r]);
	}
	for (int r = 0; r < R; r++) dst[o + r] = _mm512_reduce_add_ps(acc[r]) + (bias ? bias[o + r] : 0.0f);
}

// Batches (n > 1) are cut in blocks of BF_TB tokens × BF_RB rows × BF_KB
// columns, so that a tile's x (4 tokens × BF_KB floats) and the block's
// weight rows stay in L1 while its tiles pass over them; a tile's
// accumulators are carried between column blocks in acc, so every lane
// does the same operations in the same order as in the matrix-vector
// path (a row's bits do not depend on the batch).
#ifndef BF_TB
#define BF_TB 32
#endif
#ifndef BF_RB
#define BF_RB 16
#endif
#ifndef BF_KB
#define BF_KB 512
#endif

// bf16_step adds the 16 columns from k (lanes m) of an R×T tile to a.
AI void bf16_step(int R, int T, __m512 a[4][4], const float *x, long in, const uint16_t *w, long o, long t, long k,
                  __mmask16 m) {
	__m512 wv[4];
#pragma GCC unroll 4
	for (int r = 0; r < R; r++) wv[r] = bf16_load(w + (o + r) * in + k, m);
#pragma GCC unroll 4
	for (int c = 0; c < T; c++) {
		const float *xp = x + (t + c) * in + k;
		__m512 xv = m == 0xFFFF ? _mm512_loadu_ps(xp) : _mm512_maskz_loadu_ps(m, xp);
#pragma GCC unroll 4
		for (int r = 0; r < R; r++) a[r][c] = _mm512_fmadd_ps(wv[r], xv, a[r][c]);
	}
}

// bf16_part adds columns [k0, k1) of an R×T tile to the accumulators at
// acc (row r, token c at acc[r·BF_TB + c]); k1 - k0 is a multiple of 16
// except at the end of the row.
AI void bf16_part(int R, int T, __m512 *acc, const float *x, long in, const uint16_t *w, long o, long t, long k0,
                  long k1) {
	__m512 a[4][4];
#pragma GCC unroll 4
	for (int r = 0; r < R; r++)
#pragma GCC unroll 4
		for (int c = 0; c < T; c++) a[r][c] = acc[r * BF_TB + c];
	// The unroll pragmas matter: without them GCC keeps a[][] in memory
	// and stores every accumulator on every step (half the speed).
	long k = k0;
	for (; k + 16 <= k1; k += 16) bf16_step(R, T, a, x, in, w, o, t, k, 0xFFFF);
	if (k < k1) bf16_step(R, T, a, x, in, w, o, t, k, (__mmask16)((1u << (k1 - k)) - 1));
#pragma GCC unroll 4
	for (int r = 0; r < R; r++)
#pragma GCC unroll 4
		for (int c = 0; c < T; c++) acc[r * BF_TB + c] = a[r][c];
}

#define BF_PART_FN(R, T)                                                                              \
	static __attribute__((noinline)) void bf16_part_##R##_##T(__m512 *acc, const float *x, long in,   \
	                                                          const uint16_t *w, long o, long t, long k0, \
	                                                          long k1) {                              \
		bf16_part(R, T, acc, x, in, w, o, t, k0, k1);                                            \
	}
BF_PART_FN(4, 4)
BF_PART_FN(4, 3)
BF_PART_FN(4, 2)
BF_PART_FN(4, 1)
BF_PART_FN(1, 4)
BF_PART_FN(1, 3)
BF_PART_FN(1, 2)
BF_PART_FN(1, 1)

typedef void (*bf16_part_fn)(__m512 *, const float *, long, const uint16_t *, long, long, long, long);

static void bf16_batch(float *dst, const float *x, long n, const uint16_t *w, long out, long in, const float *bias,
                       long lo, long hi) {
	static const bf16_part_fn parts[2][4] = {
	    {bf16_part_1_1, bf16_part_1_2, bf16_part_1_3, bf16_part_1_4},
	    {bf16_part_4_1, bf16_part_4_2, bf16_part_4_3, bf16_part_4_4},
	};
	__m512 acc[BF_RB * BF_TB];
	for (long t0 = 0; t0 < n; t0 += BF_TB) {
		long t1 = t0 + BF_TB < n ? t0 + BF_TB : n;
		for (long r0 = lo; r0 < hi; r0 += BF_RB) {
			long r1 = r0 + BF_RB < hi ? r0 + BF_RB : hi;
			for (long o = 0; o < r1 - r0; o++)
				for (long t = 0; t < t1 - t0; t++) acc[o * BF_TB + t] = _mm512_setzero_ps();
			for (long k0 = 0; k0 < in; k0 += BF_KB) {
				long k1 = k0 + BF_KB < in ? k0 + BF_KB : in;
				for (long t = t0; t < t1; t += 4) {
					int T = t1 - t < 4 ? (int)(t1 - t) : 4;
					for (long o = r0; o < r1;) {
						int R = r1 - o < 4 ? 1 : 4;
						parts[R == 4][T - 1](acc + (o - r0) * BF_TB + (t - t0), x, in, w, o, t, k0, k1);
						o += R;
					}
				}
			}
			for (long o = r0; o < r1; o++) {
				float b = bias ? bias[o] : 0.0f;
				for (long t = t0; t < t1; t++)
					dst[t * out + o] = _mm512_reduce_add_ps(acc[(o - r0) * BF_TB + (t - t0)]) + b;
			}
		}
	}
}

void gptoss_matmul_bf16_avx512(float *dst, const float *x, long n, const uint16_t *w, long out, long in,
                               const float *bias, long lo, long hi) {
	if (n == 1) {
		// Decode: bandwidth-bound; four rows at a time share the x loads.
		long o = lo;
		for (; o + 4 <= hi; o += 4) bf16_rows1(4, dst, x, in, w, bias, o);
		for (; o < hi; o++) bf16_rows1(1, dst, x, in, w, bias, o);
		return;
	}
	bf16_batch(dst, x, n, w, out, in, bias, lo, hi);
}

// The MXFP4 kernels read x in chunk order (see SplitBlocks): a chunk is 4
// blocks (128 columns, 64 code bytes) of a row, and the 64 bytes loaded as
// one vector hold in 32-bit lane i the 8 codes whose x values SplitBlocks
// put at k·16 + i of the chunk, k = the nibble's position in the lane. So
// nibble k of every lane is a shift by 4k, and vpermps (which reads only
// the low 4 bits of an index) maps it to its E2M1 value: no widening, no
// masking. Each chunk is summed unscaled per lane over its 8 nibbles, then
// multiplied by the per-lane block scale into the row's accumulator; every
// tile shape does exactly this per (row, token), so a row's bits do not
// depend on the batch. A tail of nb < 4 blocks uses lanes [0, 4·nb) with
// x at k·4nb + i.

// mx_scale16 spreads the 4 scale bytes of a chunk (1.0 for missing blocks)
// over the lanes of their blocks as float32 2^(e-127), which is e<<23
// except for e = 0 (2^-127, a subnormal): with fix, those lanes are fixed
// up (tiles whose scales have no zero byte skip that).
AI __m512 mx_scale16(const uint8_t *s, int nb, int fix) {
	uint32_t v = 0x7F7F7F7Fu;
	__builtin_memcpy(&v, s, nb == 4 ? 4 : nb);
	const __m512i ctl = _mm512_set_epi32(
	    0x80808003, 0x80808003, 0x80808003, 0x80808003, 0x80808002, 0x80808002, 0x80808002, 0x80808002,
	    0x80808001, 0x80808001, 0x80808001, 0x80808001, 0x80808000, 0x80808000, 0x80808000, 0x80808000);
	__m512i e = _mm512_shuffle_epi8(_mm512_set1_epi32((int)v), ctl);
	__m512 f = _mm512_castsi512_ps(_mm512_slli_epi32(e, 23));
	if (fix)
		f = _mm512_mask_mov_ps(f, _mm512_testn_epi32_mask(e, e), _mm512_castsi512_ps(_mm512_set1_epi32(1 << 22)));
	return f;
}

// has_zero reports whether any of the n bytes at p is 0.
AI int has_zero(const uint8_t *p, long n) {
	long i = 0;
	for (; i + 64 <= n; i += 64)
		if (_mm512_testn_epi8_mask(_mm512_loadu_si512(p + i), _mm512_set1_epi8(-1))) return 1;
	if (i < n) {
		__mmask64 m = (1ull << (n - i)) - 1;
		if (_mm512_mask_testn_epi8_mask(m, _mm512_maskz_loadu_epi8(m, p + i), _mm512_set1_epi8(-1))) return 1;
	}
	return 0;
}

// mx_chunk adds one chunk (nb blocks from block g) of rows o…o+R-1 of a
// matrix-vector product to acc.
AI void mx_chunk(int R, __m512 acc[8], const float *xs, long cols, const uint8_t *blocks, const uint8_t *scales,
                 long o, long g, int nb, int fix, __m512 lut) {
	long groups = cols / 32, L = 4 * nb;
	__mmask64 bm = nb == 4 ? ~0ull : (1ull << (16 * nb)) - 1;
	__mmask16 xm = nb == 4 ? 0xFFFF : (__mmask16)((1u << L) - 1);
	__m512i v[8];
	__m512 bs[8];
#pragma GCC unroll 8
	for (int r = 0; r < R; r++) {
		const uint8_t *b = blocks + ((o + r) * groups + g) * 16;
		v[r] = nb == 4 ? _mm512_loadu_si512(b) : _mm512_maskz_loadu_epi8(bm, b);
	}
#if PF_ROWS > 0
	if (R == 8)
#pragma GCC unroll 8
		for (int r = 0; r < R; r++) _mm_prefetch((const char *)(blocks + ((o + PF_ROWS + r) * groups + g) * 16), _MM_HINT_T0);
#endif
#pragma GCC unroll 8
	for (int k = 0; k < 8; k++) {
		const float *xp = xs + g * 32 + k * L;
		__m512 xk = nb == 4 ? _mm512_loadu_ps(xp) : _mm512_maskz_loadu_ps(xm, xp);
#pragma GCC unroll 8
		for (int r = 0; r < R; r++) {
			__m512 w = _mm512_permutexvar_ps(k ? _mm512_srli_epi32(v[r], 4 * k) : v[r], lut);
			bs[r] = k ? _mm512_fmadd_ps(w, xk, bs[r]) : _mm512_mul_ps(w, xk);
		}
	}
#pragma GCC unroll 8
	for (int r = 0; r < R; r++) acc[r] = _mm512_fmadd_ps(bs[r], mx_scale16(scales + (o + r) * groups + g, nb, fix), acc[r]);
}

AI void mx_chunks(int R, __m512 acc[8], const float *xs, long cols, const uint8_t *blocks, const uint8_t *scales,
                  long o, int fix, __m512 lut) {
	long groups = cols / 32, g = 0;
	// Tiles of 8 rows prefetch the next tile's rows (mx_chunk): the
	// kernel has enough arithmetic per byte that, without it, the core
	// does not keep enough misses in flight.
	for (; g + 4 <= groups; g += 4) mx_chunk(R, acc, xs, cols, blocks, scales, o, g, 4, fix, lut);
	switch (groups - g) {
	case 3: mx_chunk(R, acc, xs, cols, blocks, scales, o, g, 3, fix, lut); break;
	case 2: mx_chunk(R, acc, xs, cols, blocks, scales, o, g, 2, fix, lut); break;
	case 1: mx_chunk(R, acc, xs, cols, blocks, scales, o, g, 1, fix, lut); break;
	}
}

// mx_rows1 computes outputs o…o+R-1 (R ≤ 8) of an MXFP4 matrix-vector
// product.
AI void mx_rows1(int R, float *dst, const float *xs, long cols, const uint8_t *blocks, const uint8_t *scales,
                 const float *bias, long o, __m512 lut) {
	long groups = cols / 32;
	__m512 acc[8];
	for (int r = 0; r < R; r++) acc[r] = _mm512_setzero_ps();
	if (has_zero(scales + o * groups, R * groups))
		mx_chunks(R, acc, xs, cols, blocks, scales, o, 1, lut);
	else
		mx_chunks(R, acc, xs, cols, blocks, scales, o, 0, lut);
	for (int r = 0; r < R; r++) dst[o + r] = _mm512_reduce_add_ps(acc[r]) + (bias ? bias[o + r] : 0.0f);
}

// One out-of-line function per row count, so that each gets its own
// register allocation (inlined into one function, they spill).
static __attribute__((noinline)) void mx_rows1_8(float *dst, const float *xs, long cols, const uint8_t *blocks,
                                                 const uint8_t *scales, const float *bias, long o, __m512 lut) {
	mx_rows1(8, dst, xs, cols, blocks, scales, bias, o, lut);
}

static __attribute__((noinline)) void mx_rows1_1(float *dst, const float *xs, long cols, const uint8_t *blocks,
                                                 const uint8_t *scales, const float *bias, long o, __m512 lut) {
	mx_rows1(1, dst, xs, cols, blocks, scales, bias, o, lut);
}

// Batches (n > 1): a block of MP_RB rows × MP_CB chunks is decoded once
// into an L1 panel (per row and chunk, the 8 nibble vectors as unscaled
// E2M1 values and the lanes' scales), and the 4×4 tiles of up to MP_TB
// tokens then read their weights from it, so the FMA pipes do little but
// the products (the matrix-vector tile decodes in registers, which only
// pays when the weights are used once). A tile's accumulators live in acc
// between chunks. The operations per lane are those of mx_chunk, chunk by
// chunk: a row's bits do not depend on the batch. Single thread, against
// the tiles that decoded in registers: 5760×2880 at n = 64 from 61-74 to
// 95-118 GFLOP/s, at n = 8 from 51-60 to 67-81.
#ifndef MP_RB
#define MP_RB 4
#endif
#ifndef MP_CB
#define MP_CB 8
#endif
#ifndef MP_TB
#define MP_TB 32
#endif

typedef struct {
	__m512 w[8]; // nibble k's E2M1 values of the chunk, by lane
	__m512 s;    // the lanes' block scales
} mx_panel_chunk;

// mp_pack_chunk decodes one chunk (nb blocks from block g) of row r.
AI void mp_pack_chunk(mx_panel_chunk *p, const uint8_t *blocks, const uint8_t *scales, long groups, long r, long g,
                      int nb, __m512 lut) {
	__mmask64 bm = nb == 4 ? ~0ull : (1ull << (16 * nb)) - 1;
	const uint8_t *b = blocks + (r * groups + g) * 16;
	__m512i v = nb == 4 ? _mm512_loadu_si512(b) : _mm512_maskz_loadu_epi8(bm, b);
#pragma GCC unroll 8
	for (int k = 0; k < 8; k++) p->w[k] = _mm512_permutexvar_ps(k ? _mm512_srli_epi32(v, 4 * k) : v, lut);
	p->s = mx_scale16(scales + r * groups + g, nb, 1);
}

// mp_pack decodes chunks [c0, c1) of rows [r0, r1) into panel
// (row r, chunk c at panel[(r - r0)·MP_CB + c - c0]).
static void mp_pack(mx_panel_chunk *panel, const uint8_t *blocks, const uint8_t *scales, long cols, long r0, long r1,
                    long c0, long c1, __m512 lut) {
	long groups = cols / 32;
	for (long r = r0; r < r1; r++)
		for (long c = c0; c < c1; c++) {
			mx_panel_chunk *p = &panel[(r - r0) * MP_CB + (c - c0)];
			switch (groups - 4 * c) {
			case 1: mp_pack_chunk(p, blocks, scales, groups, r, 4 * c, 1, lut); break;
			case 2: mp_pack_chunk(p, blocks, scales, groups, r, 4 * c, 2, lut); break;
			case 3: mp_pack_chunk(p, blocks, scales, groups, r, 4 * c, 3, lut); break;
			default: mp_pack_chunk(p, blocks, scales, groups, r, 4 * c, 4, lut);
			}
		}
}

// mp_chunk adds one chunk (nb blocks from block g) of an R×T tile whose
// panel chunks are at p (row r at p[r·MP_CB]) to acc.
AI void mp_chunk(int R, int T, __m512 *acc, const mx_panel_chunk *p, const float *xs, long cols, long t, long g,
                 int nb) {
	long L = 4 * nb;
	__mmask16 xm = nb == 4 ? 0xFFFF : (__mmask16)((1u << L) - 1);
	__m512 bs[4][4];
#pragma GCC unroll 8
	for (int k = 0; k < 8; k++) {
		__m512 w[4];
#pragma GCC unroll 4
		for (int r = 0; r < R; r++) w[r] = p[r * MP_CB].w[k];
#pragma GCC unroll 4
		for (int j = 0; j < T; j++) {
			const float *xp = xs + (t + j) * cols + g * 32 + k * L;
			__m512 xk = nb == 4 ? _mm512_loadu_ps(xp) : _mm512_maskz_loadu_ps(xm, xp);
#pragma GCC unroll 4
			for (int r = 0; r < R; r++) bs[r][j] = k ? _mm512_fmadd_ps(w[r], xk, bs[r][j]) : _mm512_mul_ps(w[r], xk);
		}
	}
#pragma GCC unroll 4
	for (int r = 0; r < R; r++) {
		__m512 sv = p[r * MP_CB].s;
#pragma GCC unroll 4
		for (int j = 0; j < T; j++) acc[r * MP_TB + j] = _mm512_fmadd_ps(bs[r][j], sv, acc[r * MP_TB + j]);
	}
}

// mp_tile adds chunks [c0, c1) of an R×T tile (tokens t…) to acc (row r,
// token c at acc[r·MP_TB + c]).
AI void mp_tile(int R, int T, __m512 *acc, const mx_panel_chunk *panel, const float *xs, long cols, long t, long c0,
                long c1) {
	long groups = cols / 32;
	for (long c = c0; c < c1; c++) {
		const mx_panel_chunk *p = panel + (c - c0);
		switch (groups - 4 * c) {
		case 1: mp_chunk(R, T, acc, p, xs, cols, t, 4 * c, 1); break;
		case 2: mp_chunk(R, T, acc, p, xs, cols, t, 4 * c, 2); break;
		case 3: mp_chunk(R, T, acc, p, xs, cols, t, 4 * c, 3); break;
		default: mp_chunk(R, T, acc, p, xs, cols, t, 4 * c, 4);
		}
	}
}

#define MP_TILE_FN(R, T)                                                                                \
	static __attribute__((noinline)) void mp_tile_##R##_##T(__m512 *acc, const mx_panel_chunk *panel,  \
	                                                        const float *xs, long cols, long t, long c0, \
	                                                        long c1) {                                 \
		mp_tile(R, T, acc, panel, xs, cols, t, c0, c1);                                             \
	}
MP_TILE_FN(4, 4)
MP_TILE_FN(4, 3)
MP_TILE_FN(4, 2)
MP_TILE_FN(4, 1)
MP_TILE_FN(1, 4)
MP_TILE_FN(1, 3)
MP_TILE_FN(1, 2)
MP_TILE_FN(1, 1)

typedef void (*mp_tile_fn)(__m512 *, const mx_panel_chunk *, const float *, long, long, long, long);

static void mp_batch(float *dst, const float *xs, long n, const uint8_t *blocks, const uint8_t *scales, long rows,
                     long cols, const float *bias, long lo, long hi, __m512 lut) {
	static const mp_tile_fn tiles[2][4] = {
	    {mp_tile_1_1, mp_tile_1_2, mp_tile_1_3, mp_tile_1_4},
	    {mp_tile_4_1, mp_tile_4_2, mp_tile_4_3, mp_tile_4_4},
	};
	long chunks = (cols / 32 + 3) / 4;
	__m512 acc[MP_RB * MP_TB];
	mx_panel_chunk panel[MP_RB * MP_CB];
	for (long t0 = 0; t0 < n; t0 += MP_TB) {
		long t1 = t0 + MP_TB < n ? t0 + MP_TB : n;
		for (long r0 = lo; r0 < hi; r0 += MP_RB) {
			long r1 = r0 + MP_RB < hi ? r0 + MP_RB : hi;
			for (long o = 0; o < r1 - r0; o++)
				for (long t = 0; t < t1 - t0; t++) acc[o * MP_TB + t] = _mm512_setzero_ps();
			for (long c0 = 0; c0 < chunks; c0 += MP_CB) {
				long c1 = c0 + MP_CB < chunks ? c0 + MP_CB : chunks;
				mp_pack(panel, blocks, scales, cols, r0, r1, c0, c1, lut);
				for (long t = t0; t < t1; t += 4) {
					int T = t1 - t < 4 ? (int)(t1 - t) : 4;
					for (long o = r0; o < r1;) {
						int R = r1 - o < 4 ? 1 : 4;
						tiles[R == 4][T - 1](acc + (o - r0) * MP_TB + (t - t0), panel + (o - r0) * MP_CB, xs, cols,
						                     t, c0, c1);
						o += R;
					}
				}
			}
			for (long o = r0; o < r1; o++) {
				float b = bias ? bias[o] : 0.0f;
				for (long t = t0; t < t1; t++)
					dst[t * rows + o] = _mm512_reduce_add_ps(acc[(o - r0) * MP_TB + (t - t0)]) + b;
			}
		}
	}
}

void gptoss_matmul_mxfp4_avx512(float *dst, const float *xs, long n, const uint8_t *blocks,
                                const uint8_t *scales, long rows, long cols, const float *bias, long lo,
                                long hi, const float *lutp, const float *scaletab) {
	(void)scaletab;
	__m512 lut = _mm512_loadu_ps(lutp);
	if (n == 1) {
		long o = lo;
		// Eight rows: eight independent chains, and the 8 x vectors of a
		// chunk are loaded once for all of them.
		for (; o + 8 <= hi; o += 8) mx_rows1_8(dst, xs, cols, blocks, scales, bias, o, lut);
		for (; o < hi; o++) mx_rows1_1(dst, xs, cols, blocks, scales, bias, o, lut);
		return;
	}
	mp_batch(dst, xs, n, blocks, scales, rows, cols, bias, lo, hi, lut);
}

// exp512 is exp_poly (simd_portable.h) on 16 lanes, the same operations.
AI __m512 exp512(__m512 x) {
	x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.0f)), _mm512_set1_ps(88.0f));
	__m512 n = _mm512_sub_ps(_mm512_fmadd_ps(x, _mm512_set1_ps(1.44269504088896341f), _mm512_set1_ps(12582912.0f)),
	                         _mm512_set1_ps(12582912.0f));
	__m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
	r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
	__m512 p = _mm512_set1_ps(1.9875691500e-4f);
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
	p = _mm512_add_ps(_mm512_fmadd_ps(_mm512_mul_ps(p, r), r, r), _mm512_set1_ps(1.0f));
	__m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvttps_epi32(n), _mm512_set1_epi32(127)), 23);
	return _mm512_mul_ps(p, _mm512_castsi512_ps(e));
}

// hsum16 returns the lane sums of a[0…15] as one vector (lane i: a[i]),
// the same tree of additions for every lane, so a key's score does not
// depend on its place in the block.
AI __m512 hsum16(__m512 a[16]) {
	__m512 b[8], c[4], d[2];
	for (int i = 0; i < 8; i++)
		b[i] = _mm512_add_ps(_mm512_unpacklo_ps(a[2 * i], a[2 * i + 1]), _mm512_unpackhi_ps(a[2 * i], a[2 * i + 1]));
	// b[i] lanes (per 128-bit quarter): a2i, a2i+1, a2i, a2i+1 partial sums.
	for (int i = 0; i < 4; i++) {
		__m512d x = _mm512_castps_pd(b[2 * i]), y = _mm512_castps_pd(b[2 * i + 1]);
		c[i] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(x, y)), _mm512_castpd_ps(_mm512_unpackhi_pd(x, y)));
	}
	// c[i] quarter q holds keys 4i…4i+3 (sums over lanes q·4…q·4+3).
	for (int i = 0; i < 2; i++)
		d[i] = _mm512_add_ps(_mm512_shuffle_f32x4(c[2 * i], c[2 * i + 1], 0x88),
		                     _mm512_shuffle_f32x4(c[2 * i], c[2 * i + 1], 0xDD));
	// d[i] quarters: keys 8i…8i+3 (quarters 0+1 of c[2i]), 8i+4…8i+7
	// (c[2i+1]), 8i…8i+3 (quarters 2+3), 8i+4…8i+7.
	__m512 e = _mm512_add_ps(_mm512_shuffle_f32x4(d[0], d[1], 0x88), _mm512_shuffle_f32x4(d[0], d[1], 0xDD));
	return e;
}

// attention64 is attention_portable for 64-wide heads: the scores of 16
// keys at a time (four FMAs per key, then one reduction tree for all
// sixteen), the softmax over the row's contiguous scores in vectors, and
// the weighted sum of values in registers.
static void attention64(float *out, const float *q, long h0, long h1, long group, const float *const ks[3],
                        const float *const vs[3], const long ns[3], long kvstride, const float *sinks, float scale,
                        float *scores) {
	for (long h = h0; h < h1; h++) {
		const float *qh = q + h * 64;
		long off = (h / group) * 64;
		__m512 q0 = _mm512_loadu_ps(qh), q1 = _mm512_loadu_ps(qh + 16), q2 = _mm512_loadu_ps(qh + 32),
		       q3 = _mm512_loadu_ps(qh + 48);
		__m512 mv = _mm512_set1_ps(sinks[h]);
		long u = 0;
		for (int s = 0; s < 3; s++) {
			for (long i0 = 0; i0 < ns[s]; i0 += 16) {
				long cnt = ns[s] - i0 < 16 ? ns[s] - i0 : 16;
				__m512 a[16];
				for (int i = 0; i < 16; i++) {
					if (i < cnt) {
						const float *k = ks[s] + (i0 + i) * kvstride + off;
						__m512 t = _mm512_mul_ps(q0, _mm512_loadu_ps(k));
						t = _mm512_fmadd_ps(q1, _mm512_loadu_ps(k + 16), t);
						t = _mm512_fmadd_ps(q2, _mm512_loadu_ps(k + 32), t);
						a[i] = _mm512_fmadd_ps(q3, _mm512_loadu_ps(k + 48), t);
					} else {
						a[i] = _mm512_setzero_ps();
					}
				}
				__mmask16 m = cnt == 16 ? 0xFFFF : (__mmask16)((1u << cnt) - 1);
				__m512 d = _mm512_mul_ps(hsum16(a), _mm512_set1_ps(scale));
				_mm512_mask_storeu_ps(scores + u, m, d);
				mv = _mm512_mask_max_ps(mv, m, mv, d);
				u += cnt;
			}
		}
		float mx = _mm512_reduce_max_ps(mv);
		__m512 mb = _mm512_set1_ps(mx), sum = _mm512_setzero_ps();
		for (long i = 0; i < u; i += 16) {
			__mmask16 m = u - i >= 16 ? 0xFFFF : (__mmask16)((1u << (u - i)) - 1);
			__m512 e = exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, scores + i), mb));
			e = _mm512_maskz_mov_ps(m, e);
			_mm512_mask_storeu_ps(scores + i, m, e);
			sum = _mm512_add_ps(sum, e);
		}
		__m512 sink = exp512(_mm512_set1_ps(sinks[h] - mx));
		float inv = 1.0f / (_mm512_reduce_add_ps(sum) + _mm512_cvtss_f32(sink));
		__m512 o0 = _mm512_setzero_ps(), o1 = o0, o2 = o0, o3 = o0;
		u = 0;
		for (int s = 0; s < 3; s++) {
			for (long i = 0; i < ns[s]; i++) {
				const float *v = vs[s] + i * kvstride + off;
				__m512 w = _mm512_set1_ps(scores[u++] * inv);
				o0 = _mm512_fmadd_ps(w, _mm512_loadu_ps(v), o0);
				o1 = _mm512_fmadd_ps(w, _mm512_loadu_ps(v + 16), o1);
				o2 = _mm512_fmadd_ps(w, _mm512_loadu_ps(v + 32), o2);
				o3 = _mm512_fmadd_ps(w, _mm512_loadu_ps(v + 48), o3);
			}
		}
		float *oh = out + h * 64;
		_mm512_storeu_ps(oh, o0);
		_mm512_storeu_ps(oh + 16, o1);
		_mm512_storeu_ps(oh + 32, o2);
		_mm512_storeu_ps(oh + 48, o3);
	}
}

void gptoss_attention_avx512(float *out, const float *q, long h0, long h1, long group, long hd, const float *k0,
                             const float *v0, long n0, const float *k1, const float *v1, long n1, const float *k2,
                             const float *v2, long n2, long kvstride, const float *sinks, float scale,
                             float *scores) {
	if (hd == 64) {
		const float *ks[3] = {k0, k1, k2}, *vs[3] = {v0, v1, v2};
		const long ns[3] = {n0, n1, n2};
		attention64(out, q, h0, h1, group, ks, vs, ns, kvstride, sinks, scale, scores);
		return;
	}
	attention_portable_avx512(out, q, h0, h1, group, hd, k0, v0, n0, k1, v1, n1, k2, v2, n2, kvstride, sinks, scale,
	                          scores);
}

uint64_t gptoss_read_stream_avx512(const uint8_t *p, long bytes) {
	__m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
	long i = 0;
	for (; i + 256 <= bytes; i += 256) {
		a0 = _mm512_xor_si512(a0, _mm512_loadu_si512(p + i));
		a1 = _mm512_xor_si512(a1, _mm512_loadu_si512(p + i + 64));
		a2 = _mm512_xor_si512(a2, _mm512_loadu_si512(p + i + 128));
		a3 = _mm512_xor_si512(a3, _mm512_loadu_si512(p + i + 192));
	}
	a0 = _mm512_xor_si512(_mm512_xor_si512(a0, a1), _mm512_xor_si512(a2, a3));
	uint64_t s = (uint64_t)_mm512_reduce_or_epi64(a0);
	for (; i < bytes; i++) s ^= p[i];
	return s;
}
