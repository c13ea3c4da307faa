//go:build cgo && amd64

#define _GNU_SOURCE
#include <immintrin.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "pool.h"
#include "simd.h"

// How long a worker spins for the next job before it sleeps: longer than
// the gap between two ops of a forward pass (and between two decode
// steps), far shorter than the gap between two requests.
#define SPIN_NS 3000000L

struct gptoss_pool {
	long threads;
	pthread_t *tids;
	_Atomic uint64_t gen;     // bumped once per job
	_Atomic long pending;     // workers still running the current job
	_Atomic long next;        // the next chunk of the job's products
	_Atomic long next_attn;   // the next attention item
	_Atomic long sleepers;    // workers asleep or about to sleep
	_Atomic int quit;
	const gptoss_job *job;    // written before gen is bumped
	pthread_mutex_t mu;
	pthread_cond_t cv;
};

static long now_ns(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000L + ts.tv_nsec;
}

// Products are cut into chunks of whole rows, about CHUNK_BYTES of weights
// each, that the parts take in order from a shared counter: a part that
// streams faster (or started earlier) takes more, so no part waits for
// another's fixed share. Chunks are large enough for the hardware
// prefetchers to ramp up within one.
#ifndef CHUNK_BYTES
#define CHUNK_BYTES (1L << 20)
#endif

static long chunk_rows(const gptoss_job *j, const gptoss_item *it) {
	long row_bytes = it->kind == GPTOSS_BF16 ? 2 * it->cols : it->cols / 2 + it->cols / 32;
	long r = (j->chunk_bytes > 0 ? j->chunk_bytes : CHUNK_BYTES) / (row_bytes > 0 ? row_bytes : 1);
	r = (r + it->align - 1) / it->align * it->align;
	return r > 0 ? r : it->align;
}

static void run_rows(const gptoss_job *j, const gptoss_item *it, long lo, long hi) {
	if (it->kind == GPTOSS_BF16) {
		if (j->isa == 2)
			gptoss_matmul_bf16_avx512((float *)it->dst, (const float *)it->x, it->n, (const uint16_t *)it->w,
			                          it->rows, it->cols, (const float *)it->bias, lo, hi);
		else
			gptoss_matmul_bf16_avx2((float *)it->dst, (const float *)it->x, it->n, (const uint16_t *)it->w,
			                        it->rows, it->cols, (const float *)it->bias, lo, hi);
	} else if (it->kind == GPTOSS_MXFP4_Q8_AVX2) {
		gptoss_matmul_mxfp4_q8_avx2((float *)it->dst, (const uint8_t *)it->x, it->n, (const uint8_t *)it->w,
		                            (const uint8_t *)it->scales, it->rows, it->cols, (const float *)it->bias, lo, hi);
	} else if (it->kind == GPTOSS_MXFP4_Q8) {
		gptoss_matmul_mxfp4_q8_vnni((float *)it->dst, (const uint8_t *)it->x, it->n, (const uint8_t *)it->w,
		                            (const uint8_t *)it->scales, it->rows, it->cols, (const float *)it->bias, lo, hi);
	} else {
		if (j->isa == 2)
			gptoss_matmul_mxfp4_avx512((float *)it->dst, (const float *)it->x, it->n, (const uint8_t *)it->w,
			                           (const uint8_t *)it->scales, it->rows, it->cols, (const float *)it->bias,
			                           lo, hi, (const float *)j->lut, (const float *)j->scaletab);
		else
			gptoss_matmul_mxfp4_avx2((float *)it->dst, (const float *)it->x, it->n, (const uint8_t *)it->w,
			                         (const uint8_t *)it->scales, it->rows, it->cols, (const float *)it->bias,
			                         lo, hi, (const float *)j->lut, (const float *)j->scaletab);
	}
}

static void run_part(gptoss_pool *p, const gptoss_job *j, long part) {
	const gptoss_item *items = (const gptoss_item *)j->items;
	long item = 0, base = 0, per = j->nitems > 0 ? chunk_rows(j, &items[0]) : 0;
	long count = j->nitems > 0 ? (items[0].rows + per - 1) / per : 0;
	for (;;) {
		long k = atomic_fetch_add_explicit(&p->next, 1, memory_order_relaxed);
		while (item < j->nitems && k >= base + count) {
			base += count;
			if (++item < j->nitems) {
				per = chunk_rows(j, &items[item]);
				count = (items[item].rows + per - 1) / per;
			}
		}
		if (item >= j->nitems) break;
		const gptoss_item *it = &items[item];
		long lo = (k - base) * per, hi = lo + per < it->rows ? lo + per : it->rows;
		run_rows(j, it, lo, hi);
	}
	if (j->nattn > 0) {
		// Items are taken one at a time from a shared counter: a causal
		// prefill's rows see ever more keys, and a static split gave the
		// last part three times the first one's work.
		const gptoss_attn_item *a = (const gptoss_attn_item *)j->attn;
		float *scores = ((float *const *)j->scores)[part];
		for (;;) {
			long i = atomic_fetch_add_explicit(&p->next_attn, 1, memory_order_relaxed);
			if (i >= j->nattn) break;
			const gptoss_attn_item *t = &a[i];
			const float *k[3], *v[3];
			for (int r = 0; r < 3; r++) k[r] = (const float *)t->k[r], v[r] = (const float *)t->v[r];
			if (j->isa == 2)
				gptoss_attention_avx512((float *)t->out, (const float *)t->q, t->h0, t->h1, j->group, j->hd,
				                        k[0], v[0], t->nk[0], k[1], v[1], t->nk[1], k[2], v[2], t->nk[2],
				                        j->stride, (const float *)j->sinks, j->scale, scores);
			else
				gptoss_attention_avx2((float *)t->out, (const float *)t->q, t->h0, t->h1, j->group, j->hd,
				                      k[0], v[0], t->nk[0], k[1], v[1], t->nk[1], k[2], v[2], t->nk[2],
				                      j->stride, (const float *)j->sinks, j->scale, scores);
		}
	}
}

typedef struct {
	gptoss_pool *p;
	long part;
} worker_arg;

static void *worker(void *arg) {
	worker_arg wa = *(worker_arg *)arg;
	free(arg);
	gptoss_pool *p = wa.p;
	uint64_t seen = 0;
	for (;;) {
		uint64_t g = atomic_load_explicit(&p->gen, memory_order_acquire);
		if (g == seen) {
			long t0 = now_ns();
			for (long spins = 1; g == seen; spins++) {
				_mm_pause();
				g = atomic_load_explicit(&p->gen, memory_order_acquire);
				if ((spins & 1023) == 0) {
					if (atomic_load(&p->quit)) return NULL;
					if (now_ns() - t0 > SPIN_NS) break;
					sched_yield(); // let another thread have the core if it needs it
				}
			}
		}
		if (g == seen) {
			pthread_mutex_lock(&p->mu);
			atomic_fetch_add(&p->sleepers, 1);
			while ((g = atomic_load(&p->gen)) == seen && !atomic_load(&p->quit))
				pthread_cond_wait(&p->cv, &p->mu);
			atomic_fetch_sub(&p->sleepers, 1);
			pthread_mutex_unlock(&p->mu);
			if (g == seen) return NULL; // quit
		}
		seen = g;
		run_part(p, p->job, wa.part);
		atomic_fetch_sub_explicit(&p->pending, 1, memory_order_release);
	}
}

gptoss_pool *gptoss_pool_new(long threads) {
	gptoss_pool *p = calloc(1, sizeof *p);
	if (!p) return NULL;
	p->threads = threads < 1 ? 1 : threads;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	p->tids = calloc(p->threads, sizeof(pthread_t));
	for (long i = 1; i < p->threads; i++) {
		worker_arg *a = malloc(sizeof *a);
		if (a) a->p = p, a->part = i;
		if (a == NULL || pthread_create(&p->tids[i], NULL, worker, a) != 0) {
			free(a);
			p->threads = i; // run with the threads that started
			break;
		}
	}
	return p;
}

void gptoss_pool_free(gptoss_pool *p) {
	if (!p) return;
	pthread_mutex_lock(&p->mu);
	atomic_store(&p->quit, 1);
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	for (long i = 1; i < p->threads; i++) pthread_join(p->tids[i], NULL);
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mu);
	free(p->tids);
	free(p);
}

long gptoss_pool_run(gptoss_pool *p, const gptoss_job *job) {
	if (p->threads == 1) {
		atomic_store(&p->next, 0);
		atomic_store(&p->next_attn, 0);
		run_part(p, job, 0);
		return 0;
	}
	p->job = job;
	atomic_store_explicit(&p->pending, p->threads - 1, memory_order_relaxed);
	atomic_store_explicit(&p->next, 0, memory_order_relaxed);
	atomic_store_explicit(&p->next_attn, 0, memory_order_relaxed);
	atomic_fetch_add(&p->gen, 1); // seq_cst: pairs with the sleepers check below
	if (atomic_load(&p->sleepers) > 0) {
		pthread_mutex_lock(&p->mu);
		pthread_cond_broadcast(&p->cv);
		pthread_mutex_unlock(&p->mu);
	}
	run_part(p, job, 0);
	long t0 = job->time_wait ? now_ns() : 0;
	for (long spins = 1; atomic_load_explicit(&p->pending, memory_order_acquire) != 0; spins++) {
		_mm_pause();
		if ((spins & 1023) == 0) sched_yield(); // a worker may be waiting for a core
	}
	return job->time_wait ? now_ns() - t0 : 0;
}
