/*
 * tls_certpool.c - a small least-recently-used set of parsed client
 * certificates, found by the SHA-256 of their DER. See tls_certpool.h.
 *
 * A linear scan: the pool is looked up once per full handshake, whose
 * server side costs about a millisecond of CPU; comparing a few dozen
 * 32-byte digests is a fraction of a microsecond.
 */
#include "tls_certpool.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>

struct pooled {
    X509 *x;                   /* one reference; NULL: free slot */
    unsigned char fp[32];      /* SHA-256 of its DER */
    uint64_t used;             /* tick of the last lookup that found it */
};

struct tls_certpool {
    EVP_MD *sha256;
    uint64_t tick;
    unsigned long long hits;
    size_t n, cap;
    struct pooled slots[];
};

struct tls_certpool *tls_certpool_new(size_t capacity)
{
    struct tls_certpool *p;

    if (capacity == 0 || capacity > (SIZE_MAX - sizeof(*p)) / sizeof(p->slots[0]))
        return NULL;
    p = calloc(1, sizeof(*p) + capacity * sizeof(p->slots[0]));
    if (p == NULL)
        return NULL;
    p->cap = capacity;
    p->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    if (p->sha256 == NULL) {
        ERR_clear_error();
        free(p);
        return NULL;
    }
    return p;
}

void tls_certpool_free(struct tls_certpool *p)
{
    size_t i;

    if (p == NULL)
        return;
    for (i = 0; i < p->n; i++)
        X509_free(p->slots[i].x);
    EVP_MD_free(p->sha256);
    free(p);
}

X509 *tls_certpool_get1(struct tls_certpool *p, X509 *x)
{
    unsigned char fp[32];
    unsigned int len = 0;
    struct pooled *e;
    size_t i, victim = 0;

    if (p == NULL || x == NULL)
        return NULL;
    if (X509_digest(x, p->sha256, fp, &len) != 1 || len != sizeof(fp)) {
        ERR_clear_error();
        return NULL;
    }
    p->tick++;
    for (i = 0; i < p->n; i++) {
        e = &p->slots[i];
        if (memcmp(e->fp, fp, sizeof(fp)) == 0) {
            if (!X509_up_ref(e->x))
                return NULL;
            e->used = p->tick;
            p->hits++;
            return e->x;
        }
        if (e->used < p->slots[victim].used)
            victim = i;
    }
    /* Two references: the pool's and the caller's. */
    if (!X509_up_ref(x))
        return NULL;
    if (!X509_up_ref(x)) {
        X509_free(x);
        return NULL;
    }
    if (p->n < p->cap) {
        e = &p->slots[p->n++];
    } else {
        e = &p->slots[victim];
        X509_free(e->x);
    }
    e->x = x;
    memcpy(e->fp, fp, sizeof(fp));
    e->used = p->tick;
    return x;
}

size_t tls_certpool_count(const struct tls_certpool *p)
{
    return p != NULL ? p->n : 0;
}

unsigned long long tls_certpool_hits(const struct tls_certpool *p)
{
    return p != NULL ? p->hits : 0;
}
