/*
 * idstats.h - requests by (identity, status class), per worker, bounded.
 *
 * Each worker owns one table and is its only writer (gw_idstats_count on
 * the request path: no lock, no allocation, relaxed atomic stores as in
 * stats.h). Another thread (the admin listener) adds a table into a sum of
 * its own with gw_idstats_snapshot_add at any time.
 *
 * A table names at most GW_IDSTATS_MAX identities, in the order they were
 * first seen; every identity after that is counted under "_other", and a
 * request that has no identity (refused before the identity lookup, or an
 * unknown CN) under "_none". So `identities.unknown: cn`, where the identity
 * is whatever CN a trusted client presents, cannot grow the table (or the
 * metrics' cardinality) without bound. A sum is bounded the same way.
 * Identity names are cut to GW_IDSTATS_NAME_MAX - 1 bytes. The names
 * "_other" and "_none" are reserved: an identity spelt so is counted with
 * those rows.
 *
 * Publication: a slot's name is written once, before the slot count is
 * raised with a release store; a reader loads the count with acquire and
 * may then read those names without a lock; the names never change after.
 *
 * Stable series. The merged table (a sum) is kept by its reader for the
 * life of the process and only its counts are cleared before each scrape
 * (gw_idstats_clear_counts); a sum rebuilt from empty at every scrape would
 * name the first GW_IDSTATS_MAX identities in the order of that scrape, so
 * a worker learning new names could push another worker's identities out
 * of their rows into "_other" between two scrapes: their series vanish and
 * come back as counter resets. With a kept sum an identity that has a row
 * keeps it, new identities only take rows that were free, and once the sum
 * is full everything new goes to "_other". Every series then only grows,
 * "_other" included: a worker's named row stays named and only counts up, a
 * name that went to the sum's "_other" went there because the sum was full,
 * which it stays, and a worker's own "_other" only counts up. Per process,
 * not per configuration generation: the worker tables live as long as the
 * workers, which a reload keeps, and identities do not change meaning on a
 * reload, so neither table is reset.
 */
#ifndef MTLS_PROXY_IDSTATS_H
#define MTLS_PROXY_IDSTATS_H

#include <stddef.h>
#include <stdint.h>

#define GW_IDSTATS_MUSTCHECK __attribute__((warn_unused_result))

#define GW_IDSTATS_MAX 256          /* named identities per table */
#define GW_IDSTATS_NAME_MAX 128     /* bytes of a name with its NUL */
#define GW_IDSTATS_CLASSES 6        /* [1]..[5] = 1xx..5xx, [0] anything else */
#define GW_IDSTATS_OTHER "_other"
#define GW_IDSTATS_NONE "_none"

struct gw_idstats; /* opaque */

/* An empty table; NULL when out of memory. */
struct gw_idstats *gw_idstats_new(void) GW_IDSTATS_MUSTCHECK;

/* NULL is fine. No thread may be using the table any more. */
void gw_idstats_free(struct gw_idstats *t);

/*
 * Counts one answered request of identity (NULL or "" = none) with HTTP
 * status `status` (its class: status / 100, 1..5, else "other"). Only the
 * table's owner thread may call it. Never fails: a full table counts the
 * request under "_other". t NULL is fine (nothing is counted).
 */
void gw_idstats_count(struct gw_idstats *t, const char *identity, int status);

/*
 * Adds every row of src (read with acquire/relaxed loads, so src may be
 * written by its worker at the same time) into sum, which the calling
 * thread owns. A name sum already has is added to its row; a new name takes
 * the next free row; when there is none, it goes to sum's "_other".
 */
void gw_idstats_snapshot_add(struct gw_idstats *sum, const struct gw_idstats *src);

/*
 * Sets every count of sum (a table its caller owns, that no worker writes)
 * to 0 and keeps its named rows, in their order, so that the next
 * gw_idstats_snapshot_add calls fill the same rows ("Stable series"). NULL
 * is fine.
 */
void gw_idstats_clear_counts(struct gw_idstats *sum);

/*
 * Reading a table its caller owns (a sum), for rendering: rows 0 ..
 * gw_idstats_rows()-1 are the named identities in the order first seen,
 * then "_other", then "_none".
 */
size_t gw_idstats_rows(const struct gw_idstats *t);
const char *gw_idstats_row_name(const struct gw_idstats *t, size_t row);
/* The count of status class cls (0..GW_IDSTATS_CLASSES-1) in row. */
uint64_t gw_idstats_row_count(const struct gw_idstats *t, size_t row, size_t cls);

/* "1xx".."5xx", and "other" for class 0. */
const char *gw_idstats_class_name(size_t cls);

#endif
