/*
 * test_proxy_evalloc.c - the per-thread cache of libevent's chain blocks:
 * reuse, what is kept and what is not, the bound, realloc, the flush at a
 * thread's exit, and libevent's evbuffers on it.
 */
#include <malloc.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <event2/buffer.h>

#include "evalloc.h"

static void test_reuse(void **state)
{
    unsigned char *p, *q;

    (void)state;
    gw_evalloc_flush();
    p = gw_evalloc_malloc(4096);
    assert_non_null(p);
    memset(p, 0xab, 4096);
    gw_evalloc_free(p);
    assert_int_equal(gw_evalloc_kept(), 4096);
    q = gw_evalloc_malloc(4096);
    assert_ptr_equal(q, p);
    assert_int_equal(gw_evalloc_kept(), 0);
    memset(q, 0xcd, 4096);
    /* another class does not take it */
    gw_evalloc_free(q);
    p = gw_evalloc_malloc(2048);
    assert_ptr_not_equal(p, q);
    assert_int_equal(gw_evalloc_kept(), 4096);
    gw_evalloc_free(p);
    assert_int_equal(gw_evalloc_kept(), 4096 + 2048);
    gw_evalloc_flush();
    assert_int_equal(gw_evalloc_kept(), 0);
}

static void test_not_kept(void **state)
{
    static const size_t sizes[] = {1, 512, 1000, 1023, 3000, 4097, 65536, 1 << 20};
    size_t i;

    (void)state;
    gw_evalloc_flush();
    for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        unsigned char *p = gw_evalloc_malloc(sizes[i]);

        assert_non_null(p);
        memset(p, 1, sizes[i]);
        gw_evalloc_free(p);
        assert_int_equal(gw_evalloc_kept(), 0);
    }
    gw_evalloc_free(NULL);
    assert_null(gw_evalloc_malloc(SIZE_MAX - 4));
}

static void test_bound(void **state)
{
    enum { N = GW_EVALLOC_KEEP / 32768 + 4 };
    void *p[N];
    size_t i;

    (void)state;
    gw_evalloc_flush();
    for (i = 0; i < N; i++) {
        p[i] = gw_evalloc_malloc(32768);
        assert_non_null(p[i]);
    }
    for (i = 0; i < N; i++)
        gw_evalloc_free(p[i]);
    assert_int_equal(gw_evalloc_kept(), GW_EVALLOC_KEEP);
    gw_evalloc_flush();
    assert_int_equal(gw_evalloc_kept(), 0);
}

static void test_grow_shrink(void **state)
{
    unsigned char *p, *q;
    size_t i;

    (void)state;
    gw_evalloc_flush();
    p = gw_evalloc_realloc(NULL, 1024); /* as malloc */
    assert_non_null(p);
    for (i = 0; i < 1024; i++)
        p[i] = (unsigned char)i;
    q = gw_evalloc_realloc(p, 8192);
    assert_non_null(q);
    for (i = 0; i < 1024; i++)
        assert_int_equal(q[i], (unsigned char)i);
    memset(q + 1024, 7, 8192 - 1024);
    /* the new size is what the block is kept as */
    gw_evalloc_free(q);
    assert_int_equal(gw_evalloc_kept(), 8192);
    p = gw_evalloc_malloc(8192);
    assert_ptr_equal(p, q);
    q = gw_evalloc_realloc(p, 100); /* shrinks to a size that is not kept */
    assert_non_null(q);
    assert_int_equal(q[99], 99);
    assert_null(gw_evalloc_realloc(q, 0)); /* as free */
    assert_int_equal(gw_evalloc_kept(), 0);
}

static void *churn(void *arg)
{
    void *p[8];
    size_t i;

    (void)arg;
    for (i = 0; i < 8; i++)
        p[i] = gw_evalloc_malloc(16384);
    for (i = 0; i < 8; i++)
        gw_evalloc_free(p[i]);
    return (void *)gw_evalloc_kept();
}

/* A thread's kept blocks are freed when it exits (LeakSanitizer checks this
 * under ASan; elsewhere malloc's own count of bytes in use does). */
static void test_thread_exit(void **state)
{
    struct mallinfo2 before, after;
    pthread_t t;
    void *kept = NULL;

    (void)state;
    before = mallinfo2();
    assert_int_equal(pthread_create(&t, NULL, churn, NULL), 0);
    assert_int_equal(pthread_join(t, &kept), 0);
    assert_int_equal((size_t)kept, 8 * 16384);
    after = mallinfo2();
    if (!GW_EVALLOC_UNDER_ASAN)
        assert_true(after.uordblks < before.uordblks + 16384);
    assert_int_equal(gw_evalloc_kept(), 0); /* not this thread's */
}

static void *alloc_one(void *arg)
{
    (void)arg;
    return gw_evalloc_malloc(2048);
}

/* A block made in one thread and freed in another goes to the freeing
 * thread's list, and serves it next. */
static void test_other_thread(void **state)
{
    pthread_t t;
    void *p = NULL;

    (void)state;
    gw_evalloc_flush();
    assert_int_equal(pthread_create(&t, NULL, alloc_one, NULL), 0);
    assert_int_equal(pthread_join(t, &p), 0);
    assert_non_null(p);
    memset(p, 3, 2048);
    gw_evalloc_free(p);
    assert_int_equal(gw_evalloc_kept(), 2048);
    assert_ptr_equal(gw_evalloc_malloc(2048), p);
    gw_evalloc_free(p);
    gw_evalloc_flush();
}

/* libevent's evbuffers on it: a drained chain waits for the next one. */
static void test_evbuffer(void **state)
{
    struct evbuffer *b = evbuffer_new();
    char data[3000], out[3000];

    (void)state;
    assert_non_null(b);
    memset(data, 'x', sizeof(data));
    gw_evalloc_flush();
    assert_int_equal(evbuffer_add(b, data, sizeof(data)), 0);
    assert_int_equal(evbuffer_remove(b, out, sizeof(out)), (int)sizeof(out));
    assert_memory_equal(out, data, sizeof(data));
    if (!GW_EVALLOC_UNDER_ASAN)
        assert_true(gw_evalloc_kept() >= 4096);
    assert_int_equal(evbuffer_add(b, data, sizeof(data)), 0);
    if (!GW_EVALLOC_UNDER_ASAN)
        assert_int_equal(gw_evalloc_kept(), 0);
    evbuffer_free(b);
    gw_evalloc_flush();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reuse),
        cmocka_unit_test(test_not_kept),
        cmocka_unit_test(test_bound),
        cmocka_unit_test(test_grow_shrink),
        cmocka_unit_test(test_thread_exit),
        cmocka_unit_test(test_other_thread),
        cmocka_unit_test(test_evbuffer),
    };

    gw_evalloc_install(); /* before libevent allocates anything */
    return cmocka_run_group_tests(tests, NULL, NULL);
}
