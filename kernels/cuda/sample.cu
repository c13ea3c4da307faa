// Sampling on the device: greedy argmax and top-p (nucleus) sampling of
// one row of logits, so only a token id crosses to the host.

#include "common.cuh"
#include <math.h>

#define SAMPLE_THREADS 1024

__device__ float block_max(float v, float *sh) {
	v = warp_max(v);
	if (threadIdx.x % WARP == 0) sh[threadIdx.x / WARP] = v;
	__syncthreads();
	if (threadIdx.x < WARP) {
		v = threadIdx.x < blockDim.x / WARP ? sh[threadIdx.x] : -INFINITY;
		v = warp_max(v);
		if (threadIdx.x == 0) sh[0] = v;
	}
	__syncthreads();
	v = sh[0];
	__syncthreads();
	return v;
}

__device__ float block_sum(float v, float *sh) {
	v = warp_sum(v);
	if (threadIdx.x % WARP == 0) sh[threadIdx.x / WARP] = v;
	__syncthreads();
	if (threadIdx.x < WARP) {
		v = threadIdx.x < blockDim.x / WARP ? sh[threadIdx.x] : 0.f;
		v = warp_sum(v);
		if (threadIdx.x == 0) sh[0] = v;
	}
	__syncthreads();
	v = sh[0];
	__syncthreads();
	return v;
}

// out[r] = argmax of row r, lowest index on ties. grid (n), block 1024.
KERNEL void argmax_rows(int *out, const float *logits, int vocab) {
	__shared__ float bv[SAMPLE_THREADS];
	__shared__ int bi[SAMPLE_THREADS];
	const float *l = logits + (int64_t)blockIdx.x * vocab;
	float best = -INFINITY;
	int idx = 0x7fffffff;
	for (int i = threadIdx.x; i < vocab; i += blockDim.x)
		if (l[i] > best) best = l[i], idx = i;
	bv[threadIdx.x] = best;
	bi[threadIdx.x] = idx;
	__syncthreads();
	for (int s = blockDim.x / 2; s > 0; s >>= 1) {
		if (threadIdx.x < s) {
			float ov = bv[threadIdx.x + s];
			int oi = bi[threadIdx.x + s];
			if (ov > bv[threadIdx.x] || (ov == bv[threadIdx.x] && oi < bi[threadIdx.x])) bv[threadIdx.x] = ov, bi[threadIdx.x] = oi;
		}
		__syncthreads();
	}
	if (threadIdx.x == 0) out[blockIdx.x] = bi[0] == 0x7fffffff ? 0 : bi[0];
}

// Top-p sampling of one row: probabilities softmax(logits/temperature);
// the nucleus is every token whose probability is at least t, with t the
// largest threshold (found by bisection) whose tokens hold ≥ top_p of the
// mass; the token is the one where the running nucleus mass, in index
// order, passes u·(nucleus mass). u in [0, 1) comes from the host's RNG,
// so a seed reproduces a sample. grid (1), block 1024.
KERNEL void sample_top_p(int *out, const float *logits, int vocab, float temperature, float top_p, float u) {
	__shared__ float sh[WARP];
	__shared__ float chunk[SAMPLE_THREADS];
	float inv_t = 1.f / fmaxf(temperature, 1e-6f);
	float m = -INFINITY;
	for (int i = threadIdx.x; i < vocab; i += blockDim.x) m = fmaxf(m, logits[i] * inv_t);
	m = block_max(m, sh);
	float z = 0.f;
	for (int i = threadIdx.x; i < vocab; i += blockDim.x) z += expf(logits[i] * inv_t - m);
	z = block_sum(z, sh);
	float lo = 0.f, hi = 1.f; // threshold on p/pmax; p = exp(l/T - m)/z
	for (int it = 0; it < 32; it++) {
		float mid = 0.5f * (lo + hi), mass = 0.f;
		for (int i = threadIdx.x; i < vocab; i += blockDim.x) {
			float e = expf(logits[i] * inv_t - m);
			if (e >= mid) mass += e;
		}
		mass = block_sum(mass, sh) / z;
		if (mass >= top_p) lo = mid; else hi = mid;
	}
	// Contiguous chunks per thread keep index order for the prefix sum.
	int per = (vocab + blockDim.x - 1) / blockDim.x;
	int b = threadIdx.x * per, e = min(b + per, vocab);
	float mine = 0.f;
	for (int i = b; i < e; i++) {
		float p = expf(logits[i] * inv_t - m);
		if (p >= lo) mine += p;
	}
	chunk[threadIdx.x] = mine;
	__syncthreads();
	if (threadIdx.x == 0) {
		float total = 0.f;
		for (int t = 0; t < blockDim.x; t++) total += chunk[t];
		float target = u * total, run = 0.f;
		int pick = -1, last = 0;
		for (int t = 0; t < blockDim.x && pick < 0; t++) {
			if (run + chunk[t] <= target && t + 1 < blockDim.x) { run += chunk[t]; continue; }
			int cb = t * per, ce = min(cb + per, vocab);
			for (int i = cb; i < ce; i++) {
				float p = expf(logits[i] * inv_t - m);
				if (p < lo) continue;
				last = i;
				run += p;
				if (run > target) { pick = i; break; }
			}
			if (pick < 0 && chunk[t] > 0.f) continue;
		}
		out[0] = pick >= 0 ? pick : last;
	}
}
