//go:build cgo && amd64

// AVX2 + FMA kernels: 8 float32 lanes, for x86-64 CPUs without AVX-512.
#pragma GCC target("avx2,fma,f16c,bmi2")
#include <immintrin.h>
#include "simd.h"

#define SUFFIX avx2
#include "simd_portable.h"

#define AI static inline __attribute__((always_inline))

AI float hsum8(__m256 v) {
	__m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
	s = _mm_add_ps(s, _mm_movehl_ps(s, s));
	s = _mm_add_ss(s, _mm_movehdup_ps(s));
	return _mm_cvtss_f32(s);
}

AI __m256 bf16_load8(const uint16_t *p) {
	__m128i h = _mm_loadu_si128((const __m128i *)p);
	return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

// bf16_tile: an R×T tile of W rows o… against x rows t…; the tail of a
// row (in % 8) is done in scalar code.
AI void bf16_tile(int R, int T, float *dst, long ldd, const float *x, long in, const uint16_t *w,
                  const float *bias, long o, long t) {
	__m256 acc[4][4];
	for (int r = 0; r < R; r++)
		for (int c = 0; c < T; c++) acc[r][c] = _mm256_setzero_ps();
	long k = 0;
	for (; k + 8 <= in; k += 8) {
		__m256 wv[4];
		for (int r = 0; r < R; r++) wv[r] = bf16_load8(w + (o + r) * in + k);
		for (int c = 0; c < T; c++) {
			__m256 xv = _mm256_loadu_ps(x + (t + c) * in + k);
			for (int r = 0; r < R; r++) acc[r][c] = _mm256_fmadd_ps(wv[r], xv, acc[r][c]);
		}
	}
	for (int r = 0; r < R; r++) {
		float b = bias ? bias[o + r] : 0.0f;
		for (int c = 0; c < T; c++) {
			float s = hsum8(acc[r][c]);
			for (long j = k; j < in; j++) {
				uint32_t bits = (uint32_t)w[(o + r) * in + j] << 16;
				float wf;
				memcpy(&wf, &bits, 4);
				s += wf * x[(t + c) * in + j];
			}
			dst[(t + c) * ldd + o + r] = s + b;
		}
	}
}

AI void bf16_rows(int R, float *dst, long ldd, const float *x, long in, const uint16_t *w,
                  const float *bias, long o, long t0, long t1) {
	long t = t0;
	for (; t + 4 <= t1; t += 4) bf16_tile(R, 4, dst, ldd, x, in, w, bias, o, t);
	switch (t1 - t) {
	case 3: bf16_tile(R, 3, dst, ldd, x, in, w, bias, o, t); break;
	case 2: bf16_tile(R, 2, dst, ldd, x, in, w, bias, o, t); break;
	case 1: bf16_tile(R, 1, dst, ldd, x, in, w, bias, o, t); break;
	}
}

void gptoss_matmul_bf16_avx2(float *dst, const float *x, long n, const uint16_t *w, long out, long in,
                             const float *bias, long lo, long hi) {
	if (n == 1) {
		long o = lo;
		for (; o + 4 <= hi; o += 4) bf16_tile(4, 1, dst, out, x, in, w, bias, o, 0);
		for (; o < hi; o++) bf16_tile(1, 1, dst, out, x, in, w, bias, o, 0);
		return;
	}
	for (long t0 = 0; t0 < n; t0 += 64) {
		long t1 = t0 + 64 < n ? t0 + 64 : n;
		long o = lo;
		for (; o + 4 <= hi; o += 4) bf16_rows(4, dst, out, x, in, w, bias, o, t0, t1);
		for (; o < hi; o++) bf16_rows(1, dst, out, x, in, w, bias, o, t0, t1);
	}
}

// mx_decode8 turns 8 code bytes into the 8 values of their low (shift 0)
// or high (shift 4) nibbles: the magnitude from an 8-entry table, the sign
// from bit 3 moved to bit 31.
AI __m256 mx_decode8(__m256i v, int shift, __m256 mag) {
	__m256i c = shift ? _mm256_srli_epi32(v, 4) : v;
	__m256 m = _mm256_permutevar8x32_ps(mag, c);
	__m256i sign = _mm256_and_si256(_mm256_slli_epi32(c, 28), _mm256_set1_epi32((int)0x80000000u));
	return _mm256_xor_ps(m, _mm256_castsi256_ps(sign));
}

// mx_tile: an R×T tile of an MXFP4 product over block-split x rows (see
// the AVX-512 file). Per block, bytes 0-7 feed split columns 0-7 (low
// nibbles) and 16-23 (high), bytes 8-15 feed 8-15 and 24-31.
AI void mx_tile(int R, int T, float *dst, long ldd, const float *xs, long cols, const uint8_t *blocks,
                const uint8_t *scales, const float *bias, long o, long t, __m256 mag, const float *scaletab) {
	long groups = cols / 32;
	__m256 acc[2][4];
	for (int r = 0; r < R; r++)
		for (int c = 0; c < T; c++) acc[r][c] = _mm256_setzero_ps();
	for (long g = 0; g < groups; g++) {
		__m256 w[2][4];
		for (int r = 0; r < R; r++) {
			const uint8_t *b = blocks + ((o + r) * groups + g) * 16;
			__m256 s = _mm256_set1_ps(scaletab[scales[(o + r) * groups + g]]);
			__m256i v0 = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)b));
			__m256i v1 = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(b + 8)));
			w[r][0] = _mm256_mul_ps(mx_decode8(v0, 0, mag), s);
			w[r][1] = _mm256_mul_ps(mx_decode8(v1, 0, mag), s);
			w[r][2] = _mm256_mul_ps(mx_decode8(v0, 4, mag), s);
			w[r][3] = _mm256_mul_ps(mx_decode8(v1, 4, mag), s);
		}
		for (int c = 0; c < T; c++) {
			const float *xp = xs + (t + c) * cols + g * 32;
			for (int q = 0; q < 4; q++) {
				__m256 xv = _mm256_loadu_ps(xp + 8 * q);
				for (int r = 0; r < R; r++) acc[r][c] = _mm256_fmadd_ps(w[r][q], xv, acc[r][c]);
			}
		}
	}
	for (int r = 0; r < R; r++) {
		float b = bias ? bias[o + r] : 0.0f;
		for (int c = 0; c < T; c++) dst[(t + c) * ldd + o + r] = hsum8(acc[r][c]) + b;
	}
}

void gptoss_matmul_mxfp4_avx2(float *dst, const float *xs, long n, const uint8_t *blocks,
                              const uint8_t *scales, long rows, long cols, const float *bias, long lo,
                              long hi, const float *lutp, const float *scaletab) {
	__m256 mag = _mm256_loadu_ps(lutp); // entries 0-7 are the magnitudes
	for (long c0 = lo; c0 < hi; c0 += 32) {
		long c1 = c0 + 32 < hi ? c0 + 32 : hi;
		long o = c0;
		for (; o + 2 <= c1; o += 2) {
			long t = 0;
			for (; t + 4 <= n; t += 4) mx_tile(2, 4, dst, rows, xs, cols, blocks, scales, bias, o, t, mag, scaletab);
			for (; t < n; t++) mx_tile(2, 1, dst, rows, xs, cols, blocks, scales, bias, o, t, mag, scaletab);
		}
		for (; o < c1; o++) {
			long t = 0;
			for (; t + 4 <= n; t += 4) mx_tile(1, 4, dst, rows, xs, cols, blocks, scales, bias, o, t, mag, scaletab);
			for (; t < n; t++) mx_tile(1, 1, dst, rows, xs, cols, blocks, scales, bias, o, t, mag, scaletab);
		}
	}
}

uint64_t gptoss_read_stream_avx2(const uint8_t *p, long bytes) {
	__m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
	long i = 0;
	for (; i + 128 <= bytes; i += 128) {
		a0 = _mm256_xor_si256(a0, _mm256_loadu_si256((const __m256i *)(p + i)));
		a1 = _mm256_xor_si256(a1, _mm256_loadu_si256((const __m256i *)(p + i + 32)));
		a2 = _mm256_xor_si256(a2, _mm256_loadu_si256((const __m256i *)(p + i + 64)));
		a3 = _mm256_xor_si256(a3, _mm256_loadu_si256((const __m256i *)(p + i + 96)));
	}
	a0 = _mm256_xor_si256(_mm256_xor_si256(a0, a1), _mm256_xor_si256(a2, a3));
	uint64_t s = (uint64_t)_mm256_extract_epi64(a0, 0) ^ (uint64_t)_mm256_extract_epi64(a0, 1) ^
	             (uint64_t)_mm256_extract_epi64(a0, 2) ^ (uint64_t)_mm256_extract_epi64(a0, 3);
	for (; i < bytes; i++) s ^= p[i];
	return s;
}
