/*
 * identity.h - who a client certificate's CN is, behind one small interface.
 *
 * The proxy asks an identity source for the identity of a CN and for the
 * identity's allow rules. A source may answer at once (the config map below)
 * or later on the caller's event base (a database-backed source), so the
 * proxy never depends on which one it talks to.
 */
#ifndef MTLS_PROXY_IDENTITY_H
#define MTLS_PROXY_IDENTITY_H

#include <stddef.h>

#include "config.h"

#define GW_ID_MUSTCHECK __attribute__((warn_unused_result))

struct event_base;

enum gw_id_status {
    GW_ID_FOUND = 0,      /* identity (and rules) below */
    GW_ID_UNKNOWN,        /* no such CN: 403 */
    GW_ID_ERROR,          /* the source failed (e.g. database down): 503 */
};

/*
 * An answer. Every pointer is valid only during the callback: a caller that
 * needs the identity later copies it.
 */
struct gw_id_answer {
    enum gw_id_status status;
    const char *identity;
    const struct cfg_rule *allow; /* the allow list, when has_allow */
    size_t n_allow;
    int has_allow;                /* 0: every method and path allowed */
};

typedef void (*gw_id_cb)(void *arg, const struct gw_id_answer *answer);

/*
 * What a source implements. lookup() either calls cb before it returns
 * (and sets *pending to NULL), or returns with *pending set to a handle and
 * calls cb exactly once later from a callback of base; cancel(pending)
 * before that call means cb is never called. lookup returns -1 only when it
 * could not even start (cb is then not called).
 */
struct gw_id_source_ops {
    const char *name;
    int (*lookup)(void *impl, struct event_base *base, const char *cn,
                  gw_id_cb cb, void *arg, void **pending);
    void (*cancel)(void *impl, void *pending);
    void (*free)(void *impl);
};

struct gw_id_source {
    const struct gw_id_source_ops *ops;
    void *impl;
};

/*
 * The config-map source: identities.map, with identities.unknown deciding
 * what an unknown CN gets. Borrows cfg (the caller keeps it alive longer
 * than the source). Synchronous. NULL with a reason in err.
 */
struct gw_id_source *gw_id_source_map_new(const struct cfg *cfg, char *err,
                                          size_t errlen) GW_ID_MUSTCHECK;

/* Thin wrappers over ops, see above. */
int gw_id_lookup(struct gw_id_source *src, struct event_base *base, const char *cn,
                 gw_id_cb cb, void *arg, void **pending) GW_ID_MUSTCHECK;
void gw_id_cancel(struct gw_id_source *src, void *pending); /* NULL pending is fine */
void gw_id_source_free(struct gw_id_source *src);            /* NULL is fine */

#endif
