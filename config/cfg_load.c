/*
 * cfg_load.c - the entry points: read the file, parse it into a tree,
 * apply defaults then the tree, validate, and hand back either a complete
 * struct cfg or every problem found. Also the diagnostics list, cfg_where
 * and the reload comparison.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cfg_internal.h"

/* ---- diagnostics ---- */

/* Appends an already formatted message; takes ownership of msg. */
static void diag_push(struct cfg_diag *d, char *msg)
{
    if (d == NULL || msg == NULL) {
        free(msg);
        return;
    }
    if (d->n < CFG_DIAG_MAX - 1) {
        d->msg[d->n++] = msg;
        return;
    }
    /* The last slot counts what did not fit. */
    free(msg);
    if (d->n == CFG_DIAG_MAX - 1) {
        d->msg[d->n++] = strdup("... and 1 more problem");
    } else {
        unsigned long more = 1;
        char *last = d->msg[CFG_DIAG_MAX - 1];

        if (last != NULL)
            sscanf(last, "... and %lu more", &more);
        free(last);
        if (asprintf(&d->msg[CFG_DIAG_MAX - 1], "... and %lu more problems", more + 1) < 0)
            d->msg[CFG_DIAG_MAX - 1] = NULL;
    }
}

static void diag_vaddf(struct cfg_diag *d, const char *fmt, va_list ap)
{
    char *msg = NULL;

    if (d == NULL)
        return;
    if (vasprintf(&msg, fmt, ap) < 0)
        msg = NULL;
    diag_push(d, msg);
}

void cfg_diag_addf(struct cfg_diag *diag, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    diag_vaddf(diag, fmt, ap);
    va_end(ap);
}

void cfg_diag_free(struct cfg_diag *diag)
{
    size_t i;

    if (diag == NULL)
        return;
    for (i = 0; i < diag->n && i < CFG_DIAG_MAX; i++) {
        free(diag->msg[i]);
        diag->msg[i] = NULL;
    }
    diag->n = 0;
}

/* "NAME:L:C: KEY: cause", counted as an error even if the list is full. */
static void err_v(struct cfg_ctx *x, unsigned line, unsigned col, const char *key,
                  const char *fmt, va_list ap)
{
    char *cause = NULL;

    x->errors++;
    if (vasprintf(&cause, fmt, ap) < 0) {
        cfg_diag_addf(x->diag, "%s:%u:%u: %s: out of memory", x->name, line, col, key);
        return;
    }
    cfg_diag_addf(x->diag, "%s:%u:%u: %s: %s", x->name, line, col, key, cause);
    free(cause);
}

void cfg_err_at(struct cfg_ctx *x, unsigned line, unsigned col, const char *key,
                const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    err_v(x, line, col, key, fmt, ap);
    va_end(ap);
}

void cfg_err(struct cfg_ctx *x, const struct ynode *at, const char *key, const char *fmt, ...)
{
    va_list ap;
    unsigned line = 1, col = 1;

    if (at == NULL)
        at = x->root;
    if (at != NULL) {
        line = at->line;
        col = at->col;
    }
    va_start(ap, fmt);
    err_v(x, line, col, key, fmt, ap);
    va_end(ap);
}

/*
 * Copies s for a message, controls as '?', cut to fit len with "..."
 * at the end when it does not, so that every message stays one line.
 */
const char *cfg_shown(const char *s, char *buf, size_t len)
{
    size_t i, slen = strlen(s);

    if (len == 0)
        return buf;
    for (i = 0; i < slen && i + 1 < len; i++)
        buf[i] = ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) ? '?' : s[i];
    buf[i] = '\0';
    if (i < slen && len >= 8)
        memcpy(buf + len - 4, "...", 4);
    return buf;
}

/* Levenshtein distance of two short words (longer ones: "far"). */
static size_t distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), i, j;
    size_t row[65], prev;

    if (la > 64 || lb > 64)
        return (size_t)-1;
    for (j = 0; j <= lb; j++)
        row[j] = j;
    for (i = 1; i <= la; i++) {
        prev = row[0];
        row[0] = i;
        for (j = 1; j <= lb; j++) {
            size_t cur = row[j];
            size_t best = prev + (a[i - 1] != b[j - 1]);

            if (row[j] + 1 < best)
                best = row[j] + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            prev = cur;
        }
    }
    return row[lb];
}

/*
 * The candidate nearest to word, when near enough to be a typo: within
 * half the shorter word's length (at least 1), or one a prefix of the other.
 */
const char *cfg_nearest(const char *word, const char *const *names, size_t n)
{
    const char *best = NULL;
    size_t i, bestd = (size_t)-1, lw = strlen(word);

    for (i = 0; i < n; i++) {
        size_t ln = strlen(names[i]);
        size_t d = distance(word, names[i]);
        size_t shorter = lw < ln ? lw : ln;
        size_t limit = shorter / 2 > 1 ? shorter / 2 : 1;

        if (shorter >= 3 && (strncmp(word, names[i], shorter) == 0))
            d = d < 1 ? d : 1;
        if (d <= limit && d < bestd) {
            bestd = d;
            best = names[i];
        }
    }
    return best;
}

/* ---- paths ---- */

/*
 * dir + "/" + rel (or rel alone when absolute), with empty and "."
 * segments dropped. ".." is kept: folding it is wrong across symbolic links.
 */
char *cfg_resolve(const char *dir, const char *rel)
{
    const char *part[2] = {rel[0] == '/' ? "" : dir, rel};
    char *out = malloc(strlen(dir) + strlen(rel) + 3);
    size_t n = 0, i;

    if (out == NULL)
        return NULL;
    for (i = 0; i < 2; i++) {
        const char *p = part[i];

        while (*p != '\0') {
            const char *seg;

            while (*p == '/')
                p++;
            seg = p;
            while (*p != '\0' && *p != '/')
                p++;
            if (p == seg || (p - seg == 1 && seg[0] == '.'))
                continue;
            out[n++] = '/';
            memcpy(out + n, seg, (size_t)(p - seg));
            n += (size_t)(p - seg);
        }
    }
    if (n == 0)
        out[n++] = '/';
    out[n] = '\0';
    return out;
}

/* Absolute form of the config file name (against the working directory). */
static char *absolute_name(const char *name)
{
    char cwd[4096];

    if (name[0] == '/')
        return cfg_resolve("/", name);
    if (getcwd(cwd, sizeof(cwd)) == NULL)
        return NULL;
    return cfg_resolve(cwd, name);
}

/* ---- loading ---- */

static int load_buffer(const char *name, const char *buf, size_t len, struct cfg **out,
                       struct cfg_diag *diag)
{
    struct cfg_ctx x;
    struct cfg_diag local = {0};
    struct cfg *c = NULL;
    struct ynode *root = NULL;
    char *slash;
    int rc = -1;

    memset(&x, 0, sizeof(x));
    x.name = name;
    x.buf = buf;
    x.len = len;
    x.diag = diag != NULL ? diag : &local;
    if ((c = calloc(1, sizeof(*c))) == NULL ||
        (c->origin = calloc(1, sizeof(*c->origin) + cfg_nkeys * sizeof(struct cfg_mark))) == NULL ||
        (c->origin->name = strdup(name)) == NULL ||
        (x.seen = calloc(cfg_nkeys, sizeof(*x.seen))) == NULL ||
        (c->path = absolute_name(name)) == NULL || (c->dir = strdup(c->path)) == NULL) {
        cfg_diag_addf(x.diag, "%s: cannot make its path absolute: %s", name, strerror(errno));
        goto out;
    }
    slash = strrchr(c->dir, '/');
    if (slash == c->dir)
        slash[1] = '\0';        /* a file in "/" */
    else
        *slash = '\0';
    x.c = c;
    x.dir = c->dir;
    x.mark = c->origin->mark;
    if (cfg_apply_defaults(&x) != 0)
        goto out;
    if (len > CFG_MAX_FILE_BYTES) {
        cfg_diag_addf(x.diag, "%s: larger than %d bytes; is this a configuration file?", name,
                      CFG_MAX_FILE_BYTES);
        goto out;
    }
    if (cfg_yaml_parse(&x, buf, len, &root) != 0)
        goto out;
    x.root = root;
    cfg_apply_tree(&x, root);
    cfg_validate(&x);
    if (x.errors == 0)
        rc = 0;
out:
    if (rc != 0) {
        if (x.diag->n == 0)
            cfg_diag_addf(x.diag, "%s: invalid configuration", name);
        cfg_free(c);
        c = NULL;
    }
    cfg_ynode_free(root);
    free(x.seen);
    cfg_diag_free(&local);
    *out = c;
    return rc;
}

int cfg_load_buffer(const char *name, const char *buf, size_t len, struct cfg **out,
                    struct cfg_diag *diag)
{
    if (diag != NULL)
        memset(diag, 0, sizeof(*diag));
    *out = NULL;
    if (name == NULL || (buf == NULL && len > 0)) {
        cfg_diag_addf(diag, "(config): no file name or no text");
        return -1;
    }
    return load_buffer(name, buf != NULL ? buf : "", len, out, diag);
}

/*
 * Reads the whole file (bounded) into a new buffer *buf of *len bytes. An
 * unreadable file gives one "FILE: cause" message. 0 / -1.
 */
static int read_file(const char *path, char **buf, size_t *len, struct cfg_diag *diag)
{
    struct stat st;
    int fd = -1, rc = -1;

    *buf = NULL;
    *len = 0;
    if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)) < 0 ||
        fstat(fd, &st) != 0) {
        cfg_diag_addf(diag, "%s: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        cfg_diag_addf(diag, "%s: not a regular file", path);
        goto out;
    }
    if (st.st_size > CFG_MAX_FILE_BYTES) {
        cfg_diag_addf(diag, "%s: larger than %d bytes; is this a configuration file?", path,
                      CFG_MAX_FILE_BYTES);
        goto out;
    }
    if ((*buf = malloc((size_t)st.st_size + 1)) == NULL) {
        cfg_diag_addf(diag, "%s: out of memory", path);
        goto out;
    }
    while (*len < (size_t)st.st_size) {
        ssize_t r = read(fd, *buf + *len, (size_t)st.st_size - *len);

        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            cfg_diag_addf(diag, "%s: %s", path, strerror(errno));
            goto out;
        }
        if (r == 0)
            break;              /* shrank while we read: take what is there */
        *len += (size_t)r;
    }
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    if (rc != 0) {
        free(*buf);
        *buf = NULL;
    }
    return rc;
}

/* Reads the whole file (bounded) and loads it. */
int cfg_load(const char *path, struct cfg **out, struct cfg_diag *diag)
{
    char *buf = NULL;
    size_t len = 0;
    int rc = -1;

    if (diag != NULL)
        memset(diag, 0, sizeof(*diag));
    *out = NULL;
    if (path == NULL) {
        cfg_diag_addf(diag, "(config): no file name");
        return -1;
    }
    if (read_file(path, &buf, &len, diag) == 0)
        rc = load_buffer(path, buf, len, out, diag);
    free(buf);
    return rc;
}

int cfg_load_pid_file(const char *path, char **pid_file, struct cfg_diag *diag)
{
    struct cfg_ctx x;
    struct cfg_diag local = {0};
    struct ynode *root = NULL;
    char *buf = NULL, *abs = NULL, *dir = NULL, *slash;
    size_t len = 0, i;
    int rc = -1;

    if (diag != NULL)
        memset(diag, 0, sizeof(*diag));
    *pid_file = NULL;
    memset(&x, 0, sizeof(x));
    x.diag = diag != NULL ? diag : &local;
    if (path == NULL) {
        cfg_diag_addf(x.diag, "(config): no file name");
        goto out;
    }
    if (read_file(path, &buf, &len, x.diag) != 0)
        goto out;
    if ((abs = absolute_name(path)) == NULL || (dir = strdup(abs)) == NULL) {
        cfg_diag_addf(x.diag, "%s: cannot make its path absolute: %s", path, strerror(errno));
        goto out;
    }
    slash = strrchr(dir, '/');
    slash[slash == dir ? 1 : 0] = '\0';
    x.name = path;
    x.dir = dir;
    x.buf = buf;
    x.len = len;
    if (cfg_yaml_parse(&x, buf, len, &root) != 0)
        goto out;
    x.root = root;
    rc = 0;                     /* not set, or not a mapping: no pid_file */
    for (i = 0; root != NULL && root->kind == YN_MAP && i + 1 < root->n; i += 2) {
        const struct ynode *kn = root->kid[i], *v = root->kid[i + 1];

        if (kn->kind != YN_SCALAR || strcmp(kn->str, "pid_file") != 0)
            continue;
        if (cfg_ynode_is_null(v))
            break;
        if (v->kind != YN_SCALAR) {
            cfg_err(&x, v, "pid_file", "expected a path");
            rc = -1;
            break;
        }
        if ((*pid_file = cfg_resolve(dir, v->str)) == NULL) {
            cfg_err(&x, v, "pid_file", "out of memory");
            rc = -1;
        }
        break;                  /* a duplicate is the running config's problem */
    }
out:
    cfg_ynode_free(root);
    cfg_diag_free(&local);
    free(buf);
    free(abs);
    free(dir);
    return rc;
}

void cfg_free(struct cfg *c)
{
    size_t i;

    if (c == NULL)
        return;
    for (i = 0; i < cfg_nkeys; i++)
        cfg_field_free(c, &cfg_keys[i]);
    if (c->origin != NULL)
        free(c->origin->name);
    free(c->origin);
    free(c->path);
    free(c->dir);
    free(c);
}

const char *cfg_where(const struct cfg *c, const char *key, char *buf, size_t len)
{
    int i;

    if (buf == NULL || len == 0)
        return buf;
    buf[0] = '\0';
    if (c == NULL || c->origin == NULL)
        return buf;
    i = key != NULL ? cfg_key_find(key, strlen(key)) : -1;
    if (i >= 0 && c->origin->mark[i].line > 0)
        snprintf(buf, len, "%s:%u:%u", c->origin->name, c->origin->mark[i].line,
                 c->origin->mark[i].col);
    else
        snprintf(buf, len, "%s", c->origin->name);
    return buf;
}

/* Whether two address lists name the same addresses in the same order. */
static int addrs_equal(const struct cfg_addr *a, size_t na, const struct cfg_addr *b, size_t nb)
{
    size_t i;

    if (na != nb)
        return 0;
    for (i = 0; i < na; i++)
        if (strcmp(a[i].host, b[i].host) != 0 || strcmp(a[i].port, b[i].port) != 0)
            return 0;
    return 1;
}

/* Whether key k has the same value in a and b. */
static int field_equal(const struct cfg *a, const struct cfg *b, const struct cfg_key *k)
{
    const char *fa = (const char *)a + k->off, *fb = (const char *)b + k->off;

    switch (k->type) {
    case CT_STRING:
    case CT_PATH: {
        const char *sa, *sb;

        memcpy(&sa, fa, sizeof(sa));
        memcpy(&sb, fb, sizeof(sb));
        return (sa == NULL && sb == NULL) || (sa != NULL && sb != NULL && strcmp(sa, sb) == 0);
    }
    case CT_ADDRS: {
        const struct cfg_addr *la, *lb;
        size_t na, nb;

        memcpy(&la, fa, sizeof(la));
        memcpy(&lb, fb, sizeof(lb));
        memcpy(&na, (const char *)a + k->off_n, sizeof(na));
        memcpy(&nb, (const char *)b + k->off_n, sizeof(nb));
        return addrs_equal(la, na, lb, nb);
    }
    case CT_ADDR: {
        const struct cfg_addr *la, *lb;

        memcpy(&la, fa, sizeof(la));
        memcpy(&lb, fb, sizeof(lb));
        return (la == NULL && lb == NULL) ||
               (la != NULL && lb != NULL && addrs_equal(la, 1, lb, 1));
    }
    case CT_SECTION:
    case CT_IDENTITIES:
        return 1;
    default:
        return memcmp(fa, fb, k->size) == 0;
    }
}

size_t cfg_restart_needed(const struct cfg *old, const struct cfg *new_cfg,
                          struct cfg_diag *diag)
{
    size_t i, changed = 0;
    char where[512];

    if (old == NULL || new_cfg == NULL)
        return 0;
    for (i = 0; i < cfg_nkeys; i++) {
        const struct cfg_key *k = &cfg_keys[i];

        if (!(k->flags & CF_RESTART) || field_equal(old, new_cfg, k))
            continue;
        changed++;
        cfg_diag_addf(diag, "%s: %s: changed; takes effect only after a restart",
                      cfg_where(new_cfg, k->name, where, sizeof(where)), k->name);
    }
    return changed;
}

static void addrs_free_n(struct cfg_addr *a, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        cfg_addr_free(&a[i]);
    free(a);
}

/* A new copy of n addresses (n may be 0: NULL); 0 / -1 (out of memory). */
static int addrs_copy(const struct cfg_addr *a, size_t n, struct cfg_addr **out)
{
    struct cfg_addr *list = NULL;
    size_t i;

    *out = NULL;
    if (n == 0 || a == NULL)
        return 0;
    if ((list = calloc(n, sizeof(*list))) == NULL)
        return -1;
    for (i = 0; i < n; i++) {
        list[i].host = strdup(a[i].host);
        list[i].port = strdup(a[i].port);
        if (list[i].host == NULL || list[i].port == NULL) {
            addrs_free_n(list, i + 1);
            return -1;
        }
    }
    *out = list;
    return 0;
}

/* Copies the value of key k from src into dst (a zeroed field). 0 / -1. */
static int field_copy(struct cfg *dst, const struct cfg *src, const struct cfg_key *k)
{
    const char *fs = (const char *)src + k->off;
    char *fd = (char *)dst + k->off;

    switch (k->type) {
    case CT_STRING:
    case CT_PATH: {
        const char *s;
        char *d = NULL;

        memcpy(&s, fs, sizeof(s));
        if (s != NULL && (d = strdup(s)) == NULL)
            return -1;
        memcpy(fd, &d, sizeof(d));
        return 0;
    }
    case CT_ADDRS: {
        const struct cfg_addr *s;
        struct cfg_addr *d;
        size_t n;

        memcpy(&s, fs, sizeof(s));
        memcpy(&n, (const char *)src + k->off_n, sizeof(n));
        if (addrs_copy(s, n, &d) != 0)
            return -1;
        if (d == NULL)
            n = 0;
        memcpy(fd, &d, sizeof(d));
        memcpy((char *)dst + k->off_n, &n, sizeof(n));
        return 0;
    }
    case CT_ADDR: {
        const struct cfg_addr *s;
        struct cfg_addr *d = NULL;

        memcpy(&s, fs, sizeof(s));
        if (s != NULL) {
            if ((d = malloc(sizeof(*d))) == NULL)
                return -1;
            d->host = strdup(s->host);
            d->port = strdup(s->port);
            if (d->host == NULL || d->port == NULL) {
                cfg_addr_free(d);
                free(d);
                return -1;
            }
        }
        memcpy(fd, &d, sizeof(d));
        return 0;
    }
    case CT_SECTION:
    case CT_IDENTITIES:
        return 0;
    default:
        memcpy(fd, fs, k->size);
        return 0;
    }
}

struct cfg *cfg_restart_snapshot(const struct cfg *c)
{
    struct cfg *s = NULL;
    size_t i;
    int ok = 0;

    if (c == NULL || (s = calloc(1, sizeof(*s))) == NULL)
        goto out;
    if ((c->path != NULL && (s->path = strdup(c->path)) == NULL) ||
        (c->dir != NULL && (s->dir = strdup(c->dir)) == NULL))
        goto out;
    if (c->origin != NULL) {
        size_t sz = sizeof(*s->origin) + cfg_nkeys * sizeof(struct cfg_mark);

        if ((s->origin = calloc(1, sz)) == NULL)
            goto out;
        memcpy(s->origin->mark, c->origin->mark, cfg_nkeys * sizeof(struct cfg_mark));
        if (c->origin->name != NULL && (s->origin->name = strdup(c->origin->name)) == NULL)
            goto out;
    }
    for (i = 0; i < cfg_nkeys; i++)
        if ((cfg_keys[i].flags & CF_RESTART) && field_copy(s, c, &cfg_keys[i]) != 0)
            goto out;
    ok = 1;
out:
    if (!ok) {
        cfg_free(s);
        s = NULL;
    }
    return s;
}
