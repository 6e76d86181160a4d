/*
 * idstats.c - requests by identity and status class (see idstats.h).
 *
 * Layout: slots[0 .. GW_IDSTATS_MAX) hold the named identities, published
 * by n_named; two fixed rows follow for "_other" and "_none". The writer
 * finds a name through a small open-addressing index (slot numbers, only
 * ever read by the writer), so the request path costs one hash and
 * usually one strcmp.
 */
#include "idstats.h"

#include <stdlib.h>
#include <string.h>

#define INDEX_SIZE (GW_IDSTATS_MAX * 2)   /* power of two, load <= 1/2 */
#define ROW_OTHER GW_IDSTATS_MAX
#define ROW_NONE (GW_IDSTATS_MAX + 1)
#define N_ROWS (GW_IDSTATS_MAX + 2)

struct gw_idslot {
    uint64_t count[GW_IDSTATS_CLASSES];   /* single writer, relaxed atomics */
    char name[GW_IDSTATS_NAME_MAX];       /* written once, before publication */
};

struct gw_idstats {
    size_t n_named;                       /* published with a release store */
    uint16_t index[INDEX_SIZE];           /* slot + 1; 0 = empty; writer only */
    struct gw_idslot slots[N_ROWS];
};

struct gw_idstats *gw_idstats_new(void)
{
    struct gw_idstats *t = calloc(1, sizeof(*t));

    if (!t)
        return NULL;
    memcpy(t->slots[ROW_OTHER].name, GW_IDSTATS_OTHER, sizeof(GW_IDSTATS_OTHER));
    memcpy(t->slots[ROW_NONE].name, GW_IDSTATS_NONE, sizeof(GW_IDSTATS_NONE));
    return t;
}

void gw_idstats_free(struct gw_idstats *t)
{
    free(t);
}

/* FNV-1a over the first len bytes. */
static uint32_t name_hash(const char *s, size_t len)
{
    uint32_t h = 2166136261u;
    size_t i;

    for (i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 16777619u;
    }
    return h;
}

/*
 * The row of identity in t (the writer's view), adding it when there is
 * room: ROW_NONE for no identity, ROW_OTHER for a reserved name or when the
 * table is full. Only t's owner calls it.
 */
static size_t find_or_add(struct gw_idstats *t, const char *identity)
{
    size_t len, pos, n, probes;
    struct gw_idslot *s;
    uint16_t v;

    if (!identity || !identity[0] || strcmp(identity, GW_IDSTATS_NONE) == 0)
        return ROW_NONE;
    if (strcmp(identity, GW_IDSTATS_OTHER) == 0)
        return ROW_OTHER;
    len = strnlen(identity, GW_IDSTATS_NAME_MAX - 1);
    pos = name_hash(identity, len) & (INDEX_SIZE - 1);
    for (probes = 0; probes < INDEX_SIZE; probes++, pos = (pos + 1) & (INDEX_SIZE - 1)) {
        v = t->index[pos];
        if (v == 0)
            break;
        s = &t->slots[v - 1];
        if (strncmp(s->name, identity, len) == 0 && s->name[len] == '\0')
            return v - 1u;
    }
    n = t->n_named;
    if (n >= GW_IDSTATS_MAX || probes == INDEX_SIZE)
        return ROW_OTHER;
    s = &t->slots[n];
    memcpy(s->name, identity, len);
    s->name[len] = '\0';
    t->index[pos] = (uint16_t)(n + 1);
    /* The name (and the zeroed counters) before the count that shows them. */
    __atomic_store_n(&t->n_named, n + 1, __ATOMIC_RELEASE);
    return n;
}

static void add_relaxed(uint64_t *counter, uint64_t n)
{
    __atomic_store_n(counter, __atomic_load_n(counter, __ATOMIC_RELAXED) + n, __ATOMIC_RELAXED);
}

static size_t status_class(int status)
{
    int cls = status / 100;

    return cls >= 1 && cls <= 5 ? (size_t)cls : 0;
}

void gw_idstats_count(struct gw_idstats *t, const char *identity, int status)
{
    if (!t)
        return;
    add_relaxed(&t->slots[find_or_add(t, identity)].count[status_class(status)], 1);
}

/* Adds src's row (read with relaxed loads) into sum's row dst. */
static void add_row(struct gw_idstats *sum, size_t dst, const struct gw_idslot *src)
{
    size_t c;
    uint64_t v;

    for (c = 0; c < GW_IDSTATS_CLASSES; c++) {
        v = __atomic_load_n(&src->count[c], __ATOMIC_RELAXED);
        if (v)
            add_relaxed(&sum->slots[dst].count[c], v);
    }
}

void gw_idstats_snapshot_add(struct gw_idstats *sum, const struct gw_idstats *src)
{
    size_t n, i;

    if (!sum || !src)
        return;
    n = __atomic_load_n(&src->n_named, __ATOMIC_ACQUIRE);
    for (i = 0; i < n; i++)
        add_row(sum, find_or_add(sum, src->slots[i].name), &src->slots[i]);
    add_row(sum, ROW_OTHER, &src->slots[ROW_OTHER]);
    add_row(sum, ROW_NONE, &src->slots[ROW_NONE]);
}

void gw_idstats_clear_counts(struct gw_idstats *sum)
{
    size_t i;

    if (!sum)
        return;
    /* Names, index and n_named stay: only the counters start again. */
    for (i = 0; i < N_ROWS; i++)
        memset(sum->slots[i].count, 0, sizeof(sum->slots[i].count));
}

size_t gw_idstats_rows(const struct gw_idstats *t)
{
    return t ? t->n_named + 2 : 0;
}

/* Row number -> slot: the named rows, then _other, then _none. */
static size_t row_slot(const struct gw_idstats *t, size_t row)
{
    if (row < t->n_named)
        return row;
    return row == t->n_named ? ROW_OTHER : ROW_NONE;
}

const char *gw_idstats_row_name(const struct gw_idstats *t, size_t row)
{
    if (!t || row >= gw_idstats_rows(t))
        return NULL;
    return t->slots[row_slot(t, row)].name;
}

uint64_t gw_idstats_row_count(const struct gw_idstats *t, size_t row, size_t cls)
{
    if (!t || row >= gw_idstats_rows(t) || cls >= GW_IDSTATS_CLASSES)
        return 0;
    return __atomic_load_n(&t->slots[row_slot(t, row)].count[cls], __ATOMIC_RELAXED);
}

const char *gw_idstats_class_name(size_t cls)
{
    static const char *const names[GW_IDSTATS_CLASSES] = {"other", "1xx", "2xx",
                                                          "3xx",   "4xx", "5xx"};

    return cls < GW_IDSTATS_CLASSES ? names[cls] : "other";
}
