//go:build cgo && amd64

// AVX-512 kernels (F, BW, VL): 16 float32 lanes. Compiled for that target
// whatever the build flags; only called when the CPU reports AVX-512.
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c,bmi2")
#include <immintrin.h>
#include "simd.h"

#define SUFFIX avx512
#include "simd_portable.h"

#define AI static inline __attribute__((always_inline))

// bf16_load widens 16 BF16 values (or the first `left` of them) to float32.
AI __m512 bf16_load(const uint16_t *p, __mmask16 m) {
	__m256i h = _mm256_maskz_loadu_epi16(m, p);
	return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

// bf16_tile computes an R×T tile of dst: W rows o…o+R-1 against x rows
// t…t+T-1. R and T are constants at every call site, so the accumulators
// stay in registers.
AI void bf16_tile(int R, int T, float *dst, long ldd, const float *x, long in, const uint16_t *w,
                  const float *bias, long o, long t) {
	__m512 acc[4][4];
	for (int r = 0; r < R; r++)
		for (int c = 0; c < T; c++) acc[r][c] = _mm512_setzero_ps();
	long k = 0;
	for (; k + 16 <= in; k += 16) {
		__m512 wv[4];
		for (int r = 0; r < R; r++) wv[r] = bf16_load(w + (o + r) * in + k, 0xFFFF);
		for (int c = 0; c < T; c++) {
			__m512 xv = _mm512_loadu_ps(x + (t + c) * in + k);
			for (int r = 0; r < R; r++) acc[r][c] = _mm512_fmadd_ps(wv[r], xv, acc[r][c]);
		}
	}
	if (k < in) {
		__mmask16 m = (__mmask16)((1u << (in - k)) - 1);
		__m512 wv[4];
		for (int r = 0; r < R; r++) wv[r] = bf16_load(w + (o + r) * in + k, m);
		for (int c = 0; c < T; c++) {
			__m512 xv = _mm512_maskz_loadu_ps(m, x + (t + c) * in + k);
			for (int r = 0; r < R; r++) acc[r][c] = _mm512_fmadd_ps(wv[r], xv, acc[r][c]);
		}
	}
	for (int r = 0; r < R; r++) {
		float b = bias ? bias[o + r] : 0.0f;
		for (int c = 0; c < T; c++) dst[(t + c) * ldd + o + r] = _mm512_reduce_add_ps(acc[r][c]) + b;
	}
}

// bf16_rows runs the tiles of W rows [o, o+R) over x rows [t0, t1).
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

void gptoss_matmul_bf16_avx512(float *dst, const float *x, long n, const uint16_t *w, long out, long in,
                               const float *bias, long lo, long hi) {
	if (n == 1) {
		// Decode: bandwidth-bound; four rows at a time share the x loads.
		long o = lo;
		for (; o + 4 <= hi; o += 4) bf16_tile(4, 1, dst, out, x, in, w, bias, o, 0);
		for (; o < hi; o++) bf16_tile(1, 1, dst, out, x, in, w, bias, o, 0);
		return;
	}
	// Batches: blocks of 64 x rows stay in L2 while the W rows stream past.
	for (long t0 = 0; t0 < n; t0 += 64) {
		long t1 = t0 + 64 < n ? t0 + 64 : n;
		long o = lo;
		for (; o + 4 <= hi; o += 4) bf16_rows(4, dst, out, x, in, w, bias, o, t0, t1);
		for (; o < hi; o++) bf16_rows(1, dst, out, x, in, w, bias, o, t0, t1);
	}
}

// mx_tile computes an R×T tile of an MXFP4 product. xs holds each x row in
// block-split order (per 32-column block: the 16 even columns, then the 16
// odd ones), matching the low/high nibbles of a block's bytes.
AI void mx_tile(int R, int T, float *dst, long ldd, const float *xs, long cols, const uint8_t *blocks,
                const uint8_t *scales, const float *bias, long o, long t, __m512 lut, const float *scaletab) {
	long groups = cols / 32;
	__m512 acc[8][8];
	for (int r = 0; r < R; r++)
		for (int c = 0; c < T; c++) acc[r][c] = _mm512_setzero_ps();
	for (long g = 0; g < groups; g++) {
		__m512 wl[8], wh[8];
		for (int r = 0; r < R; r++) {
			const uint8_t *b = blocks + ((o + r) * groups + g) * 16;
			__m512i v = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)b));
			// Scale the 16-entry table, not the weights: one multiply per
			// block, and the same arithmetic for any number of tokens
			// (a row's result must not depend on the batch).
			__m512 ls = _mm512_mul_ps(lut, _mm512_set1_ps(scaletab[scales[(o + r) * groups + g]]));
			wl[r] = _mm512_permutexvar_ps(v, ls);
			wh[r] = _mm512_permutexvar_ps(_mm512_srli_epi32(v, 4), ls);
		}
		for (int c = 0; c < T; c++) {
			__m512 xe = _mm512_loadu_ps(xs + (t + c) * cols + g * 32);
			__m512 xo = _mm512_loadu_ps(xs + (t + c) * cols + g * 32 + 16);
			for (int r = 0; r < R; r++) {
				acc[r][c] = _mm512_fmadd_ps(wl[r], xe, acc[r][c]);
				acc[r][c] = _mm512_fmadd_ps(wh[r], xo, acc[r][c]);
			}
		}
	}
	for (int r = 0; r < R; r++) {
		float b = bias ? bias[o + r] : 0.0f;
		for (int c = 0; c < T; c++) dst[(t + c) * ldd + o + r] = _mm512_reduce_add_ps(acc[r][c]) + b;
	}
}

AI void mx_rows(int R, float *dst, long ldd, const float *xs, long cols, const uint8_t *blocks,
                const uint8_t *scales, const float *bias, long o, long t0, long t1, __m512 lut,
                const float *scaletab) {
	long t = t0;
	for (; t + 8 <= t1; t += 8) mx_tile(R, 8, dst, ldd, xs, cols, blocks, scales, bias, o, t, lut, scaletab);
	switch (t1 - t) {
	case 7: mx_tile(R, 7, dst, ldd, xs, cols, blocks, scales, bias, o, t, lut, scaletab); break;
	case 6: mx_tile(R, 6, dst, ldd, xs, cols, blocks, scales, bias, o, t, lut, scaletab); break;
	case 5: mx_tile(R, 5, dst, ldd, xs, cols, blocks, scales, bias, o, t, lut, scaletab); break;
	case 4: mx_tile(R, 4, dst, ldd, xs, cols, blocks, scales, bias, o, t, lut, scaletab); break;
	case 3: mx_tile(R, 3, dst, ldd, xs, cols, blocks, scales, bias, o, t, lut, scaletab); break;
	case 2: mx_tile(R, 2, dst, ldd, xs, cols, blocks, scales, bias, o, t, lut, scaletab); break;
	case 1: mx_tile(R, 1, dst, ldd, xs, cols, blocks, scales, bias, o, t, lut, scaletab); break;
	}
}

void gptoss_matmul_mxfp4_avx512(float *dst, const float *xs, long n, const uint8_t *blocks,
                                const uint8_t *scales, long rows, long cols, const float *bias, long lo,
                                long hi, const float *lutp, const float *scaletab) {
	__m512 lut = _mm512_loadu_ps(lutp);
	if (n == 1) {
		long o = lo;
		// Eight rows give eight independent FMA chains.
		for (; o + 8 <= hi; o += 8) mx_tile(8, 1, dst, rows, xs, cols, blocks, scales, bias, o, 0, lut, scaletab);
		for (; o < hi; o++) mx_tile(1, 1, dst, rows, xs, cols, blocks, scales, bias, o, 0, lut, scaletab);
		return;
	}
	// Chunks of 32 weight rows (48 KiB) stay in L1/L2 while every token
	// tile passes over them, so each expert is read from memory once.
	for (long c0 = lo; c0 < hi; c0 += 32) {
		long c1 = c0 + 32 < hi ? c0 + 32 : hi;
		long o = c0;
		for (; o + 2 <= c1; o += 2) mx_rows(2, dst, rows, xs, cols, blocks, scales, bias, o, 0, n, lut, scaletab);
		for (; o < c1; o++) mx_rows(1, dst, rows, xs, cols, blocks, scales, bias, o, 0, n, lut, scaletab);
	}
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
