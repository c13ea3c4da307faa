// Kernels written as plain C loops that GCC vectorises for whichever
// target the including file selects (-fopenmp-simd enables the pragmas;
// no OpenMP runtime is used). Included once per ISA with SUFFIX defined.
#include <stdint.h>
#include <string.h>

#define CAT_(a, b) a##_##b
#define CAT(a, b) CAT_(a, b)

// exp_poly is expf to about 2 ulp (Cephes polynomial with Cody-Waite range
// reduction), written so that loops calling it vectorise: the libm expf
// does not, and the softmax and SwiGLU call it once per element.
static inline float CAT(exp_poly, SUFFIX)(float x) {
	x = x < -87.0f ? -87.0f : x;
	x = x > 88.0f ? 88.0f : x;
	// Round x·log2(e) to nearest by the 1.5·2^23 trick (no libm call).
	float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
	float r = x - n * 0.693359375f;
	r = r - n * -2.12194440e-4f;
	float p = 1.9875691500e-4f;
	p = p * r + 1.3981999507e-3f;
	p = p * r + 8.3334519073e-3f;
	p = p * r + 4.1665795894e-2f;
	p = p * r + 1.6666665459e-1f;
	p = p * r + 5.0000001201e-1f;
	p = p * r * r + r + 1.0f;
	int32_t bits = ((int32_t)n + 127) << 23;
	float s;
	memcpy(&s, &bits, 4);
	return p * s;
}

void CAT(gptoss_swiglu, SUFFIX)(float *act, const float *gateup, long n, float alpha, float limit) {
#pragma omp simd
	for (long i = 0; i < n; i++) {
		float g = gateup[2 * i], u = gateup[2 * i + 1];
		g = g < limit ? g : limit;
		u = u < limit ? u : limit;
		u = u > -limit ? u : -limit;
		act[i] = g / (1.0f + CAT(exp_poly, SUFFIX)(-alpha * g)) * (u + 1.0f);
	}
}

// attention: for query heads h0 … h1-1 of one row, softmax-with-sink
// attention over keys given as up to three spans of rows (a ring buffer
// that wrapped, then the batch's own rows), each row kvstride floats with
// kv-head j at offset j·hd. scores holds n0+n1+n2 floats. (The AVX-512
// file has a faster version for 64-wide heads.)
static void CAT(attention_portable, SUFFIX)(float *out, const float *q, long h0, long h1, long group, long hd,
                                   const float *k0, const float *v0, long n0, const float *k1,
                                   const float *v1, long n1, const float *k2, const float *v2, long n2,
                                   long kvstride, const float *sinks, float scale, float *scores) {
	const float *ks[3] = {k0, k1, k2}, *vs[3] = {v0, v1, v2};
	long ns[3] = {n0, n1, n2};
	for (long h = h0; h < h1; h++) {
		const float *qh = q + h * hd;
		long off = (h / group) * hd;
		float m = sinks[h];
		long u = 0;
		for (int s = 0; s < 3; s++) {
			for (long i = 0; i < ns[s]; i++) {
				const float *k = ks[s] + i * kvstride + off;
				float d = 0;
#pragma omp simd reduction(+ : d)
				for (long j = 0; j < hd; j++) d += qh[j] * k[j];
				d *= scale;
				scores[u++] = d;
				m = d > m ? d : m;
			}
		}
		float denom = CAT(exp_poly, SUFFIX)(sinks[h] - m);
#pragma omp simd reduction(+ : denom)
		for (long i = 0; i < u; i++) {
			float e = CAT(exp_poly, SUFFIX)(scores[i] - m);
			scores[i] = e;
			denom += e;
		}
		float inv = 1.0f / denom;
		float *oh = out + h * hd;
		for (long j = 0; j < hd; j++) oh[j] = 0;
		u = 0;
		for (int s = 0; s < 3; s++) {
			for (long i = 0; i < ns[s]; i++) {
				const float *v = vs[s] + i * kvstride + off;
				float w = scores[u++] * inv;
#pragma omp simd
				for (long j = 0; j < hd; j++) oh[j] += w * v[j];
			}
		}
	}
}
