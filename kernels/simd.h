// Prototypes of the C SIMD kernels. Each kernel exists once per ISA level
// (suffix _avx512, _avx2); the Go side picks one at run time. All sizes are
// element counts; matrices are row-major.
#include <stdint.h>

#define GPTOSS_KERNELS(S)                                                                         \
	void gptoss_matmul_bf16_##S(float *dst, const float *x, long n, const uint16_t *w, long out,  \
	                            long in, const float *bias, long lo, long hi);                    \
	void gptoss_matmul_mxfp4_##S(float *dst, const float *xs, long n, const uint8_t *blocks,      \
	                             const uint8_t *scales, long rows, long cols, const float *bias,  \
	                             long lo, long hi, const float *lut, const float *scaletab);      \
	void gptoss_attention_##S(float *out, const float *q, long h0, long h1, long group, long hd,  \
	                          const float *k0, const float *v0, long n0, const float *k1,         \
	                          const float *v1, long n1, const float *k2, const float *v2, long n2,\
	                          long kvstride, const float *sinks, float scale, float *scores);     \
	void gptoss_swiglu_##S(float *act, const float *gateup, long n, float alpha, float limit);   \
	uint64_t gptoss_read_stream_##S(const uint8_t *p, long bytes);

GPTOSS_KERNELS(avx512)
GPTOSS_KERNELS(avx2)

// The int8-activation MXFP4 product (q8.go): AVX-512 VNNI and VBMI, and AVX2.
// A quantised row is groups of 16 blocks, each this long (q8GroupBytes).
#define GPTOSS_Q8_GROUP_BYTES (8 * 64 + 16 * 4 + 16 * 4)

// gptoss_q8_store_block writes block b of a quantised row (the C versions
// of QuantizeQ8): its eight dwords of int8 values (dword v: vector v's
// four columns), its scale d and its correction 12·Σq.
static inline void gptoss_q8_store_block(uint8_t *dst, long b, const uint32_t dw[8], float d, int32_t sum) {
	uint8_t *grp = dst + (b / 16) * GPTOSS_Q8_GROUP_BYTES;
	long j = b % 16;
	for (int v = 0; v < 8; v++) __builtin_memcpy(grp + v * 64 + j * 4, &dw[v], 4);
	__builtin_memcpy(grp + 512 + 4 * j, &d, 4);
	int32_t corr = 12 * sum;
	__builtin_memcpy(grp + 576 + 4 * j, &corr, 4);
}
void gptoss_matmul_mxfp4_q8_vnni(float *dst, const uint8_t *xq, long n, const uint8_t *blocks, const uint8_t *scales,
                                 long rows, long cols, const float *bias, long lo, long hi);
void gptoss_matmul_mxfp4_q8_avx2(float *dst, const uint8_t *xq, long n, const uint8_t *blocks, const uint8_t *scales,
                                 long rows, long cols, const float *bias, long lo, long hi);
void gptoss_quantize_q8_avx512(uint8_t *dst, const float *x, long cols);
void gptoss_quantize_q8_avx2(uint8_t *dst, const float *x, long cols);
