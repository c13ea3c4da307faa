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

// exp256 is exp_poly (simd_portable.h) on 8 lanes, the same operations.
AI __m256 exp256(__m256 x) {
	x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.0f)), _mm256_set1_ps(88.0f));
	__m256 n = _mm256_sub_ps(_mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504088896341f), _mm256_set1_ps(12582912.0f)),
	                         _mm256_set1_ps(12582912.0f));
	__m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
	r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
	__m256 p = _mm256_set1_ps(1.9875691500e-4f);
	p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
	p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
	p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
	p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
	p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
	p = _mm256_add_ps(_mm256_fmadd_ps(_mm256_mul_ps(p, r), r, r), _mm256_set1_ps(1.0f));
	__m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvttps_epi32(n), _mm256_set1_epi32(127)), 23);
	return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

// attention64 is attention_portable for 64-wide heads, as the AVX-512 file
// has it: the query head in eight registers, the scores of four keys at a
// time (eight FMAs per key, then one tree of horizontal adds, the same for
// every key), the softmax over the row's contiguous scores in vectors, and
// the weighted sum of values in registers.
static void attention64(float *out, const float *q, long h0, long h1, long group, const float *const ks[3],
                        const float *const vs[3], const long ns[3], long kvstride, const float *sinks, float scale,
                        float *scores) {
	for (long h = h0; h < h1; h++) {
		const float *qh = q + h * 64;
		long off = (h / group) * 64;
		__m256 qv[8];
		for (int j = 0; j < 8; j++) qv[j] = _mm256_loadu_ps(qh + 8 * j);
		float mx = sinks[h];
		__m128 mv = _mm_set1_ps(mx);
		long u = 0;
		for (int s = 0; s < 3; s++) {
			for (long i0 = 0; i0 < ns[s]; i0 += 4) {
				long cnt = ns[s] - i0 < 4 ? ns[s] - i0 : 4;
				__m256 a[4];
				for (int i = 0; i < 4; i++) {
					const float *k = ks[s] + (i0 + (i < cnt ? i : 0)) * kvstride + off; // a short block repeats its first key
					__m256 t = _mm256_mul_ps(qv[0], _mm256_loadu_ps(k));
					for (int j = 1; j < 8; j++) t = _mm256_fmadd_ps(qv[j], _mm256_loadu_ps(k + 8 * j), t);
					a[i] = t;
				}
				// Lane i: key i's lanes 0-3 summed | key i's lanes 4-7 summed.
				__m256 b = _mm256_hadd_ps(_mm256_hadd_ps(a[0], a[1]), _mm256_hadd_ps(a[2], a[3]));
				__m128 d = _mm_mul_ps(_mm_add_ps(_mm256_castps256_ps128(b), _mm256_extractf128_ps(b, 1)), _mm_set1_ps(scale));
				if (cnt == 4) {
					_mm_storeu_ps(scores + u, d);
					mv = _mm_max_ps(mv, d);
				} else {
					float tmp[4];
					_mm_storeu_ps(tmp, d);
					for (long i = 0; i < cnt; i++) {
						scores[u + i] = tmp[i];
						mx = tmp[i] > mx ? tmp[i] : mx;
					}
				}
				u += cnt;
			}
		}
		mv = _mm_max_ps(mv, _mm_movehl_ps(mv, mv));
		mv = _mm_max_ss(mv, _mm_movehdup_ps(mv));
		mx = _mm_cvtss_f32(mv) > mx ? _mm_cvtss_f32(mv) : mx;
		__m256 mb = _mm256_set1_ps(mx), sum = _mm256_setzero_ps();
		long i = 0;
		for (; i + 8 <= u; i += 8) {
			__m256 e = exp256(_mm256_sub_ps(_mm256_loadu_ps(scores + i), mb));
			_mm256_storeu_ps(scores + i, e);
			sum = _mm256_add_ps(sum, e);
		}
		float denom = hsum8(sum) + exp_poly_avx2(sinks[h] - mx);
		for (; i < u; i++) {
			scores[i] = exp_poly_avx2(scores[i] - mx);
			denom += scores[i];
		}
		float inv = 1.0f / denom;
		__m256 o[8];
		for (int j = 0; j < 8; j++) o[j] = _mm256_setzero_ps();
		u = 0;
		for (int s = 0; s < 3; s++) {
			for (long i = 0; i < ns[s]; i++) {
				const float *v = vs[s] + i * kvstride + off;
				__m256 w = _mm256_set1_ps(scores[u++] * inv);
				for (int j = 0; j < 8; j++) o[j] = _mm256_fmadd_ps(w, _mm256_loadu_ps(v + 8 * j), o[j]);
			}
		}
		for (int j = 0; j < 8; j++) _mm256_storeu_ps(out + h * 64 + 8 * j, o[j]);
	}
}

void gptoss_attention_avx2(float *out, const float *q, long h0, long h1, long group, long hd, const float *k0,
                           const float *v0, long n0, const float *k1, const float *v1, long n1, const float *k2,
                           const float *v2, long n2, long kvstride, const float *sinks, float scale, float *scores) {
	if (hd == 64) {
		const float *ks[3] = {k0, k1, k2}, *vs[3] = {v0, v1, v2};
		const long ns[3] = {n0, n1, n2};
		attention64(out, q, h0, h1, group, ks, vs, ns, kvstride, sinks, scale, scores);
		return;
	}
	attention_portable_avx2(out, q, h0, h1, group, hd, k0, v0, n0, k1, v1, n1, k2, v2, n2, kvstride, sinks, scale,
	                        scores);
}

AI __m256 bf16_load8(const uint16_t *p) {
	__m128i h = _mm_loadu_si128((const __m128i *)p);
	return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

// bf16_tail adds a row's last columns [k, in) (fewer than 8) to s, in
// order, in scalar code.
AI float bf16_tail(float s, const uint16_t *wr, const float *xr, long k, long in) {
	for (long j = k; j < in; j++) {
		uint32_t bits = (uint32_t)wr[j] << 16;
		float wf;
		memcpy(&wf, &bits, 4);
		s += wf * xr[j];
	}
	return s;
}

// bf16_tile: an R×T tile of W rows o… against x rows t…; the tail of a
// row (in % 8) is done in scalar code.
AI void bf16_tile(int R, int T, float *dst, long ldd, const float *x, long in, const uint16_t *w,
                  const float *bias, long o, long t) {
	// The unroll pragmas keep acc[][] in registers (without them GCC
	// stores every accumulator on every step); R·T + R + 1 ≤ 16 ymm.
	__m256 acc[4][4];
#pragma GCC unroll 4
	for (int r = 0; r < R; r++)
#pragma GCC unroll 4
		for (int c = 0; c < T; c++) acc[r][c] = _mm256_setzero_ps();
	long k = 0;
	for (; k + 8 <= in; k += 8) {
		// Decode (one token, four rows): one line of the next tile's rows
		// per 8-column step, row (k/8) mod 4, as the AVX-512 kernel spreads
		// its prefetches.
		if (R == 4 && T == 1) _mm_prefetch((const char *)(w + (o + 4 + ((k >> 3) & 3)) * in + (k & ~31L)), _MM_HINT_T0);
		__m256 wv[4];
#pragma GCC unroll 4
		for (int r = 0; r < R; r++) wv[r] = bf16_load8(w + (o + r) * in + k);
#pragma GCC unroll 4
		for (int c = 0; c < T; c++) {
			__m256 xv = _mm256_loadu_ps(x + (t + c) * in + k);
#pragma GCC unroll 4
			for (int r = 0; r < R; r++) acc[r][c] = _mm256_fmadd_ps(wv[r], xv, acc[r][c]);
		}
	}
	for (int r = 0; r < R; r++) {
		float b = bias ? bias[o + r] : 0.0f;
		for (int c = 0; c < T; c++) {
			float s = bf16_tail(hsum8(acc[r][c]), w + (o + r) * in, x + (t + c) * in, k, in);
			dst[(t + c) * ldd + o + r] = s + b;
		}
	}
}

// Batches: blocks of BB_R rows × BB_T tokens × BB_K columns, so a 4-token
// slice of x and the block's weights stay in L1 while the row tiles pass;
// each (row, token) carries its accumulator between column blocks, so it
// adds the same products in the same order as bf16_tile (a row's bits do
// not depend on n).
#define BB_R 12
#define BB_T 32
#define BB_K 512

// bf16_block_tile adds columns [k0, k1) (whole 8-column steps) of an R×T
// tile to acc (row r, token c at acc[r·BB_T + c]).
AI void bf16_block_tile(int R, int T, __m256 *acc, const float *x, long in, const uint16_t *w, long o, long t, long k0,
                        long k1) {
	__m256 a[3][4];
#pragma GCC unroll 4
	for (int r = 0; r < R; r++)
#pragma GCC unroll 4
		for (int c = 0; c < T; c++) a[r][c] = acc[r * BB_T + c];
	// The step is bf16_tile's, written out again: sharing it through a
	// helper cost the decode tile half its in-cache speed
	// (-bench MatVecBF16InCache/avx2: 12-23 -> 7-8 GB/s, three pairs).
	for (long k = k0; k < k1; k += 8) {
		__m256 wv[3];
#pragma GCC unroll 4
		for (int r = 0; r < R; r++) wv[r] = bf16_load8(w + (o + r) * in + k);
#pragma GCC unroll 4
		for (int c = 0; c < T; c++) {
			__m256 xv = _mm256_loadu_ps(x + (t + c) * in + k);
#pragma GCC unroll 4
			for (int r = 0; r < R; r++) a[r][c] = _mm256_fmadd_ps(wv[r], xv, a[r][c]);
		}
	}
#pragma GCC unroll 4
	for (int r = 0; r < R; r++)
#pragma GCC unroll 4
		for (int c = 0; c < T; c++) acc[r * BB_T + c] = a[r][c];
}

#define BF16_BT_FN(R, T)                                                                                  \
	static __attribute__((noinline)) void bf16_bt_##R##_##T(__m256 *acc, const float *x, long in,           \
	                                                        const uint16_t *w, long o, long t, long k0, long k1) { \
		bf16_block_tile(R, T, acc, x, in, w, o, t, k0, k1);                                                \
	}
BF16_BT_FN(3, 4)
BF16_BT_FN(3, 3)
BF16_BT_FN(3, 2)
BF16_BT_FN(3, 1)
BF16_BT_FN(1, 4)
BF16_BT_FN(1, 3)
BF16_BT_FN(1, 2)
BF16_BT_FN(1, 1)

static void bf16_blocked(float *dst, const float *x, long n, const uint16_t *w, long out, long in, const float *bias,
                         long lo, long hi) {
	typedef void (*bt_fn)(__m256 *, const float *, long, const uint16_t *, long, long, long, long);
	static const bt_fn tiles[2][4] = {{bf16_bt_1_1, bf16_bt_1_2, bf16_bt_1_3, bf16_bt_1_4},
	                                  {bf16_bt_3_1, bf16_bt_3_2, bf16_bt_3_3, bf16_bt_3_4}};
	__m256 acc[BB_R * BB_T];
	long kmain = in / 8 * 8;
	for (long t0 = 0; t0 < n; t0 += BB_T) {
		long t1 = t0 + BB_T < n ? t0 + BB_T : n;
		for (long r0 = lo; r0 < hi; r0 += BB_R) {
			long r1 = r0 + BB_R < hi ? r0 + BB_R : hi;
			for (long i = 0; i < BB_R * BB_T; i++) acc[i] = _mm256_setzero_ps();
			for (long k0 = 0; k0 < kmain; k0 += BB_K) {
				long k1 = k0 + BB_K < kmain ? k0 + BB_K : kmain;
				for (long t = t0; t < t1; t += 4) {
					int T = t1 - t < 4 ? (int)(t1 - t) : 4;
					for (long o = r0; o < r1;) {
						int R = r1 - o < 3 ? 1 : 3;
						tiles[R == 3][T - 1](&acc[(o - r0) * BB_T + (t - t0)], x, in, w, o, t, k0, k1);
						o += R;
					}
				}
			}
			for (long o = r0; o < r1; o++) {
				float b = bias ? bias[o] : 0.0f;
				for (long t = t0; t < t1; t++) {
					float s = bf16_tail(hsum8(acc[(o - r0) * BB_T + (t - t0)]), w + o * in, x + t * in, kmain, in);
					dst[t * out + o] = s + b;
				}
			}
		}
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
	bf16_blocked(dst, x, n, w, out, in, bias, lo, hi);
}

// The MXFP4 kernels read x in chunk order (see SplitBlocks and the
// AVX-512 file): a chunk's 64 code bytes are two 32-byte halves of 8
// lanes, and vector k of a half holds nibble k of each lane. A table
// (vpshufb) maps each nibble to its doubled value 2·E2M1, an integer in
// [-12, 12], and multiplies by 0 and 1 widen the bytes to 32 bits. On Zen 3
// this streams ~1.5× faster than a vpermps lookup with a sign fix-up per 8
// weights, which kept the two shuffle pipes busy. A chunk is summed
// unscaled per lane over its 8 nibbles, in four partial sums (one FMA
// chain each, as the chain's latency bounds a decode row), then multiplied
// by half the lane's block scale into the accumulator, the same per
// (row, token) in every tile shape.

// mx_scale8 is half the float32 scale of the lanes of half h of a chunk
// (blocks 2h and 2h+1; 1.0 for missing blocks): e<<23, 2^-127 for e = 0,
// times 0.5 (exact), since the weights are decoded doubled.
AI __m256 mx_scale8(const uint8_t *s, int nb, int h, int fix) {
	uint32_t v = 0x7F7F7F7Fu;
	__builtin_memcpy(&v, s, nb == 4 ? 4 : nb);
	__m256i ctl = h ? _mm256_setr_epi32(0x80808002, 0x80808002, 0x80808002, 0x80808002, 0x80808003, 0x80808003, 0x80808003, 0x80808003)
	                : _mm256_setr_epi32(0x80808000, 0x80808000, 0x80808000, 0x80808000, 0x80808001, 0x80808001, 0x80808001, 0x80808001);
	__m256i e = _mm256_shuffle_epi8(_mm256_set1_epi32((int)v), ctl);
	__m256 f = _mm256_castsi256_ps(_mm256_slli_epi32(e, 23));
	if (fix)
		f = _mm256_blendv_ps(f, _mm256_castsi256_ps(_mm256_set1_epi32(1 << 22)),
		                     _mm256_castsi256_ps(_mm256_cmpeq_epi32(e, _mm256_setzero_si256())));
	return _mm256_mul_ps(f, _mm256_set1_ps(0.5f));
}

// mx_decode8 turns one half of a chunk (8 lanes of 4 code bytes) into its
// 8 weight vectors, doubled: w[k] lane l is 2·E2M1 of nibble k of lane l.
// A table maps the nibbles to bytes in place (byte q of lane l holds
// nibbles 2q and 2q+1); multiplies by 1 and 0 then widen byte q of each
// lane to 32 bits, sign included, on the multiply pipes rather than the
// shuffle pipes.
AI void mx_decode8(__m256i v, __m256 w[8]) {
	const __m256i lut = _mm256_setr_epi8(0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12,
	                                     0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12);
	const __m256i nib = _mm256_set1_epi8(0x0F);
	const __m256i b0 = _mm256_set1_epi16(0x0001), b1 = _mm256_set1_epi16(0x0100); // bytes 2i, 2i+1
	const __m256i h0 = _mm256_set1_epi32(0x00000001), h1 = _mm256_set1_epi32(0x00010000); // words 2j, 2j+1
	__m256i lo = _mm256_shuffle_epi8(lut, _mm256_and_si256(v, nib));
	__m256i hi = _mm256_shuffle_epi8(lut, _mm256_and_si256(_mm256_srli_epi16(v, 4), nib));
	__m256i l0 = _mm256_maddubs_epi16(b0, lo), l1 = _mm256_maddubs_epi16(b1, lo);
	__m256i u0 = _mm256_maddubs_epi16(b0, hi), u1 = _mm256_maddubs_epi16(b1, hi);
	w[0] = _mm256_cvtepi32_ps(_mm256_madd_epi16(l0, h0)); // byte 0: nibbles 0, 1
	w[1] = _mm256_cvtepi32_ps(_mm256_madd_epi16(u0, h0));
	w[2] = _mm256_cvtepi32_ps(_mm256_madd_epi16(l1, h0)); // byte 1
	w[3] = _mm256_cvtepi32_ps(_mm256_madd_epi16(u1, h0));
	w[4] = _mm256_cvtepi32_ps(_mm256_madd_epi16(l0, h1)); // byte 2
	w[5] = _mm256_cvtepi32_ps(_mm256_madd_epi16(u0, h1));
	w[6] = _mm256_cvtepi32_ps(_mm256_madd_epi16(l1, h1)); // byte 3
	w[7] = _mm256_cvtepi32_ps(_mm256_madd_epi16(u1, h1));
}

// mx_chunk adds one chunk (nb blocks from block g) of an R×T tile to acc.
AI void mx_chunk(int R, int T, __m256 acc[2][2][2], const float *xs, long cols, const uint8_t *blocks,
                 const uint8_t *scales, long o, long t, long g, int nb, int fix) {
	long groups = cols / 32, L = 4 * nb;
	int H = nb > 2 ? 2 : 1; // halves present
	for (int h = 0; h < H; h++) {
		int lanes = L - 8 * h < 8 ? (int)(L - 8 * h) : 8;
		__m256i xm = _mm256_cmpgt_epi32(_mm256_set1_epi32(lanes), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
		for (int r = 0; r < R; r++) {
			const uint8_t *b = blocks + ((o + r) * groups + g) * 16 + 32 * h;
			if (h == 0) // the same chunk 8 rows on: ahead of the stream in decode
				_mm_prefetch((const char *)(b + 8 * groups * 16), _MM_HINT_T0);
			__m256i v;
			if (nb == 4) {
				v = _mm256_loadu_si256((const __m256i *)b);
			} else {
				uint8_t buf[32] = {0};
				__builtin_memcpy(buf, b, 16 * nb - 32 * h < 32 ? 16 * nb - 32 * h : 32);
				v = _mm256_loadu_si256((const __m256i *)buf);
			}
			__m256 w[8], bs[2][4];
			mx_decode8(v, w);
			// Four partial sums (nibbles k mod 4): four FMA chains per lane.
#pragma GCC unroll 8
			for (int k = 0; k < 8; k++)
				for (int c = 0; c < T; c++) {
					const float *xp = xs + (t + c) * cols + g * 32 + k * L + 8 * h;
					__m256 xk = lanes == 8 ? _mm256_loadu_ps(xp) : _mm256_maskload_ps(xp, xm);
					bs[c][k & 3] = k > 3 ? _mm256_fmadd_ps(w[k], xk, bs[c][k & 3]) : _mm256_mul_ps(w[k], xk);
				}
			__m256 sv = mx_scale8(scales + (o + r) * groups + g, nb, h, fix);
			for (int c = 0; c < T; c++)
				acc[r][c][h] = _mm256_fmadd_ps(_mm256_add_ps(_mm256_add_ps(bs[c][0], bs[c][2]), _mm256_add_ps(bs[c][1], bs[c][3])), sv, acc[r][c][h]);
		}
	}
}

AI void mx_chunks(int R, int T, __m256 acc[2][2][2], const float *xs, long cols, const uint8_t *blocks,
                  const uint8_t *scales, long o, long t, int fix) {
	long groups = cols / 32, g = 0;
	for (; g + 4 <= groups; g += 4) mx_chunk(R, T, acc, xs, cols, blocks, scales, o, t, g, 4, fix);
	switch (groups - g) {
	case 3: mx_chunk(R, T, acc, xs, cols, blocks, scales, o, t, g, 3, fix); break;
	case 2: mx_chunk(R, T, acc, xs, cols, blocks, scales, o, t, g, 2, fix); break;
	case 1: mx_chunk(R, T, acc, xs, cols, blocks, scales, o, t, g, 1, fix); break;
	}
}

// mx_tile: an R×T tile (R, T ≤ 2) of an MXFP4 product.
AI void mx_tile(int R, int T, float *dst, long ldd, const float *xs, long cols, const uint8_t *blocks,
                const uint8_t *scales, const float *bias, long o, long t) {
	long groups = cols / 32;
	__m256 acc[2][2][2];
	for (int r = 0; r < R; r++)
		for (int c = 0; c < T; c++) acc[r][c][0] = acc[r][c][1] = _mm256_setzero_ps();
	if (__builtin_memchr(scales + o * groups, 0, R * groups))
		mx_chunks(R, T, acc, xs, cols, blocks, scales, o, t, 1);
	else
		mx_chunks(R, T, acc, xs, cols, blocks, scales, o, t, 0);
	for (int r = 0; r < R; r++) {
		float b = bias ? bias[o + r] : 0.0f;
		for (int c = 0; c < T; c++) dst[(t + c) * ldd + o + r] = hsum8(_mm256_add_ps(acc[r][c][0], acc[r][c][1])) + b;
	}
}

#define MX_TILE_FN(R, T)                                                                            \
	static __attribute__((noinline)) void mx_tile_##R##_##T(float *dst, long ldd, const float *xs,  \
	                                                        long cols, const uint8_t *blocks,       \
	                                                        const uint8_t *scales, const float *bias, \
	                                                        long o, long t) {                       \
		mx_tile(R, T, dst, ldd, xs, cols, blocks, scales, bias, o, t);                          \
	}
MX_TILE_FN(2, 1)
MX_TILE_FN(1, 2)
MX_TILE_FN(1, 1)

void gptoss_matmul_mxfp4_avx2(float *dst, const float *xs, long n, const uint8_t *blocks,
                              const uint8_t *scales, long rows, long cols, const float *bias, long lo,
                              long hi, const float *lutp, const float *scaletab) {
	(void)lutp, (void)scaletab;
	if (n == 1) {
		long o = lo;
		for (; o + 2 <= hi; o += 2) mx_tile_2_1(dst, rows, xs, cols, blocks, scales, bias, o, 0);
		for (; o < hi; o++) mx_tile_1_1(dst, rows, xs, cols, blocks, scales, bias, o, 0);
		return;
	}
	// Chunks of 32 weight rows stay in L1/L2 while the token pairs pass.
	for (long c0 = lo; c0 < hi; c0 += 32) {
		long c1 = c0 + 32 < hi ? c0 + 32 : hi;
		for (long o = c0; o < c1; o++) {
			long t = 0;
			for (; t + 2 <= n; t += 2) mx_tile_1_2(dst, rows, xs, cols, blocks, scales, bias, o, t);
			if (t < n) mx_tile_1_1(dst, rows, xs, cols, blocks, scales, bias, o, t);
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

// gptoss_quantize_q8_avx2 is QuantizeQ8 (q8.go), the same bytes, rounding
// half away from zero as the AVX-512 version does. Packing 32 int32 to
// bytes leaves the dwords in the order (0, 8, 16, 24 | 4, 12, 20, 28)
// (first column of each); a dword permute restores column order and an
// in-lane byte shuffle puts each 8 columns' even ones before their odd
// ones, which is the q8 layout's dword order (q8Column).
void gptoss_quantize_q8_avx2(uint8_t *dst, const float *x, long cols) {
	long nblocks = cols / 32, groups = (nblocks + 15) / 16;
	__builtin_memset(dst, 0, groups * GPTOSS_Q8_GROUP_BYTES);
	const __m256i absmask = _mm256_set1_epi32(0x7FFFFFFF);
	const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
	const __m256i evenodd = _mm256_setr_epi8(0, 2, 4, 6, 1, 3, 5, 7, 8, 10, 12, 14, 9, 11, 13, 15,
	                                         0, 2, 4, 6, 1, 3, 5, 7, 8, 10, 12, 14, 9, 11, 13, 15);
	for (long b = 0; b < nblocks; b++) {
		__m256 xs[4];
		__m256i m = _mm256_setzero_si256();
		for (int i = 0; i < 4; i++) {
			xs[i] = _mm256_loadu_ps(x + 32 * b + 8 * i);
			m = _mm256_max_epu32(m, _mm256_and_si256(_mm256_castps_si256(xs[i]), absmask));
		}
		__m128i m4 = _mm_max_epu32(_mm256_castsi256_si128(m), _mm256_extracti128_si256(m, 1));
		m4 = _mm_max_epu32(m4, _mm_shuffle_epi32(m4, 0x4E));
		m4 = _mm_max_epu32(m4, _mm_shuffle_epi32(m4, 0xB1));
		float mf = _mm_cvtss_f32(_mm_castsi128_ps(m4));
		float d = mf / 127.0f, id = d != 0 ? 1.0f / d : 0.0f;
		__m256i q[4], sum = _mm256_setzero_si256();
		for (int i = 0; i < 4; i++) {
			__m256 v = _mm256_mul_ps(xs[i], _mm256_set1_ps(id));
			__m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
			__m256 fr = _mm256_sub_ps(v, t);
			__m256i up = _mm256_castps_si256(_mm256_cmp_ps(fr, _mm256_set1_ps(0.5f), _CMP_GE_OQ));
			__m256i dn = _mm256_castps_si256(_mm256_cmp_ps(fr, _mm256_set1_ps(-0.5f), _CMP_LE_OQ));
			__m256i qi = _mm256_add_epi32(_mm256_sub_epi32(_mm256_cvttps_epi32(t), up), dn); // masks are -1
			q[i] = _mm256_max_epi32(_mm256_min_epi32(qi, _mm256_set1_epi32(127)), _mm256_set1_epi32(-127));
			sum = _mm256_add_epi32(sum, q[i]);
		}
		__m256i bytes = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
		bytes = _mm256_shuffle_epi8(_mm256_permutevar8x32_epi32(bytes, order), evenodd);
		uint32_t dw[8];
		_mm256_storeu_si256((__m256i *)dw, bytes);
		__m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(sum), _mm256_extracti128_si256(sum, 1));
		s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4E));
		s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xB1));
		gptoss_q8_store_block(dst, b, dw, d, _mm_cvtsi128_si32(s4));
	}
}

// The int8-activation MXFP4 product (q8.go) with AVX2: the same exact
// block sums and the same float epilogue as the Go twin and the AVX-512
// VNNI kernel, so every level gives the same bits. A 16-block group of
// the q8 layout is two halves of 8 lanes (one block per 32-bit lane);
// vpmaddubsw multiplies the unsigned codes u = 2·E2M1 + 12 by the int8
// activations, four of its int16 results add without overflow (a lane
// of one is at most 2·24·127), and vpmaddwd by 1 widens them to int32.
// Batches decode rows once per block of groups into an L1 panel in that
// layout, reused by every token of a 32-token block; decode (n = 1) reads
// the codes in stored order instead (q8a_row1, below).
#define Q8A_TB 32 // tokens per tile block
#define Q8A_RB 2  // rows per panel
#define Q8A_GB 4  // groups per panel
#define Q8A_PF_ROWS 8

typedef struct {
	__m256i u[8][2]; // vector v, half h: lane j = 4 unsigned codes of block 8h + j
	__m256 s[2];     // half h, lane j: block 8h + j's scale / 2
} q8a_panel;

// q8a_mul multiplies without letting the compiler contract the product
// into a following addition (the Go twin rounds each operation).
AI __m256 q8a_mul(__m256 a, __m256 b) {
	__m256 p = _mm256_mul_ps(a, b);
	__asm__("" : "+x"(p));
	return p;
}

// q8a_scales8 returns the float32 scales 2^(e-127)/2 of the have (≤ 8 used)
// blocks at s, lane i holding block order[i] (byte 3 of dword i in ctl is
// order[i], the others -1). A whole half is one 8-byte load: copying the
// bytes into a buffer and loading it back stalled on store forwarding.
// The byte shuffle also places e at bits 24-31, so one shift makes the
// exponent field; max(e << 23, 1 << 22) is 2^-127 (subnormal) for e = 0.
// Missing blocks get e = 127 (their x scale d is 0, so the lane adds +0):
// e = 0 there made a subnormal product in every row's last group, and Zen
// 3 takes a slow assist for each.
AI __m256 q8a_scales8(const uint8_t *s, long have, __m256i ctl) {
	long long v;
	if (have >= 8) {
		__builtin_memcpy(&v, s, 8);
	} else {
		uint64_t u = 0x7F7F7F7F7F7F7F7Full;
		for (long j = 0; j < have; j++) u = (u & ~(0xFFull << (8 * j))) | (uint64_t)s[j] << (8 * j);
		v = (long long)u;
	}
	__m256i e = _mm256_srli_epi32(_mm256_shuffle_epi8(_mm256_set1_epi64x(v), ctl), 1);
	__m256 f = _mm256_castsi256_ps(_mm256_max_epu32(e, _mm256_set1_epi32(1 << 22)));
	return _mm256_mul_ps(f, _mm256_set1_ps(0.5f));
}

// The codes as unsigned bytes u = 2·E2M1 + 12, by nibble (a vpshufb table).
#define Q8A_CODES                                                                                                 \
	_mm256_setr_epi8(12, 13, 14, 15, 16, 18, 20, 24, 12, 11, 10, 9, 8, 6, 4, 0, 12, 13, 14, 15, 16, 18, 20, 24, 12, 11, \
	                 10, 9, 8, 6, 4, 0)

// The scale shuffles: blocks in order, and in the order three vphaddd
// leave them (0 2 4 6 | 1 3 5 7; the decode path, below).
#define Q8A_SCALES_IN_ORDER                                                                                 \
	_mm256_setr_epi8(-1, -1, -1, 0, -1, -1, -1, 1, -1, -1, -1, 2, -1, -1, -1, 3, -1, -1, -1, 4, -1, -1, -1, 5, \
	                 -1, -1, -1, 6, -1, -1, -1, 7)
#define Q8A_SCALES_HADD_ORDER                                                                               \
	_mm256_setr_epi8(-1, -1, -1, 0, -1, -1, -1, 2, -1, -1, -1, 4, -1, -1, -1, 6, -1, -1, -1, 1, -1, -1, -1, 3, \
	                 -1, -1, -1, 5, -1, -1, -1, 7)

// q8a_pack decodes group g (nb blocks) of row r into p: a 4×4 dword
// transpose per pair of 128-bit lanes puts dword m of blocks 8h … 8h+7 in
// one vector, whose low and high nibbles are vectors 2m and 2m+1.
AI void q8a_pack(q8a_panel *p, const uint8_t *blocks, const uint8_t *scales, long nblocks, long r, long g, long nb) {
	const uint8_t *b = blocks + (r * nblocks + 16 * g) * 16;
	for (int i = 0; i < 4; i++) // the same group 8 rows on, the rows' next in the stream
		_mm_prefetch((const char *)(b + Q8A_PF_ROWS * nblocks * 16 + 64 * i), _MM_HINT_T0);
	_mm_prefetch((const char *)(scales + (r + Q8A_PF_ROWS) * nblocks + 16 * g), _MM_HINT_T0);
	const __m256i tab = Q8A_CODES;
	const __m256i m4 = _mm256_set1_epi8(0x0F);
	for (int h = 0; h < 2; h++) {
		__m128i q[8];
		for (int j = 0; j < 8; j++)
			q[j] = 8 * h + j < nb ? _mm_loadu_si128((const __m128i *)(b + (8 * h + j) * 16)) : _mm_setzero_si128();
		__m256i ya = _mm256_set_m128i(q[4], q[0]), yb = _mm256_set_m128i(q[5], q[1]);
		__m256i yc = _mm256_set_m128i(q[6], q[2]), yd = _mm256_set_m128i(q[7], q[3]);
		__m256i t0 = _mm256_unpacklo_epi32(ya, yb), t1 = _mm256_unpackhi_epi32(ya, yb);
		__m256i t2 = _mm256_unpacklo_epi32(yc, yd), t3 = _mm256_unpackhi_epi32(yc, yd);
		__m256i d[4] = {_mm256_unpacklo_epi64(t0, t2), _mm256_unpackhi_epi64(t0, t2), _mm256_unpacklo_epi64(t1, t3),
		                _mm256_unpackhi_epi64(t1, t3)};
		for (int m = 0; m < 4; m++) {
			p->u[2 * m][h] = _mm256_shuffle_epi8(tab, _mm256_and_si256(d[m], m4));
			p->u[2 * m + 1][h] = _mm256_shuffle_epi8(tab, _mm256_and_si256(_mm256_srli_epi16(d[m], 4), m4));
		}
		p->s[h] = q8a_scales8(scales + r * nblocks + 16 * g + 8 * h, nb - 8 * h, Q8A_SCALES_IN_ORDER);
	}
}

// q8a_tile adds groups [g0, g1) of an R×T tile (R, T ≤ 2; panel rows at
// p[r·Q8A_GB], tokens t…) to acc (row r, token c, half h at
// acc[(r·Q8A_TB + c)·2 + h]). One half at a time, and each row's four
// code vectors against each token in turn, so the live values fit the 16
// ymm registers: with the halves and rows interleaved GCC spilled partial
// sums to the stack and read them back a few instructions later.
AI void q8a_tile(int R, int T, __m256 *acc, const q8a_panel *p, const uint8_t *xq, long qb, long t, long g0, long g1) {
	const __m256i one = _mm256_set1_epi16(1);
	for (int h = 0; h < 2; h++) {
		__m256 a[2][2];
		for (int r = 0; r < R; r++)
			for (int c = 0; c < T; c++) a[r][c] = acc[(r * Q8A_TB + c) * 2 + h];
		for (long g = g0; g < g1; g++) {
			const q8a_panel *pg = p + (g - g0);
			const uint8_t *xg = xq + t * qb + g * GPTOSS_Q8_GROUP_BYTES + 32 * h;
			__m256i is[2][2];
#pragma GCC unroll 2
			for (int half = 0; half < 2; half++) {
#pragma GCC unroll 2
				for (int r = 0; r < R; r++) {
					__m256i w[4];
#pragma GCC unroll 4
					for (int vi = 0; vi < 4; vi++) w[vi] = pg[r * Q8A_GB].u[4 * half + vi][h];
#pragma GCC unroll 2
					for (int c = 0; c < T; c++) {
						const uint8_t *xc = xg + c * qb + 4 * half * 64;
						__m256i s16 = _mm256_maddubs_epi16(w[0], _mm256_loadu_si256((const __m256i *)xc));
#pragma GCC unroll 3
						for (int vi = 1; vi < 4; vi++)
							s16 = _mm256_add_epi16(s16, _mm256_maddubs_epi16(w[vi], _mm256_loadu_si256((const __m256i *)(xc + vi * 64))));
						__m256i m = _mm256_madd_epi16(s16, one);
						is[r][c] = half ? _mm256_add_epi32(is[r][c], m) : m;
					}
				}
			}
			for (int c = 0; c < T; c++) {
				const uint8_t *tail = xq + (t + c) * qb + g * GPTOSS_Q8_GROUP_BYTES + 512;
				__m256 d = _mm256_loadu_ps((const float *)(tail + 32 * h));
				__m256i corr = _mm256_loadu_si256((const __m256i *)(tail + 64 + 32 * h));
				for (int r = 0; r < R; r++) {
					__m256 f = _mm256_cvtepi32_ps(_mm256_sub_epi32(is[r][c], corr));
					__m256 sc = q8a_mul(d, pg[r * Q8A_GB].s[h]);
					a[r][c] = _mm256_add_ps(a[r][c], q8a_mul(f, sc));
				}
			}
		}
		for (int r = 0; r < R; r++)
			for (int c = 0; c < T; c++) acc[(r * Q8A_TB + c) * 2 + h] = a[r][c];
	}
}

#define Q8A_TILE_FN(R, T)                                                                                      \
	static __attribute__((noinline)) void q8a_tile_##R##_##T(__m256 *acc, const q8a_panel *p, const uint8_t *xq, \
	                                                         long qb, long t, long g0, long g1) {             \
		q8a_tile(R, T, acc, p, xq, qb, t, g0, g1);                                                       \
	}
Q8A_TILE_FN(2, 2)
Q8A_TILE_FN(2, 1)
Q8A_TILE_FN(1, 2)
Q8A_TILE_FN(1, 1)

// q8a_reduce sums the 16 lanes (two halves) in the Go twin's order:
// halves, then quarters, then pairs.
AI float q8a_reduce(__m256 a, __m256 b) {
	__m256 a8 = _mm256_add_ps(a, b);
	__m128 a4 = _mm_add_ps(_mm256_castps256_ps128(a8), _mm256_extractf128_ps(a8, 1));
	__m128 a2 = _mm_add_ps(a4, _mm_movehl_ps(a4, a4));
	return _mm_cvtss_f32(a2) + _mm_cvtss_f32(_mm_shuffle_ps(a2, a2, 1));
}

// Decode (n = 1) reads each weight once, so it decodes in registers and
// leaves the codes in stored order: a 32-byte load is two whole blocks,
// whose low and high nibbles multiply x copied once per call into the
// same order (q8a_xorder). That gives four partial sums per block; three
// horizontal adds turn four such vectors into one block per lane, the same
// exact sums as the panels, in the lane order 0 2 4 6 | 1 3 5 7. The x
// scales and corrections are copied in that order too, the weight scales
// are shuffled into it as they are loaded, and the two accumulators are
// permuted back once per row, so the epilogue and the final sum are
// q8a_tile's and a row's bits do not depend on n. Against the panel path
// (a transpose and stores per row and group), in a 20b decode step
// (--profile, two alternated pairs): the experts 9.3-12.0 -> 13.6-18.5
// GB/s, tg16 4.3-5.0 -> 5.2-5.9 tok/s. Whole groups then run without the
// per-pair checks of the last one and with the lane order above (no
// permute per half), one row at a time (q8a_row1): 14.9 -> 17.3 GB/s for
// 256 rows in L2.
#define Q8A_XORDER_BLOCKS 512 // up to 16384 columns; the struct (21 KiB) is on the stack

typedef struct {
	// The int8 values for block b's low nibbles at lo[16b …], for its high
	// nibbles at hi[16b …] (byte 4m+i: the column of code byte 4m+i), and
	// an odd last block's zero partner.
	uint8_t lo[16 * (Q8A_XORDER_BLOCKS + 1)], hi[16 * (Q8A_XORDER_BLOCKS + 1)];
	// Per half of 8 blocks, in the lane order 0 2 4 6 1 3 5 7: the scales
	// d and the corrections (q8.go); 0 past the last block.
	float d[Q8A_XORDER_BLOCKS + 16];
	int32_t corr[Q8A_XORDER_BLOCKS + 16];
} q8a_xorder;

static void q8a_xorder_fill(q8a_xorder *x, const uint8_t *xq, long nblocks) {
	static const int lane_block[8] = {0, 2, 4, 6, 1, 3, 5, 7};
	for (long b = 0; b < nblocks; b++) {
		const uint8_t *grp = xq + (b / 16) * GPTOSS_Q8_GROUP_BYTES + 4 * (b % 16);
		for (int m = 0; m < 4; m++) { // vector 2m (low nibbles) or 2m+1, lane b mod 16
			__builtin_memcpy(x->lo + 16 * b + 4 * m, grp + 2 * m * 64, 4);
			__builtin_memcpy(x->hi + 16 * b + 4 * m, grp + (2 * m + 1) * 64, 4);
		}
	}
	if (nblocks % 2) {
		__builtin_memset(x->lo + 16 * nblocks, 0, 16);
		__builtin_memset(x->hi + 16 * nblocks, 0, 16);
	}
	long groups = (nblocks + 15) / 16;
	for (long g = 0; g < groups; g++) {
		const uint8_t *grp = xq + g * GPTOSS_Q8_GROUP_BYTES; // lanes past nblocks hold 0
		for (int i = 0; i < 16; i++) {
			int j = 8 * (i / 8) + lane_block[i % 8];
			__builtin_memcpy(&x->d[16 * g + i], grp + 512 + 4 * j, 4);
			__builtin_memcpy(&x->corr[16 * g + i], grp + 576 + 4 * j, 4);
		}
	}
}

// q8a_pair returns a pair of blocks' four partial sums each (one block per
// 128-bit half).
AI __m256i q8a_pair(__m256i w, __m256i xl, __m256i xh) {
	const __m256i tab = Q8A_CODES;
	const __m256i m4 = _mm256_set1_epi8(0x0F);
	__m256i lo = _mm256_shuffle_epi8(tab, _mm256_and_si256(w, m4));
	__m256i hi = _mm256_shuffle_epi8(tab, _mm256_and_si256(_mm256_srli_epi16(w, 4), m4));
	return _mm256_madd_epi16(_mm256_add_epi16(_mm256_maddubs_epi16(lo, xl), _mm256_maddubs_epi16(hi, xh)),
	                         _mm256_set1_epi16(1));
}

// q8a_row1_add returns acc plus the epilogue of blocks b0 … b0+7 (have of
// them present; exact sums is in the vphaddd lane order).
AI __m256 q8a_row1_add(__m256 acc, __m256i is, const q8a_xorder *x, const uint8_t *rs, long b0, long have) {
	__m256i corr = _mm256_loadu_si256((const __m256i *)(x->corr + b0));
	__m256 f = _mm256_cvtepi32_ps(_mm256_sub_epi32(is, corr));
	__m256 sc = q8a_mul(_mm256_loadu_ps(x->d + b0), q8a_scales8(rs + b0, have, Q8A_SCALES_HADD_ORDER));
	return _mm256_add_ps(acc, q8a_mul(f, sc));
}

// q8a_row1 computes output o of a matrix-vector product. One row at a time
// reads the weights in address order: two rows interleaved (1440-byte
// rows in the 20b experts) streamed 12-29% slower, two threads on
// disjoint halves of a 612 MB matrix, alternated in one process, though
// they ran 5-10% faster in L2.
static void q8a_row1(float *dst, const q8a_xorder *x, const uint8_t *blocks, const uint8_t *scales, long nblocks,
                     const float *bias, long o) {
	const uint8_t *row = blocks + o * nblocks * 16, *rs = scales + o * nblocks;
	__m256 acc[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
	long full = nblocks / 16;
	for (long g = 0; g < full; g++) {
#pragma GCC unroll 2
		for (int h = 0; h < 2; h++) {
			long b0 = 16 * g + 8 * h;
			__m256i t[2]; // blocks 4k … 4k+3 after one vphaddd
#pragma GCC unroll 2
			for (int k = 0; k < 2; k++) {
				__m256i q[2];
#pragma GCC unroll 2
				for (int p = 0; p < 2; p++) {
					long bp = b0 + 4 * k + 2 * p;
					// The same pair 8 rows on: decode reads each weight once.
					_mm_prefetch((const char *)(row + (Q8A_PF_ROWS * nblocks + bp) * 16), _MM_HINT_T0);
					q[p] = q8a_pair(_mm256_loadu_si256((const __m256i *)(row + bp * 16)),
					                _mm256_loadu_si256((const __m256i *)(x->lo + 16 * bp)),
					                _mm256_loadu_si256((const __m256i *)(x->hi + 16 * bp)));
				}
				t[k] = _mm256_hadd_epi32(q[0], q[1]);
			}
			acc[h] = q8a_row1_add(acc[h], _mm256_hadd_epi32(t[0], t[1]), x, rs, b0, 8);
		}
	}
	long nb = nblocks - 16 * full; // the last group's blocks, fewer than 16
	for (int h = 0; 8 * h < nb; h++) {
		long b0 = 16 * full + 8 * h;
		__m256i q[4];
		for (int p = 0; p < 4; p++) {
			long bp = b0 + 2 * p, have = nb - (8 * h + 2 * p);
			if (have <= 0) {
				q[p] = _mm256_setzero_si256();
				continue;
			}
			const uint8_t *b = row + bp * 16;
			_mm_prefetch((const char *)(b + Q8A_PF_ROWS * nblocks * 16), _MM_HINT_T0);
			__m256i w = have >= 2 ? _mm256_loadu_si256((const __m256i *)b)
			                      : _mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)b));
			q[p] = q8a_pair(w, _mm256_loadu_si256((const __m256i *)(x->lo + 16 * bp)),
			                _mm256_loadu_si256((const __m256i *)(x->hi + 16 * bp)));
		}
		__m256i is = _mm256_hadd_epi32(_mm256_hadd_epi32(q[0], q[1]), _mm256_hadd_epi32(q[2], q[3]));
		acc[h] = q8a_row1_add(acc[h], is, x, rs, b0, nb - 8 * h);
	}
	const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7); // lane i ← block i
	float v = q8a_reduce(_mm256_permutevar8x32_ps(acc[0], order), _mm256_permutevar8x32_ps(acc[1], order));
	dst[o] = bias ? v + bias[o] : v;
}

void gptoss_matmul_mxfp4_q8_avx2(float *dst, const uint8_t *xq, long n, const uint8_t *blocks, const uint8_t *scales,
                                 long rows, long cols, const float *bias, long lo, long hi) {
	typedef void (*tile_fn)(__m256 *, const q8a_panel *, const uint8_t *, long, long, long, long);
	static const tile_fn tiles[2][2] = {{q8a_tile_1_1, q8a_tile_1_2}, {q8a_tile_2_1, q8a_tile_2_2}};
	long nblocks = cols / 32, groups = (nblocks + 15) / 16, qb = groups * GPTOSS_Q8_GROUP_BYTES;
	if (n == 1 && nblocks <= Q8A_XORDER_BLOCKS) { // wider rows take the batch path
		q8a_xorder x;
		q8a_xorder_fill(&x, xq, nblocks);
		for (long o = lo; o < hi; o++) q8a_row1(dst, &x, blocks, scales, nblocks, bias, o);
		return;
	}
	__m256 acc[Q8A_RB * Q8A_TB * 2];
	q8a_panel panel[Q8A_RB * Q8A_GB];
	for (long t0 = 0; t0 < n; t0 += Q8A_TB) {
		long t1 = t0 + Q8A_TB < n ? t0 + Q8A_TB : n;
		for (long r0 = lo; r0 < hi; r0 += Q8A_RB) {
			long r1 = r0 + Q8A_RB < hi ? r0 + Q8A_RB : hi;
			int R = (int)(r1 - r0);
			for (int r = 0; r < R; r++)
				for (long i = 0; i < 2 * (t1 - t0); i++) acc[r * Q8A_TB * 2 + i] = _mm256_setzero_ps();
			for (long g0 = 0; g0 < groups; g0 += Q8A_GB) {
				long g1 = g0 + Q8A_GB < groups ? g0 + Q8A_GB : groups;
				for (long r = r0; r < r1; r++)
					for (long g = g0; g < g1; g++) {
						long nb = nblocks - 16 * g < 16 ? nblocks - 16 * g : 16;
						q8a_pack(&panel[(r - r0) * Q8A_GB + (g - g0)], blocks, scales, nblocks, r, g, nb);
					}
				for (long t = t0; t < t1; t += 2) {
					int T = t1 - t < 2 ? 1 : 2;
					tiles[R - 1][T - 1](acc + (t - t0) * 2, panel, xq, qb, t, g0, g1);
				}
			}
			for (long o = r0; o < r1; o++)
				for (long t = t0; t < t1; t++) {
					const __m256 *a = &acc[((o - r0) * Q8A_TB + (t - t0)) * 2];
					float v = q8a_reduce(a[0], a[1]);
					dst[t * rows + o] = bias ? v + bias[o] : v;
				}
		}
	}
}
