/*
 * identity.c - the identity interface and the config-map source.
 */
#include "identity.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct id_map {
    const struct cfg_identity **by_cn; /* sorted by cn for bsearch */
    size_t n;
    enum cfg_unknown_cn unknown;
};

static int cmp_entry(const void *a, const void *b)
{
    const struct cfg_identity *const *x = a, *const *y = b;

    return strcmp((*x)->cn, (*y)->cn);
}

static int cmp_key(const void *key, const void *elem)
{
    const struct cfg_identity *const *e = elem;

    return strcmp(key, (*e)->cn);
}

/* Synchronous: the answer points into the borrowed config. */
static int map_lookup(void *impl, struct event_base *base, const char *cn, gw_id_cb cb,
                      void *arg, void **pending)
{
    struct id_map *m = impl;
    const struct cfg_identity *const *hit = NULL;
    struct gw_id_answer a = {.status = GW_ID_UNKNOWN};

    (void)base;
    *pending = NULL;
    if (m->n > 0)
        hit = bsearch(cn, m->by_cn, m->n, sizeof(*m->by_cn), cmp_key);
    if (hit) {
        a.status = GW_ID_FOUND;
        a.identity = (*hit)->identity;
        a.allow = (*hit)->allow;
        a.n_allow = (*hit)->n_allow;
        a.has_allow = (*hit)->has_allow;
    } else if (m->unknown == CFG_UNKNOWN_CN) {
        a.status = GW_ID_FOUND;
        a.identity = cn;
    }
    cb(arg, &a);
    return 0;
}

static void map_cancel(void *impl, void *pending)
{
    (void)impl;
    (void)pending; /* never pending: answers are synchronous */
}

static void map_free(void *impl)
{
    struct id_map *m = impl;

    if (!m)
        return;
    free(m->by_cn);
    free(m);
}

static const struct gw_id_source_ops map_ops = {
    .name = "config",
    .lookup = map_lookup,
    .cancel = map_cancel,
    .free = map_free,
};

struct gw_id_source *gw_id_source_map_new(const struct cfg *cfg, char *err, size_t errlen)
{
    struct gw_id_source *src = calloc(1, sizeof(*src));
    struct id_map *m = calloc(1, sizeof(*m));
    size_t i;

    if (!src || !m)
        goto fail;
    m->unknown = cfg->identities.unknown;
    m->n = cfg->identities.n_map;
    if (m->n > 0) {
        m->by_cn = calloc(m->n, sizeof(*m->by_cn));
        if (!m->by_cn)
            goto fail;
        for (i = 0; i < m->n; i++)
            m->by_cn[i] = &cfg->identities.map[i];
        qsort(m->by_cn, m->n, sizeof(*m->by_cn), cmp_entry);
        for (i = 1; i < m->n; i++) {
            if (strcmp(m->by_cn[i - 1]->cn, m->by_cn[i]->cn) == 0) {
                snprintf(err, errlen, "identities.map: CN '%s' is listed twice",
                         m->by_cn[i]->cn);
                goto fail_quiet;
            }
        }
    }
    src->ops = &map_ops;
    src->impl = m;
    return src;
fail:
    snprintf(err, errlen, "identities: out of memory");
fail_quiet:
    map_free(m);
    free(src);
    return NULL;
}

int gw_id_lookup(struct gw_id_source *src, struct event_base *base, const char *cn,
                 gw_id_cb cb, void *arg, void **pending)
{
    return src->ops->lookup(src->impl, base, cn, cb, arg, pending);
}

void gw_id_cancel(struct gw_id_source *src, void *pending)
{
    if (src && pending)
        src->ops->cancel(src->impl, pending);
}

void gw_id_source_free(struct gw_id_source *src)
{
    if (!src)
        return;
    src->ops->free(src->impl);
    free(src);
}
