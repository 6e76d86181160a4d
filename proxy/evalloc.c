/*
 * evalloc.c - libevent's allocations with a per-thread cache of chain
 * blocks (see evalloc.h).
 *
 * Every block carries its size in a header in front of it, since libevent's
 * free and realloc are not told the size. A kept block sits in the list of
 * its size class, linked through its first bytes.
 */
#include "evalloc.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <event2/event.h>

#include "threadexit.h"

#define CLASS_MIN_SHIFT 10 /* 1 KiB: libevent's smallest chain */
#define N_CLASSES 6        /* 1, 2, 4, 8, 16, 32 KiB */

/* The header, as large as malloc's alignment so the block keeps it. */
union hdr {
    size_t size;
    max_align_t align;
};

struct kept {
    struct kept *next;
};

struct cache {
    struct kept *head[N_CLASSES];
    size_t bytes;
    int registered; /* the exit destructor is set for this thread */
};

static _Thread_local struct cache tc;

/* At the thread's exit: its kept blocks go (and a free after this arms the
 * hook again). */
static void on_thread_exit(void)
{
    tc.registered = 0;
    gw_evalloc_flush();
}

static struct gw_thread_exit exit_hook = GW_THREAD_EXIT_INIT(on_thread_exit);

/* The class of a block of size bytes, -1 when it is not kept. */
static int class_of(size_t size)
{
    int k;

    if (size < ((size_t)1 << CLASS_MIN_SHIFT) || (size & (size - 1)) != 0)
        return -1;
    k = __builtin_ctzl(size) - CLASS_MIN_SHIFT;
    return k < N_CLASSES ? k : -1;
}

static union hdr *hdr_of(void *p)
{
    return (union hdr *)p - 1;
}

void *gw_evalloc_malloc(size_t size)
{
    int k = class_of(size);
    union hdr *h;

    if (k >= 0 && tc.head[k]) {
        struct kept *b = tc.head[k];

        tc.head[k] = b->next;
        tc.bytes -= size;
        return b;
    }
    if (size > SIZE_MAX - sizeof(union hdr))
        return NULL;
    h = malloc(sizeof(union hdr) + size);
    if (!h)
        return NULL;
    h->size = size;
    return h + 1;
}

void gw_evalloc_free(void *p)
{
    union hdr *h;
    int k;

    if (!p)
        return;
    h = hdr_of(p);
    k = class_of(h->size);
    if (k >= 0 && tc.bytes + h->size <= GW_EVALLOC_KEEP) {
        if (!tc.registered)
            tc.registered = gw_thread_exit_arm(&exit_hook) == 0;
        if (tc.registered) {
            struct kept *b = p;

            b->next = tc.head[k];
            tc.head[k] = b;
            tc.bytes += h->size;
            return;
        }
    }
    free(h);
}

void *gw_evalloc_realloc(void *p, size_t size)
{
    union hdr *h;

    if (!p)
        return gw_evalloc_malloc(size);
    if (size == 0) {
        gw_evalloc_free(p);
        return NULL;
    }
    if (size > SIZE_MAX - sizeof(union hdr))
        return NULL;
    h = realloc(hdr_of(p), sizeof(union hdr) + size);
    if (!h)
        return NULL;
    h->size = size;
    return h + 1;
}

void gw_evalloc_flush(void)
{
    int k;

    for (k = 0; k < N_CLASSES; k++) {
        while (tc.head[k]) {
            struct kept *b = tc.head[k];

            tc.head[k] = b->next;
            free(hdr_of(b));
        }
    }
    tc.bytes = 0;
}

size_t gw_evalloc_kept(void)
{
    return tc.bytes;
}

void gw_evalloc_install(void)
{
#if GW_EVALLOC_UNDER_ASAN
    /* keep every free a free, so ASan sees a chain used after it */
#else
    event_set_mem_functions(gw_evalloc_malloc, gw_evalloc_realloc, gw_evalloc_free);
#endif
}
