// A persistent pthread pool that runs one job (a list of matrix products,
// or a list of attention items) across its threads in one cgo call. The
// calling thread is part 0; worker i is part i. Workers spin on an atomic
// generation counter between jobs and sleep on a condition variable after
// a few milliseconds without work.
#include <stdint.h>

// Q8: x is n quantised rows, for the AVX-512 VNNI or the AVX2 int8 kernel.
enum { GPTOSS_BF16 = 1, GPTOSS_MXFP4 = 2, GPTOSS_MXFP4_Q8 = 3, GPTOSS_MXFP4_Q8_AVX2 = 4 };

// One matrix product, cut into chunks of whole rows (multiples of align).
// Pointers are addresses (uintptr_t) so that Go can hand over a Go array
// of items that contains no Go pointers.
typedef struct {
	long kind, n, rows, cols, align;
	uintptr_t dst, x, w, scales, bias;
} gptoss_item;

// One attention item: query heads [h0, h1) of one row over up to three
// runs of keys and values.
typedef struct {
	uintptr_t out, q;
	long h0, h1;
	uintptr_t k[3], v[3];
	long nk[3];
} gptoss_attn_item;

typedef struct {
	long isa; // 2 avx512, 1 avx2
	uintptr_t items; long nitems; // gptoss_item
	uintptr_t attn; long nattn;   // gptoss_attn_item
	long group, hd, stride;
	uintptr_t sinks, scores; // scores: one float* per part
	float scale;
	long time_wait; // measure the caller's wait
	uintptr_t lut, scaletab; // the MXFP4 kernels' E2M1 and E8M0 tables
	long chunk_bytes;        // weights per chunk; 0: the default (1 MiB)
} gptoss_job;

typedef struct gptoss_pool gptoss_pool;

gptoss_pool *gptoss_pool_new(long threads);
void gptoss_pool_free(gptoss_pool *p);
// gptoss_pool_run runs job on all parts and returns the nanoseconds part 0
// waited for the others (0 unless job->time_wait).
long gptoss_pool_run(gptoss_pool *p, const gptoss_job *job);
