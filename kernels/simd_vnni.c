//go:build cgo && amd64

// The int8-activation MXFP4 matrix-vector product (q8.go) with AVX-512
// VNNI. A file of its own so that the other AVX-512 kernels are not
// compiled for VNNI; only called when the CPU reports it.
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,bmi2")
#include <immintrin.h>
#include "simd.h"

#define AI static inline __attribute__((always_inline))
#define RN (_MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)

#ifndef Q8_PF_ROWS
#define Q8_PF_ROWS 8
#endif

// q8_wscale spreads the scale bytes of a chunk's nb blocks over their
// lanes (4 each) as float32 2^(e-128) = E8M0 / 2 (the codes are doubled);
// missing blocks get 0.5, e = 0 gives 2^-128 (subnormal, exact).
AI __m512 q8_wscale(const uint8_t *s, int nb) {
	uint32_t v = 0x7F7F7F7Fu;
	__builtin_memcpy(&v, s, nb == 4 ? 4 : nb);
	const __m512i ctl = _mm512_set_epi32(
	    0x80808003, 0x80808003, 0x80808003, 0x80808003, 0x80808002, 0x80808002, 0x80808002, 0x80808002,
	    0x80808001, 0x80808001, 0x80808001, 0x80808001, 0x80808000, 0x80808000, 0x80808000, 0x80808000);
	__m512i e = _mm512_shuffle_epi8(_mm512_set1_epi32((int)v), ctl);
	__m512 f = _mm512_castsi512_ps(_mm512_slli_epi32(e, 23));
	f = _mm512_mask_mov_ps(f, _mm512_testn_epi32_mask(e, e), _mm512_castsi512_ps(_mm512_set1_epi32(1 << 22)));
	return _mm512_mul_round_ps(f, _mm512_set1_ps(0.5f), RN);
}

// q8_chunk adds one chunk (nb blocks from block g) of R rows to acc. Lane
// i of a row's int32 sum holds 4 even and 4 odd columns of block i/4: the
// codes' magnitudes (vpshufb of the nibbles) as u8 times x as s8, x negated
// where the code's sign bit is set.
AI void q8_chunk(int R, __m512 acc[8], const uint8_t *xq, long cols, const uint8_t *blocks,
                 const uint8_t *scales, long o, long g, int nb) {
	long groups = cols / 32;
	__mmask64 bm = nb == 4 ? ~0ull : (1ull << (16 * nb)) - 1;
	const __m512i tab = _mm512_broadcast_i32x4(_mm_setr_epi8(0, 1, 2, 3, 4, 6, 8, 12, 0, 1, 2, 3, 4, 6, 8, 12));
	const __m512i m4 = _mm512_set1_epi8(0x0F), m8 = _mm512_set1_epi8(8), zero = _mm512_setzero_si512();
	const uint8_t *xp = xq + g * 32;
	__m512i xe = nb == 4 ? _mm512_loadu_si512(xp) : _mm512_maskz_loadu_epi8(bm, xp);
	__m512i xo = nb == 4 ? _mm512_loadu_si512(xp + 64) : _mm512_maskz_loadu_epi8(bm, xp + 16 * nb);
	__m128 xs4 = _mm_maskz_loadu_ps((__mmask8)((1u << nb) - 1), (const float *)(xq + cols) + g);
	__m512 xs = _mm512_permutexvar_ps(_mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0),
	                                  _mm512_castps128_ps512(xs4));
#pragma GCC unroll 8
	for (int r = 0; r < R; r++) {
		const uint8_t *b = blocks + ((o + r) * groups + g) * 16;
		__m512i v = nb == 4 ? _mm512_loadu_si512(b) : _mm512_maskz_loadu_epi8(bm, b);
#if Q8_PF_ROWS > 0
		if (R == 8) _mm_prefetch((const char *)(b + Q8_PF_ROWS * groups * 16), _MM_HINT_T0);
#endif
		__m512i lo = _mm512_and_si512(v, m4), hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
		__m512i xl = _mm512_mask_sub_epi8(xe, _mm512_test_epi8_mask(lo, m8), zero, xe);
		__m512i xh = _mm512_mask_sub_epi8(xo, _mm512_test_epi8_mask(hi, m8), zero, xo);
		__m512i s = _mm512_dpbusd_epi32(zero, _mm512_shuffle_epi8(tab, lo), xl);
		s = _mm512_dpbusd_epi32(s, _mm512_shuffle_epi8(tab, hi), xh);
		__m512 sc = _mm512_mul_round_ps(xs, q8_wscale(scales + (o + r) * groups + g, nb), RN);
		acc[r] = _mm512_add_round_ps(acc[r], _mm512_mul_round_ps(_mm512_cvtepi32_ps(s), sc, RN), RN);
	}
}

// q8_rows computes R rows from o; the lanes are reduced in a fixed order
// (halves, then quarters, …) that the Go twin repeats.
AI void q8_rows(int R, float *dst, const uint8_t *xq, long cols, const uint8_t *blocks, const uint8_t *scales,
                const float *bias, long o) {
	long groups = cols / 32, g = 0;
	__m512 acc[8];
	for (int r = 0; r < R; r++) acc[r] = _mm512_setzero_ps();
	for (; g + 4 <= groups; g += 4) q8_chunk(R, acc, xq, cols, blocks, scales, o, g, 4);
	switch (groups - g) {
	case 3: q8_chunk(R, acc, xq, cols, blocks, scales, o, g, 3); break;
	case 2: q8_chunk(R, acc, xq, cols, blocks, scales, o, g, 2); break;
	case 1: q8_chunk(R, acc, xq, cols, blocks, scales, o, g, 1); break;
	}
	for (int r = 0; r < R; r++) {
		__m256 a8 = _mm256_add_ps(_mm512_castps512_ps256(acc[r]), _mm512_extractf32x8_ps(acc[r], 1));
		__m128 a4 = _mm_add_ps(_mm256_castps256_ps128(a8), _mm256_extractf128_ps(a8, 1));
		__m128 a2 = _mm_add_ps(a4, _mm_movehl_ps(a4, a4));
		float s = _mm_cvtss_f32(a2) + _mm_cvtss_f32(_mm_shuffle_ps(a2, a2, 1));
		dst[o + r] = bias ? s + bias[o + r] : s;
	}
}

static __attribute__((noinline)) void q8_rows_8(float *dst, const uint8_t *xq, long cols, const uint8_t *blocks,
                                                const uint8_t *scales, const float *bias, long o) {
	q8_rows(8, dst, xq, cols, blocks, scales, bias, o);
}

static __attribute__((noinline)) void q8_rows_1(float *dst, const uint8_t *xq, long cols, const uint8_t *blocks,
                                                const uint8_t *scales, const float *bias, long o) {
	q8_rows(1, dst, xq, cols, blocks, scales, bias, o);
}

void gptoss_matvec_mxfp4_q8_vnni(float *dst, const uint8_t *xq, const uint8_t *blocks, const uint8_t *scales,
                                 long rows, long cols, const float *bias, long lo, long hi) {
	(void)rows;
	long o = lo;
	for (; o + 8 <= hi; o += 8) q8_rows_8(dst, xq, cols, blocks, scales, bias, o);
	for (; o < hi; o++) q8_rows_1(dst, xq, cols, blocks, scales, bias, o);
}
