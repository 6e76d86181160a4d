/*
 * threadexit.h - a function run when a thread exits, for the per-thread
 * caches (evalloc.c, sslalloc.c): each thread that keeps blocks arms the
 * hook once, and its exit frees them.
 *
 * One hook per cache, a static of its module:
 *     static struct gw_thread_exit hook = GW_THREAD_EXIT_INIT(flush_fn);
 * fn runs on the exiting thread, after its code has returned (a pthread
 * key's destructor); it may allocate and free, and arm the hook again (the
 * destructors then run once more, as POSIX allows a few rounds).
 */
#ifndef MTLS_PROXY_THREADEXIT_H
#define MTLS_PROXY_THREADEXIT_H

#include <pthread.h>

struct gw_thread_exit {
    void (*fn)(void);
    int state;                    /* atomic: 0 no key yet, 1 made, -1 failed */
    pthread_key_t key;
};

#define GW_THREAD_EXIT_INIT(fn) {(fn), 0, 0}

/* Makes hook->fn run when the calling thread exits: 0, or -1 when no key
 * could be made (the thread's blocks must then not be kept). */
int gw_thread_exit_arm(struct gw_thread_exit *hook);

#endif
