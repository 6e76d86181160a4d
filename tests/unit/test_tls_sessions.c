/*
 * test_tls_sessions.c - the in-memory session cache (tls/tls_sessions.h):
 * lookup and replacement by id, references, expiry, per-shard LRU under a
 * capacity, capacity changes, removal, and many threads at once.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/ssl.h>

#include "tls_sessions.h"

#define NOW ((time_t)1700000000)

/* A session with a 32-byte id derived from n, valid from NOW for timeout s. */
static SSL_SESSION *mk(unsigned n, long timeout)
{
    SSL_SESSION *s = SSL_SESSION_new();
    unsigned char id[32];
    unsigned i;

    assert_non_null(s);
    for (i = 0; i < sizeof(id); i++)
        id[i] = (unsigned char)((n * 2654435761u) >> (i % 4 * 8)) ^ (unsigned char)(i * 7);
    memcpy(id, &n, sizeof(n));
    assert_int_equal(SSL_SESSION_set1_id(s, id, sizeof(id)), 1);
    assert_true(SSL_SESSION_set_time(s, (long)NOW) != 0);
    assert_true(SSL_SESSION_set_timeout(s, timeout) != 0);
    return s;
}

static SSL_SESSION *get(struct tls_sessions *c, SSL_SESSION *like, time_t now)
{
    unsigned len = 0;
    const unsigned char *id = SSL_SESSION_get_id(like, &len);

    return tls_sessions_get(c, id, len, now);
}

static int has(struct tls_sessions *c, SSL_SESSION *like, time_t now)
{
    SSL_SESSION *s = get(c, like, now);

    SSL_SESSION_free(s);
    return s != NULL;
}

static struct tls_sessions *cache(size_t capacity)
{
    char err[128] = "";
    struct tls_sessions *c = tls_sessions_new(capacity, err, sizeof(err));

    assert_non_null(c);
    return c;
}

static void test_add_get_replace_remove(void **state)
{
    struct tls_sessions *c = cache(100);
    SSL_SESSION *a = mk(1, 300), *a2 = mk(1, 300), *b = mk(2, 300), *got;
    unsigned len;
    const unsigned char *id;

    (void)state;
    assert_int_equal(tls_sessions_add(c, a, NOW), 1);
    assert_int_equal(tls_sessions_add(c, b, NOW), 1);
    assert_int_equal(tls_sessions_count(c), 2);
    got = get(c, a, NOW + 10);
    assert_ptr_equal(got, a);   /* the same object: nothing parsed again */
    SSL_SESSION_free(got);      /* a new reference was handed out */
    /* Same id again: replaced, not duplicated. */
    assert_int_equal(tls_sessions_add(c, a2, NOW), 1);
    assert_int_equal(tls_sessions_count(c), 2);
    got = get(c, a, NOW);
    assert_ptr_equal(got, a2);
    SSL_SESSION_free(got);
    id = SSL_SESSION_get_id(b, &len);
    tls_sessions_remove(c, id, len);
    assert_false(has(c, b, NOW));
    assert_int_equal(tls_sessions_count(c), 1);
    tls_sessions_remove(c, id, len); /* twice: nothing happens */
    assert_null(tls_sessions_get(c, id, 0, NOW));
    /* The cache's references are its own: the caller's stay valid. */
    SSL_SESSION_free(a);
    SSL_SESSION_free(b);
    tls_sessions_unref(c);       /* frees a2's cached reference */
    SSL_SESSION_free(a2);
}

static void test_expiry(void **state)
{
    struct tls_sessions *c = cache(100);
    SSL_SESSION *s = mk(7, 60), *old = mk(8, 60);

    (void)state;
    assert_int_equal(tls_sessions_add(c, s, NOW + 59), 1);
    assert_true(has(c, s, NOW + 59));
    assert_false(has(c, s, NOW + 60)); /* expired: dropped */
    assert_int_equal(tls_sessions_count(c), 0);
    assert_false(has(c, s, NOW));      /* and gone, not just hidden */
    assert_int_equal(tls_sessions_add(c, old, NOW + 61), 0); /* expired already */
    assert_int_equal(tls_sessions_count(c), 0);
    SSL_SESSION_free(s);
    SSL_SESSION_free(old);
    tls_sessions_unref(c);
}

static void test_no_id(void **state)
{
    struct tls_sessions *c = cache(100);
    SSL_SESSION *s = SSL_SESSION_new();

    (void)state;
    assert_non_null(s);
    assert_true(SSL_SESSION_set_time(s, (long)NOW) != 0);
    assert_true(SSL_SESSION_set_timeout(s, 300) != 0);
    assert_int_equal(tls_sessions_add(c, s, NOW), 0);
    assert_int_equal(tls_sessions_count(c), 0);
    SSL_SESSION_free(s);
    tls_sessions_unref(c);
}

/* Capacity 2 per shard: 1000 sessions leave 2 per shard, and the one kept
 * hot by a lookup after every add is never the one evicted. */
static void test_lru_capacity(void **state)
{
    struct tls_sessions *c = cache(2 * TLS_SESSIONS_SHARDS);
    SSL_SESSION *hot = mk(100000, 300), *first = mk(100001, 300);
    unsigned i;

    (void)state;
    assert_int_equal(tls_sessions_add(c, hot, NOW), 1);
    assert_int_equal(tls_sessions_add(c, first, NOW), 1);
    for (i = 0; i < 1000; i++) {
        SSL_SESSION *s = mk(i, 300);

        assert_int_equal(tls_sessions_add(c, s, NOW), 1);
        SSL_SESSION_free(s);
        assert_true(has(c, hot, NOW));
    }
    assert_int_equal(tls_sessions_count(c), 2 * TLS_SESSIONS_SHARDS);
    assert_true(has(c, hot, NOW));
    assert_false(has(c, first, NOW)); /* never used again: evicted */

    /* Smaller: shards trim to 1; the hot one (most recent) stays. */
    tls_sessions_set_capacity(c, TLS_SESSIONS_SHARDS);
    assert_int_equal(tls_sessions_count(c), TLS_SESSIONS_SHARDS);
    assert_true(has(c, hot, NOW));
    /* Larger again (rehashed): room for more. */
    tls_sessions_set_capacity(c, 64 * TLS_SESSIONS_SHARDS);
    for (i = 2000; i < 2500; i++) {
        SSL_SESSION *s = mk(i, 300);

        assert_int_equal(tls_sessions_add(c, s, NOW), 1);
        SSL_SESSION_free(s);
    }
    assert_int_equal(tls_sessions_count(c), TLS_SESSIONS_SHARDS + 500);
    assert_true(has(c, hot, NOW));
    /* 0: everything goes, nothing is kept. */
    tls_sessions_set_capacity(c, 0);
    assert_int_equal(tls_sessions_count(c), 0);
    assert_int_equal(tls_sessions_add(c, hot, NOW), 0);
    assert_false(has(c, hot, NOW));
    SSL_SESSION_free(hot);
    SSL_SESSION_free(first);
    tls_sessions_unref(c);
}

static void test_refs(void **state)
{
    struct tls_sessions *c = cache(10);
    SSL_SESSION *s = mk(3, 300);

    (void)state;
    assert_int_equal(tls_sessions_add(c, s, NOW), 1);
    tls_sessions_ref(c);
    tls_sessions_unref(c);
    assert_true(has(c, s, NOW)); /* still alive after ref + unref */
    tls_sessions_unref(c);
    tls_sessions_unref(NULL);
    SSL_SESSION_free(s);
}

struct worker_arg {
    struct tls_sessions *c;
    unsigned base;
    unsigned hits;
};

static void *worker(void *p)
{
    struct worker_arg *a = p;
    unsigned i;

    for (i = 0; i < 3000; i++) {
        SSL_SESSION *s = mk(a->base + i % 500, 300);
        unsigned len;
        const unsigned char *id = SSL_SESSION_get_id(s, &len);

        if (tls_sessions_add(a->c, s, NOW) < 0)
            abort();
        if (has(a->c, s, NOW))
            a->hits++;
        if (i % 7 == 0)
            tls_sessions_remove(a->c, id, len);
        if (i % 1000 == 999)
            tls_sessions_set_capacity(a->c, (i / 1000 % 2) ? 200 : 1000);
        SSL_SESSION_free(s);
    }
    return NULL;
}

static void test_threads(void **state)
{
    struct tls_sessions *c = cache(1000);
    struct worker_arg args[4];
    pthread_t t[4];
    int i;

    (void)state;
    for (i = 0; i < 4; i++) {
        args[i] = (struct worker_arg){ .c = c, .base = (unsigned)i * 100000u };
        assert_int_equal(pthread_create(&t[i], NULL, worker, &args[i]), 0);
    }
    for (i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
        assert_true(args[i].hits > 0);
    }
    /* Each shard holds at most ceil(capacity / shards): 16 * 63 = 1008. */
    assert_true(tls_sessions_count(c) <=
                TLS_SESSIONS_SHARDS * ((1000 + TLS_SESSIONS_SHARDS - 1) / TLS_SESSIONS_SHARDS));
    tls_sessions_unref(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_get_replace_remove),
        cmocka_unit_test(test_expiry),
        cmocka_unit_test(test_no_id),
        cmocka_unit_test(test_lru_capacity),
        cmocka_unit_test(test_refs),
        cmocka_unit_test(test_threads),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
