/*
 * tls_sessions.c - the in-memory session cache: shards of (mutex, chained
 * hash table, LRU list). See tls_sessions.h.
 */
#include "tls_sessions.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ssl.h>

struct entry {
    SSL_SESSION *sess;            /* one reference */
    time_t expires;               /* sessions at or past it are dropped */
    unsigned char id[SSL_MAX_SSL_SESSION_ID_LENGTH];
    unsigned idlen;
    struct entry *hnext;          /* bucket chain */
    struct entry *newer, *older;  /* LRU list */
};

struct shard {
    pthread_mutex_t lock;
    struct entry **buckets;
    size_t nbuckets;              /* a power of two */
    size_t n, cap;
    struct entry *newest, *oldest;
};

struct tls_sessions {
    atomic_int refs;
    int nlocks;                   /* shards whose mutex is initialised */
    struct shard shards[TLS_SESSIONS_SHARDS];
};

/* FNV-1a over the id: ids are random, but a client chooses TLS 1.2 ones. */
static uint64_t id_hash(const unsigned char *id, size_t len)
{
    uint64_t h = 1469598103934665603ULL;
    size_t i;

    for (i = 0; i < len; i++) {
        h ^= id[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static size_t shard_cap(size_t capacity)
{
    return (capacity + TLS_SESSIONS_SHARDS - 1) / TLS_SESSIONS_SHARDS;
}

/* Smallest power of two >= n (and >= 16), so chains stay short when full. */
static size_t buckets_for(size_t n)
{
    size_t b = 16;

    while (b < n && b < ((size_t)1 << 30))
        b <<= 1;
    return b;
}

static struct shard *shard_of(struct tls_sessions *c, uint64_t h)
{
    return &c->shards[(h >> 56) % TLS_SESSIONS_SHARDS];
}

/* ------------------------------------------------------- under the lock */

static void lru_unlink(struct shard *s, struct entry *e)
{
    if (e->newer)
        e->newer->older = e->older;
    else
        s->newest = e->older;
    if (e->older)
        e->older->newer = e->newer;
    else
        s->oldest = e->newer;
    e->newer = e->older = NULL;
}

static void lru_push_newest(struct shard *s, struct entry *e)
{
    e->older = s->newest;
    e->newer = NULL;
    if (s->newest)
        s->newest->newer = e;
    s->newest = e;
    if (!s->oldest)
        s->oldest = e;
}

/* The slot that points at the entry for id (or at the chain's NULL end). */
static struct entry **find_slot(struct shard *s, uint64_t h, const unsigned char *id, size_t len)
{
    struct entry **p = &s->buckets[h & (s->nbuckets - 1)];

    while (*p && ((*p)->idlen != len || memcmp((*p)->id, id, len) != 0))
        p = &(*p)->hnext;
    return p;
}

/* Unlinks the entry at *slot from both lists; returns it for freeing. */
static struct entry *take(struct shard *s, struct entry **slot)
{
    struct entry *e = *slot;

    *slot = e->hnext;
    lru_unlink(s, e);
    s->n--;
    return e;
}

/* Moves the oldest entries of s over its capacity onto *dead. */
static void trim(struct shard *s, struct entry **dead)
{
    while (s->n > s->cap && s->oldest) {
        struct entry *e = s->oldest;
        struct entry **slot = find_slot(s, id_hash(e->id, e->idlen), e->id, e->idlen);

        take(s, slot);
        e->hnext = *dead;
        *dead = e;
    }
}

/* Rehashes s into nb buckets; keeps the old table when out of memory. */
static void rehash(struct shard *s, size_t nb)
{
    struct entry **nbk = calloc(nb, sizeof(*nbk));
    size_t i;

    if (!nbk)
        return;
    for (i = 0; i < s->nbuckets; i++) {
        struct entry *e = s->buckets[i], *next;

        for (; e; e = next) {
            size_t b = id_hash(e->id, e->idlen) & (nb - 1);

            next = e->hnext;
            e->hnext = nbk[b];
            nbk[b] = e;
        }
    }
    free(s->buckets);
    s->buckets = nbk;
    s->nbuckets = nb;
}

/* ------------------------------------------------------ outside the lock */

/* Frees a list of entries chained by hnext (sessions are freed unlocked). */
static void free_entries(struct entry *e)
{
    struct entry *next;

    for (; e; e = next) {
        next = e->hnext;
        SSL_SESSION_free(e->sess);
        free(e);
    }
}

static void sessions_free(struct tls_sessions *c)
{
    int i;

    for (i = 0; i < TLS_SESSIONS_SHARDS; i++) {
        struct shard *s = &c->shards[i];
        struct entry *e = s->newest, *next;

        for (; e; e = next) {
            next = e->older;
            SSL_SESSION_free(e->sess);
            free(e);
        }
        free(s->buckets);
        if (i < c->nlocks)
            pthread_mutex_destroy(&s->lock);
    }
    free(c);
}

struct tls_sessions *tls_sessions_new(size_t capacity, char *err, size_t errlen)
{
    struct tls_sessions *c = calloc(1, sizeof(*c));
    size_t nb = buckets_for(shard_cap(capacity));
    int i;

    if (!c)
        goto oom;
    atomic_init(&c->refs, 1);
    for (i = 0; i < TLS_SESSIONS_SHARDS; i++) {
        struct shard *s = &c->shards[i];

        if (pthread_mutex_init(&s->lock, NULL) != 0)
            goto oom;
        c->nlocks++;
        s->cap = shard_cap(capacity);
        s->nbuckets = nb;
        if (!(s->buckets = calloc(nb, sizeof(*s->buckets))))
            goto oom;
    }
    return c;
oom:
    snprintf(err, errlen, "tls: session cache: out of memory");
    if (c)
        sessions_free(c);
    return NULL;
}

void tls_sessions_ref(struct tls_sessions *c)
{
    if (c)
        atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
}

void tls_sessions_unref(struct tls_sessions *c)
{
    if (c == NULL || atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) != 1)
        return;
    sessions_free(c);
}

void tls_sessions_set_capacity(struct tls_sessions *c, size_t capacity)
{
    size_t cap = shard_cap(capacity), nb = buckets_for(cap);
    int i;

    for (i = 0; i < TLS_SESSIONS_SHARDS; i++) {
        struct shard *s = &c->shards[i];
        struct entry *dead = NULL;

        pthread_mutex_lock(&s->lock);
        s->cap = cap;
        trim(s, &dead);
        if (nb > s->nbuckets)
            rehash(s, nb);
        pthread_mutex_unlock(&s->lock);
        free_entries(dead);
    }
}

int tls_sessions_add(struct tls_sessions *c, SSL_SESSION *sess, time_t now)
{
    unsigned int len = 0;
    const unsigned char *id = SSL_SESSION_get_id(sess, &len);
    time_t expires = (time_t)SSL_SESSION_get_time(sess) + (time_t)SSL_SESSION_get_timeout(sess);
    struct entry *e, **slot, *dead = NULL;
    struct shard *s;
    uint64_t h;

    if (len == 0 || len > SSL_MAX_SSL_SESSION_ID_LENGTH || expires <= now)
        return 0;
    h = id_hash(id, len);
    s = shard_of(c, h);
    if (!(e = calloc(1, sizeof(*e))))
        return -1;
    if (!SSL_SESSION_up_ref(sess)) {
        free(e);
        return -1;
    }
    e->sess = sess;
    e->expires = expires;
    memcpy(e->id, id, len);
    e->idlen = len;

    pthread_mutex_lock(&s->lock);
    if (s->cap == 0) {
        pthread_mutex_unlock(&s->lock);
        free_entries(e);
        return 0;
    }
    slot = find_slot(s, h, id, len);
    if (*slot) {
        struct entry *old = take(s, slot);

        old->hnext = dead;
        dead = old;
        slot = find_slot(s, h, id, len);
    }
    e->hnext = *slot;
    *slot = e;
    lru_push_newest(s, e);
    s->n++;
    trim(s, &dead);
    pthread_mutex_unlock(&s->lock);
    free_entries(dead);
    return 1;
}

SSL_SESSION *tls_sessions_get(struct tls_sessions *c, const unsigned char *id, size_t idlen,
                              time_t now)
{
    struct entry **slot, *dead = NULL;
    SSL_SESSION *ret = NULL;
    struct shard *s;
    uint64_t h;

    if (idlen == 0 || idlen > SSL_MAX_SSL_SESSION_ID_LENGTH)
        return NULL;
    h = id_hash(id, idlen);
    s = shard_of(c, h);
    pthread_mutex_lock(&s->lock);
    slot = find_slot(s, h, id, idlen);
    if (*slot && (*slot)->expires <= now) {
        dead = take(s, slot);
        dead->hnext = NULL;
    } else if (*slot && SSL_SESSION_up_ref((*slot)->sess)) {
        ret = (*slot)->sess;
        lru_unlink(s, *slot);
        lru_push_newest(s, *slot);
    }
    pthread_mutex_unlock(&s->lock);
    free_entries(dead);
    return ret;
}

void tls_sessions_remove(struct tls_sessions *c, const unsigned char *id, size_t idlen)
{
    struct entry **slot, *dead = NULL;
    struct shard *s;
    uint64_t h;

    if (idlen == 0 || idlen > SSL_MAX_SSL_SESSION_ID_LENGTH)
        return;
    h = id_hash(id, idlen);
    s = shard_of(c, h);
    pthread_mutex_lock(&s->lock);
    slot = find_slot(s, h, id, idlen);
    if (*slot) {
        dead = take(s, slot);
        dead->hnext = NULL;
    }
    pthread_mutex_unlock(&s->lock);
    free_entries(dead);
}

size_t tls_sessions_count(struct tls_sessions *c)
{
    size_t n = 0;
    int i;

    for (i = 0; i < TLS_SESSIONS_SHARDS; i++) {
        pthread_mutex_lock(&c->shards[i].lock);
        n += c->shards[i].n;
        pthread_mutex_unlock(&c->shards[i].lock);
    }
    return n;
}
