// Embedding gather, RMSNorm, residual add, row copies, YaRN RoPE.
#include "common.cuh"

// dst[i] = table[tokens[i]] widened from BF16. grid (n), block 256.
KERNEL void embed_bf16(float *dst, const uint16_t *table, const int *tokens, int h) {
	int i = blockIdx.x;
	const uint16_t *row = table + (int64_t)tokens[i] * h;
	for (int c = threadIdx.x; c < h; c += blockDim.x) dst[(int64_t)i * h + c] = bf16(row[c]);
}

// dst = x / sqrt(mean(x²) + eps) · gain per row; the sum of squares in
// double, as the CPU backend takes it. grid (n), block 256.
KERNEL void rmsnorm(float *dst, const float *x, const float *gain, int cols, float eps) {
	__shared__ double part[32];
	const float *xr = x + (int64_t)blockIdx.x * cols;
	float *dr = dst + (int64_t)blockIdx.x * cols;
	double ss = 0;
	for (int c = threadIdx.x; c < cols; c += blockDim.x) ss += (double)xr[c] * (double)xr[c];
	ss = warp_sum_d(ss);
	int warp = threadIdx.x / WARP, lane = threadIdx.x % WARP, warps = blockDim.x / WARP;
	if (lane == 0) part[warp] = ss;
	__syncthreads();
	if (warp == 0) {
		ss = lane < warps ? part[lane] : 0;
		ss = warp_sum_d(ss);
		if (lane == 0) part[0] = ss;
	}
	__syncthreads();
	float inv = (float)(1.0 / sqrt(part[0] / cols + (double)eps));
	for (int c = threadIdx.x; c < cols; c += blockDim.x) dr[c] = xr[c] * inv * gain[c];
}

// dst += x over count floats. grid ceil(count/256), block 256.
KERNEL void add_f32(float *dst, const float *x, int count) {
	int i = blockIdx.x * blockDim.x + threadIdx.x;
	if (i < count) dst[i] += x[i];
}

// dst[i] = src[rows[i]]. grid (n), block 256.
KERNEL void copy_rows(float *dst, const float *src, const int *rows, int cols) {
	const float *s = src + (int64_t)rows[blockIdx.x] * cols;
	float *d = dst + (int64_t)blockIdx.x * cols;
	for (int c = threadIdx.x; c < cols; c += blockDim.x) d[c] = s[c];
}

// YaRN RoPE, NeoX half-split pairing (element i with i + hd/2), for the
// position of each row. cs holds per row hd/2 cosines then hd/2 sines, made
// on the host by attention.RoPE.CosSin (in double: in float32, pos·f near
// position 131072 would lose most of the angle), so both backends rotate
// by identical values. grid (n), block 128.
KERNEL void rope(float *x, const float *cs, int heads, int hd, int cols) {
	int half = hd / 2;
	float *row = x + (int64_t)blockIdx.x * cols;
	const float *cr = cs + (int64_t)blockIdx.x * hd;
	for (int t = threadIdx.x; t < heads * half; t += blockDim.x) {
		int h = t / half, i = t % half;
		float cf = cr[i], sf = cr[half + i];
		float *a = row + h * hd;
		float ai = a[i], bi = a[i + half];
		a[i] = ai * cf - bi * sf;
		a[i + half] = bi * cf + ai * sf;
	}
}
