/*
 * sslalloc.c - OpenSSL's allocations with a per-thread cache of small
 * blocks (see sslalloc.h).
 *
 * Classes: class k holds blocks whose usable size is at least 16 * k - 8.
 * A request of n bytes asks malloc for u(n) = round_up(n + 8, 16) - 8
 * bytes, what glibc gives for n anyway (its chunks are multiples of 16
 * with 8 bytes of header in use), and is of class (u(n) + 8) / 16. A freed
 * block of usable size s goes to class (s + 8) / 16, rounded down: with
 * glibc mostly the class it was made for (a free chunk not worth splitting
 * is handed out whole, a higher class), with any allocator a class whose
 * every request fits in it. So a block handed out is never smaller than
 * what was asked. Blocks under 24 bytes are not kept (no request asks for
 * less, and a link needs 8).
 */
#include "sslalloc.h"

#include <malloc.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include <openssl/crypto.h>

#include "evalloc.h" /* GW_EVALLOC_UNDER_ASAN */
#include "threadexit.h"

/* u(GW_SSLALLOC_MAX): the largest block asked for */
#define MAX_U ((((size_t)GW_SSLALLOC_MAX + 8 + 15) & ~(size_t)15) - 8)
#define N_CLASSES ((MAX_U + 8) / 16 + 1)

struct kept {
    struct kept *next;
};

struct cache {
    struct kept *head[N_CLASSES];
    unsigned count[N_CLASSES];
    size_t bytes; /* 16 * k - 8 for a block of class k (the least it has) */
    int registered; /* the exit destructor is set for this thread */
};

static _Thread_local struct cache tc;
static atomic_int exiting; /* the process exits: every free is a free */

/* At the thread's exit: its kept blocks go (and a free after this arms the
 * hook again). */
static void on_thread_exit(void)
{
    tc.registered = 0;
    gw_sslalloc_flush();
}

static struct gw_thread_exit exit_hook = GW_THREAD_EXIT_INIT(on_thread_exit);

/* What malloc is asked for a request of n bytes (n <= GW_SSLALLOC_MAX). */
static size_t request_size(size_t n)
{
    size_t u = ((n + 8 + 15) & ~(size_t)15) - 8;

    return u < 24 ? 24 : u;
}

void *gw_sslalloc_malloc(size_t size, const char *file, int line)
{
    size_t u;
    int k;

    (void)file;
    (void)line;
    if (size == 0 || size > GW_SSLALLOC_MAX)
        return malloc(size);
    u = request_size(size);
    k = (int)((u + 8) / 16);
    if (tc.head[k]) {
        struct kept *b = tc.head[k];

        tc.head[k] = b->next;
        tc.count[k]--;
        tc.bytes -= (size_t)k * 16 - 8;
        return b;
    }
    return malloc(u);
}

void gw_sslalloc_free(void *p, const char *file, int line)
{
    size_t s;
    int k;

    (void)file;
    (void)line;
    if (!p)
        return;
    s = malloc_usable_size(p);
    k = (int)((s + 8) / 16);
    /* below 24 bytes (a realloc's, with an allocator that gives what is
     * asked): no request's class, and no room for the link */
    if (s >= 24 && s <= MAX_U && tc.count[k] < GW_SSLALLOC_PER_CLASS &&
        tc.bytes + (size_t)k * 16 - 8 <= GW_SSLALLOC_KEEP &&
        !atomic_load_explicit(&exiting, memory_order_relaxed)) {
        if (!tc.registered)
            tc.registered = gw_thread_exit_arm(&exit_hook) == 0;
        if (tc.registered) {
            struct kept *b = p;

            b->next = tc.head[k];
            tc.head[k] = b;
            tc.count[k]++;
            tc.bytes += (size_t)k * 16 - 8;
            return;
        }
    }
    free(p);
}

void *gw_sslalloc_realloc(void *p, size_t size, const char *file, int line)
{
    if (!p)
        return gw_sslalloc_malloc(size, file, line);
    if (size == 0) {
        gw_sslalloc_free(p, file, line);
        return NULL;
    }
    return realloc(p, size);
}

void gw_sslalloc_flush(void)
{
    size_t k;

    for (k = 0; k < N_CLASSES; k++) {
        while (tc.head[k]) {
            struct kept *b = tc.head[k];

            tc.head[k] = b->next;
            free(b);
        }
        tc.count[k] = 0;
    }
    tc.bytes = 0;
}

size_t gw_sslalloc_kept(void)
{
    return tc.bytes;
}

#if !GW_EVALLOC_UNDER_ASAN
/* Runs after OpenSSL's own exit handler (registered later, at its first
 * use, so run earlier), which frees its global state through free_fn. */
static void on_exit_flush(void)
{
    atomic_store_explicit(&exiting, 1, memory_order_relaxed);
    gw_sslalloc_flush();
}
#endif

int gw_sslalloc_install(void)
{
#if GW_EVALLOC_UNDER_ASAN
    return 0; /* keep every free a free, so ASan sees a block used after it */
#else
    if (!CRYPTO_set_mem_functions(gw_sslalloc_malloc, gw_sslalloc_realloc, gw_sslalloc_free))
        return -1;
    (void)atexit(on_exit_flush); /* without it, only the main thread's blocks stay */
    return 0;
#endif
}
