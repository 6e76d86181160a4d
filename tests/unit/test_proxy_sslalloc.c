/*
 * test_proxy_sslalloc.c - OpenSSL's allocations with a per-thread cache of
 * small blocks (proxy/sslalloc.h), called directly (the ASan build runs
 * them too; there LeakSanitizer also checks that a thread's kept blocks
 * are freed when it exits).
 *
 * What it shows: a freed small block is handed out again for the next
 * request of its class, and no block handed out is ever smaller than what
 * was asked, for every size up to past the largest kept one; the bounds per
 * class and per thread hold; realloc keeps the contents; blocks freed by
 * another thread go to that thread's list and are freed when it exits.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <malloc.h>
#include <pthread.h>
#include <string.h>

#include "evalloc.h" /* GW_EVALLOC_UNDER_ASAN */
#include "sslalloc.h"

#define A(n) gw_sslalloc_malloc((n), __FILE__, __LINE__)
#define F(p) gw_sslalloc_free((p), __FILE__, __LINE__)
#define R(p, n) gw_sslalloc_realloc((p), (n), __FILE__, __LINE__)

static void test_reuse_within_a_class(void **state)
{
    void *p, *q;

    (void)state;
    assert_int_equal(gw_sslalloc_kept(), 0);
    p = A(40);
    assert_non_null(p);
    F(p);
    assert_true(gw_sslalloc_kept() >= 40);
    q = A(33); /* same 16-byte class as 40 */
    assert_ptr_equal(q, p);
    assert_int_equal(gw_sslalloc_kept(), 0);
    F(q);
    q = A(200); /* another class: a new block */
    assert_ptr_not_equal(q, p);
    F(q);
    gw_sslalloc_flush();
    assert_int_equal(gw_sslalloc_kept(), 0);
}

/* Every size, with blocks of every class kept: a block is never smaller
 * than the request it serves. */
static void test_never_smaller_than_asked(void **state)
{
    (void)state;
    for (size_t n = 1; n <= GW_SSLALLOC_MAX + 64; n++) {
        void *p = A(n);

        assert_non_null(p);
        assert_true(malloc_usable_size(p) >= n);
        memset(p, 0xab, n);
        F(p);
    }
    for (int round = 0; round < 2; round++) {
        for (size_t n = GW_SSLALLOC_MAX + 64; n >= 1; n--) {
            void *p = A(n);

            assert_non_null(p);
            assert_true(malloc_usable_size(p) >= n);
            memset(p, 0xcd, n);
            F(p);
        }
    }
    gw_sslalloc_flush();
}

static void test_bounds(void **state)
{
    static void *blocks[GW_SSLALLOC_PER_CLASS + 100];
    size_t n = sizeof(blocks) / sizeof(blocks[0]);
    void *big;

    (void)state;
    unsigned per_class[128] = {0};
    size_t expect = 0, all = 0;

    for (size_t i = 0; i < n; i++) {
        size_t k;

        assert_non_null(blocks[i] = A(24));
        /* glibc may hand out a chunk whole rather than split it: a block
         * of a higher class than asked for now and then */
        k = (malloc_usable_size(blocks[i]) + 8) / 16;
        assert_true(k >= 2 && k < 128);
        if (per_class[k]++ < GW_SSLALLOC_PER_CLASS)
            expect += k * 16 - 8;
        all += k * 16 - 8;
    }
    for (size_t i = 0; i < n; i++)
        F(blocks[i]);
    /* at most GW_SSLALLOC_PER_CLASS of one class */
    assert_int_equal(gw_sslalloc_kept(), expect);
    assert_true(expect < all); /* some were not kept */
    gw_sslalloc_flush();
    /* larger blocks are never kept */
    big = A(GW_SSLALLOC_MAX + 1024);
    assert_non_null(big);
    F(big);
    assert_int_equal(gw_sslalloc_kept(), 0);
    /* at most GW_SSLALLOC_KEEP bytes in all */
    for (size_t size = 512; size <= GW_SSLALLOC_MAX; size += 16) {
        for (size_t i = 0; i < 64; i++)
            assert_non_null(blocks[i] = A(size));
        for (size_t i = 0; i < 64; i++)
            F(blocks[i]);
    }
    assert_true(gw_sslalloc_kept() <= GW_SSLALLOC_KEEP);
    assert_true(gw_sslalloc_kept() > GW_SSLALLOC_KEEP - 2 * GW_SSLALLOC_MAX);
    gw_sslalloc_flush();
    assert_int_equal(gw_sslalloc_kept(), 0);
}

static void test_realloc_keeps_contents(void **state)
{
    char *p;
    size_t usable;

    (void)state;
    p = R(NULL, 10);
    assert_non_null(p);
    memcpy(p, "0123456789", 10);
    p = R(p, 5000);
    assert_non_null(p);
    assert_memory_equal(p, "0123456789", 10);
    p = R(p, 40);
    assert_non_null(p);
    assert_memory_equal(p, "0123456789", 10);
    assert_null(R(p, 0)); /* frees it, into the cache */
    assert_true(gw_sslalloc_kept() > 0);
    gw_sslalloc_flush();
    /* a realloc's small block, as small as the allocator makes it, is
     * never kept (under valgrind malloc_usable_size is the size asked) */
    p = R(R(NULL, 100), 3);
    assert_non_null(p);
    usable = malloc_usable_size(p);
    F(p);
    if (usable < 24)
        assert_int_equal(gw_sslalloc_kept(), 0);
    else
        assert_int_equal(gw_sslalloc_kept(), (usable + 8) / 16 * 16 - 8);
    F(NULL);
    gw_sslalloc_flush();
}

struct handoff {
    void *blocks[64];
    size_t kept;
};

static void *free_elsewhere(void *arg)
{
    struct handoff *h = arg;

    for (int i = 0; i < 64; i++)
        F(h->blocks[i]);
    h->kept = gw_sslalloc_kept();
    return NULL; /* the thread's exit frees its kept blocks */
}

static void test_blocks_freed_by_another_thread(void **state)
{
    struct handoff h;
    pthread_t t;
    struct mallinfo2 before, after;

    (void)state;
    for (int i = 0; i < 64; i++)
        assert_non_null(h.blocks[i] = A(1000));
    before = mallinfo2();
    assert_int_equal(pthread_create(&t, NULL, free_elsewhere, &h), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    after = mallinfo2();
    assert_true(h.kept >= 64 * 1000);
    assert_int_equal(gw_sslalloc_kept(), 0); /* this thread kept none of them */
#if !GW_EVALLOC_UNDER_ASAN
    /* the thread's exit freed them (under ASan, LeakSanitizer checks it) */
    assert_true(before.uordblks >= after.uordblks + 60000);
#else
    (void)before;
    (void)after;
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reuse_within_a_class),
        cmocka_unit_test(test_never_smaller_than_asked),
        cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_realloc_keeps_contents),
        cmocka_unit_test(test_blocks_freed_by_another_thread),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
