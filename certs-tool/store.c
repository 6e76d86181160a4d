/*
 * store.c - names, paths, atomic multi-file writes, the PKI directory, its
 * index and the intermediates' generations (cas.tsv). See store.h for the
 * layout and the contracts.
 */
#include "store.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "tls_errors.h"
#include "tls_pem.h"
#include "tls_x509.h"

/* ---- names ------------------------------------------------------------ */

const char *ct_quote(const char *s, char *buf, size_t len)
{
    size_t used = 0;
    const unsigned char *p;

    if (len == 0)
        return buf;
    buf[0] = '\0';
    if (s == NULL)
        return buf;
    for (p = (const unsigned char *)s; *p != '\0'; p++) {
        char one[8];
        size_t n;

        if (*p == '\n')
            snprintf(one, sizeof(one), "\\n");
        else if (*p == '\t')
            snprintf(one, sizeof(one), "\\t");
        else if (*p == '\r')
            snprintf(one, sizeof(one), "\\r");
        else if (*p < 0x20 || *p >= 0x7f)
            snprintf(one, sizeof(one), "\\x%02x", *p);
        else
            snprintf(one, sizeof(one), "%c", *p);
        n = strlen(one);
        /* keep room for "..." and the NUL */
        if (used + n + 4 > len) {
            /* the previous rounds left room for "..." and the NUL */
            if (used + 4 <= len)
                memcpy(buf + used, "...", 4);
            return buf;
        }
        memcpy(buf + used, one, n + 1);
        used += n;
    }
    return buf;
}

void ct_list_append(char *buf, size_t len, size_t *used, const char *item)
{
    int w;

    if (*used >= len)
        return;
    w = snprintf(buf + *used, len - *used, "%s%s", *used ? ", " : "", item);
    if (w > 0)
        *used += (size_t)w;
}

/* [A-Za-z0-9._@-] */
static int name_char_ok(unsigned char c)
{
    return isascii(c) && (isalnum(c) || c == '.' || c == '_' || c == '@' || c == '-');
}

int ct_name_check(const char *name, char *err, size_t errlen)
{
    char q[96];
    const unsigned char *p;

    if (name == NULL || name[0] == '\0') {
        snprintf(err, errlen, "name is empty");
        return -1;
    }
    ct_quote(name, q, sizeof(q));
    /* The most specific reasons first, so the message names the real problem. */
    for (p = (const unsigned char *)name; *p != '\0'; p++) {
        if (*p == '\n') {
            snprintf(err, errlen, "name '%s' contains a newline", q);
            return -1;
        }
        if (*p < 0x20 || *p == 0x7f) {
            snprintf(err, errlen, "name '%s' contains a control character", q);
            return -1;
        }
    }
    if (strchr(name, '/') != NULL) {
        snprintf(err, errlen, "name '%s' contains '/'", q);
        return -1;
    }
    if (strstr(name, "..") != NULL) {
        snprintf(err, errlen, "name '%s' contains '..'", q);
        return -1;
    }
    if (name[0] == '.' || name[0] == '-') {
        snprintf(err, errlen, "name '%s' starts with '%c'", q, name[0]);
        return -1;
    }
    if (strlen(name) > CT_NAME_MAX) {
        snprintf(err, errlen, "name '%s' is longer than %d characters", q, CT_NAME_MAX);
        return -1;
    }
    for (p = (const unsigned char *)name; *p != '\0'; p++) {
        if (!name_char_ok(*p)) {
            if (*p < 0x80)
                snprintf(err, errlen,
                         "name '%s' contains '%c' (allowed: letters, digits, '.', '_', '@', '-')",
                         q, *p);
            else
                snprintf(err, errlen,
                         "name '%s' contains a non-ASCII byte (allowed: letters, digits, "
                         "'.', '_', '@', '-')", q);
            return -1;
        }
    }
    return 0;
}

/* ---- paths --------------------------------------------------------------- */

const char *ct_kind_name(enum ct_kind kind)
{
    return kind == CT_KIND_SERVER ? "server" : "client";
}

int ct_kind_parse(const char *s, enum ct_kind *kind)
{
    if (strcmp(s, "client") == 0)
        *kind = CT_KIND_CLIENT;
    else if (strcmp(s, "server") == 0)
        *kind = CT_KIND_SERVER;
    else
        return -1;
    return 0;
}

int ct_path(char out[CT_PATH_MAX], const char *dir, const char *rel, char *err, size_t errlen)
{
    int n = snprintf(out, CT_PATH_MAX, "%s/%s", dir, rel);

    if (n < 0 || n >= CT_PATH_MAX) {
        snprintf(err, errlen, "%.200s: path too long", dir);
        return -1;
    }
    return 0;
}

int ct_leaf_path(char out[CT_PATH_MAX], const char *dir, enum ct_kind kind, const char *name,
                 const char *ext, char *err, size_t errlen)
{
    int n = snprintf(out, CT_PATH_MAX, "%s/%s/%s.%s", dir,
                     kind == CT_KIND_SERVER ? "servers" : "clients", name, ext);

    if (n < 0 || n >= CT_PATH_MAX) {
        snprintf(err, errlen, "%.200s: path too long", dir);
        return -1;
    }
    return 0;
}

int ct_exists(const char *path)
{
    struct stat st;

    return lstat(path, &st) == 0;
}

/* ---- transactions -------------------------------------------------------- */

enum txn_op { TXN_PUT, TXN_REMOVE };

struct txn_item {
    enum txn_op op;
    char *path;
    char *tmp;   /* TXN_PUT: the staged temporary file; NULL once renamed */
    char *bak;   /* during a commit: the previous target, kept for a rollback; NULL when none */
    int late;    /* committed after every other item (index.tsv, cas.tsv) */
    int applied; /* during a commit: renamed into place / removed */
};

struct txn_dir {
    char *path;
    mode_t mode;
    int created;
};

struct ct_txn {
    struct txn_item *items;
    size_t nitems, capitems;
    struct txn_dir *dirs;
    size_t ndirs, capdirs;
    int committed;
};

struct ct_txn *ct_txn_new(void)
{
    return calloc(1, sizeof(struct ct_txn));
}

/* Grows an array of elem-sized items so that one more fits. */
static int grow(void **v, size_t n, size_t *cap, size_t elem)
{
    void *nv;
    size_t ncap;

    if (n < *cap)
        return 0;
    ncap = *cap ? *cap * 2 : 8;
    nv = realloc(*v, ncap * elem);
    if (nv == NULL)
        return -1;
    *v = nv;
    *cap = ncap;
    return 0;
}

/* Splits path into its directory (new string, "." when none) and base name. */
static char *dir_of(const char *path, const char **base)
{
    const char *slash = strrchr(path, '/');
    char *d;

    if (slash == NULL) {
        *base = path;
        return strdup(".");
    }
    *base = slash + 1;
    if (slash == path)
        return strdup("/");
    d = strndup(path, (size_t)(slash - path));
    return d;
}

/* write(2) until done, retrying on EINTR; 0 / -1 with errno. */
static int write_all(int fd, const void *data, size_t len)
{
    const char *p = data;

    while (len > 0) {
        ssize_t w = write(fd, p, len);

        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

/* 1 when path is already staged in t. */
static int txn_has(const struct ct_txn *t, const char *path)
{
    size_t i;

    for (i = 0; i < t->nitems; i++)
        if (strcmp(t->items[i].path, path) == 0)
            return 1;
    return 0;
}

/* ct_txn_put; late items are committed after all the others (ct_txn_commit). */
static int txn_put(struct ct_txn *t, const char *path, const void *data, size_t len, mode_t mode,
                   int late, char *err, size_t errlen)
{
    const char *base = path;
    char *dir = NULL, *tmp = NULL, *pcopy = NULL;
    int fd = -1, rc = -1, made = 0;
    size_t tlen = 0;

    if (txn_has(t, path)) {
        snprintf(err, errlen, "%s: written twice in one command", path);
        return -1;
    }
    if ((dir = dir_of(path, &base)) != NULL) {
        tlen = strlen(dir) + strlen(base) + 16;
        tmp = malloc(tlen);
    }
    pcopy = strdup(path);
    /* Room for the item first, so that nothing can fail once the file exists. */
    if (tmp == NULL || pcopy == NULL ||
        grow((void **)&t->items, t->nitems, &t->capitems, sizeof(*t->items)) != 0) {
        snprintf(err, errlen, "%s: out of memory", path);
        goto out;
    }
    /* Leading '.': names never start with one, so a temporary never
     * collides with an output, and `ls` hides leftovers of a killed run. */
    snprintf(tmp, tlen, "%s/.%s.tmp-XXXXXX", dir, base);
    fd = mkstemp(tmp); /* O_CREAT|O_EXCL, mode 0600 */
    if (fd < 0) {
        snprintf(err, errlen, "%s: cannot create a temporary file in %s: %s", path, dir,
                 strerror(errno));
        goto out;
    }
    made = 1;
    if (write_all(fd, data, len) != 0) {
        snprintf(err, errlen, "%s: cannot write: %s", path, strerror(errno));
        goto out;
    }
    if (fchmod(fd, mode) != 0) {
        snprintf(err, errlen, "%s: cannot set mode: %s", path, strerror(errno));
        goto out;
    }
    if (fsync(fd) != 0) {
        snprintf(err, errlen, "%s: cannot fsync: %s", path, strerror(errno));
        goto out;
    }
    rc = close(fd);
    fd = -1;
    if (rc != 0) {
        rc = -1;
        snprintf(err, errlen, "%s: cannot write: %s", path, strerror(errno));
        goto out;
    }
    t->items[t->nitems].op = TXN_PUT;
    t->items[t->nitems].path = pcopy;
    t->items[t->nitems].tmp = tmp;
    t->items[t->nitems].bak = NULL;
    t->items[t->nitems].late = late;
    t->items[t->nitems].applied = 0;
    t->nitems++;
    pcopy = NULL;
    tmp = NULL;
out:
    if (fd >= 0)
        close(fd);
    if (made && rc != 0)
        unlink(tmp); /* a failed stage leaves no temporary behind */
    free(dir);
    free(tmp);
    free(pcopy);
    return rc;
}

int ct_txn_put(struct ct_txn *t, const char *path, const void *data, size_t len, mode_t mode,
               char *err, size_t errlen)
{
    return txn_put(t, path, data, len, mode, 0, err, errlen);
}

int ct_txn_remove(struct ct_txn *t, const char *path, char *err, size_t errlen)
{
    char *pcopy;

    if (txn_has(t, path)) {
        snprintf(err, errlen, "%s: written twice in one command", path);
        return -1;
    }
    if ((pcopy = strdup(path)) == NULL ||
        grow((void **)&t->items, t->nitems, &t->capitems, sizeof(*t->items)) != 0) {
        free(pcopy);
        snprintf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    t->items[t->nitems].op = TXN_REMOVE;
    t->items[t->nitems].path = pcopy;
    t->items[t->nitems].tmp = NULL;
    t->items[t->nitems].bak = NULL;
    t->items[t->nitems].late = 0;
    t->items[t->nitems].applied = 0;
    t->nitems++;
    return 0;
}

int ct_txn_mkdir(struct ct_txn *t, const char *path, mode_t mode, char *err, size_t errlen)
{
    struct stat st;
    char *pcopy = NULL;
    int created = 0;

    if (mkdir(path, mode) == 0) {
        created = 1;
        if (chmod(path, mode) != 0) { /* mkdir's mode went through the umask */
            snprintf(err, errlen, "%s: cannot set mode: %s", path, strerror(errno));
            rmdir(path);
            return -1;
        }
    } else if (errno != EEXIST) {
        snprintf(err, errlen, "%s: cannot create directory: %s", path, strerror(errno));
        return -1;
    } else if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "%s: exists and is not a directory", path);
        return -1;
    }
    if ((pcopy = strdup(path)) == NULL ||
        grow((void **)&t->dirs, t->ndirs, &t->capdirs, sizeof(*t->dirs)) != 0) {
        free(pcopy);
        if (created)
            rmdir(path);
        snprintf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    t->dirs[t->ndirs].path = pcopy;
    t->dirs[t->ndirs].mode = mode;
    t->dirs[t->ndirs].created = created;
    t->ndirs++;
    return 0;
}

/* fsync a directory so that renames in it survive a crash. */
static int fsync_dir(const char *dir, char *err, size_t errlen)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = 0;

    if (fd < 0 || fsync(fd) != 0) {
        snprintf(err, errlen, "%s: cannot fsync directory: %s", dir, strerror(errno));
        rc = -1;
    }
    if (fd >= 0)
        close(fd);
    return rc;
}

/* Copies the file src into the open file fd (a fallback where hard links fail); 0 / -1 with errno. */
static int copy_into(const char *src, int fd)
{
    char buf[8192];
    int in = open(src, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    ssize_t r;
    int rc = -1;

    if (in < 0)
        return -1;
    for (;;) {
        r = read(in, buf, sizeof(buf));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        if (write_all(fd, buf, (size_t)r) != 0)
            goto out;
    }
    if (r == 0)
        rc = 0;
out:
    close(in);
    return rc;
}

/*
 * Keeps the current target of it, when there is one, in it->bak (a hidden
 * file beside it) for a rollback, without changing what readers of the
 * target see. For a PUT, a hard link to the target (a copy with the same
 * mode where links fail); for a REMOVE, an empty file the removal will
 * rename the target onto. 0 / -1 with err set and nothing left behind.
 */
static int keep_old(struct txn_item *it, char *err, size_t errlen)
{
    struct stat st;
    const char *base;
    char *dir = NULL, *bak = NULL;
    size_t blen;
    int fd = -1, rc = -1;

    if (lstat(it->path, &st) != 0) {
        if (errno == ENOENT)
            return 0;
        snprintf(err, errlen, "%s: cannot stat: %s", it->path, strerror(errno));
        return -1;
    }
    if ((dir = dir_of(it->path, &base)) == NULL ||
        (bak = malloc(blen = strlen(dir) + strlen(base) + 16)) == NULL) {
        snprintf(err, errlen, "%s: out of memory", it->path);
        goto out;
    }
    snprintf(bak, blen, "%s/.%s.old-XXXXXX", dir, base);
    if ((fd = mkstemp(bak)) < 0) {
        snprintf(err, errlen, "%s: cannot create a file in %s: %s", it->path, dir,
                 strerror(errno));
        goto out;
    }
    if (it->op == TXN_PUT) {
        /* mkstemp reserved a unique name; a hard link there keeps the old file as it is. */
        close(fd);
        fd = -1;
        if (unlink(bak) != 0 || link(it->path, bak) != 0) {
            /* No hard links on this file system (or this file): a copy, same mode. */
            if (!S_ISREG(st.st_mode) ||
                (fd = open(bak, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0 ||
                copy_into(it->path, fd) != 0 || fchmod(fd, st.st_mode & 07777) != 0 ||
                fsync(fd) != 0) {
                snprintf(err, errlen, "%s: cannot keep the old file for a rollback: %s", it->path,
                         S_ISREG(st.st_mode) ? strerror(errno) : "not a regular file");
                unlink(bak);
                goto out;
            }
        }
    }
    it->bak = bak;
    bak = NULL;
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    free(dir);
    free(bak);
    return rc;
}
/* fsyncs each distinct directory of t's items once, then the parents of the directories it made. */
static int fsync_dirs(const struct ct_txn *t, char *err, size_t errlen)
{
    size_t i, j;
    const char *base;

    for (i = 0; i < t->nitems; i++) {
        char *dir = dir_of(t->items[i].path, &base);
        int seen = 0;

        if (dir == NULL) {
            snprintf(err, errlen, "%s: out of memory", t->items[i].path);
            return -1;
        }
        for (j = 0; j < i && !seen; j++) {
            const char *b2;
            char *d2 = dir_of(t->items[j].path, &b2);

            seen = d2 != NULL && strcmp(d2, dir) == 0;
            free(d2);
        }
        if (!seen && fsync_dir(dir, err, errlen) != 0) {
            free(dir);
            return -1;
        }
        free(dir);
    }
    for (i = 0; i < t->ndirs; i++) {
        char *parent;

        if (!t->dirs[i].created)
            continue;
        if ((parent = dir_of(t->dirs[i].path, &base)) == NULL) {
            snprintf(err, errlen, "%s: out of memory", t->dirs[i].path);
            return -1;
        }
        if (fsync_dir(parent, err, errlen) != 0) {
            free(parent);
            return -1;
        }
        free(parent);
    }
    return 0;
}

/* Makes one item visible: the rename into place, or the removal (onto its backup). */
static int txn_apply(struct txn_item *it, char *err, size_t errlen)
{
    if (it->op == TXN_PUT) {
        if (rename(it->tmp, it->path) != 0) {
            snprintf(err, errlen, "%s: cannot rename into place: %s", it->path, strerror(errno));
            return -1;
        }
        free(it->tmp);
        it->tmp = NULL;
    } else if (it->bak != NULL && rename(it->path, it->bak) != 0) {
        snprintf(err, errlen, "%s: cannot remove: %s", it->path, strerror(errno));
        return -1;
    }
    /* A REMOVE without a backup: the path did not exist, nothing to do. */
    it->applied = 1;
    return 0;
}

/*
 * Undoes the applied items of order[0..n), newest first: a backup goes back
 * over its target, a file that did not exist before is unlinked. Appends
 * the outcome to err (which holds why the commit failed).
 */
static void txn_rollback(struct ct_txn *t, const size_t *order, size_t n, char *err,
                         size_t errlen)
{
    char first[256] = "", scratch[CT_ERR_MAX];
    size_t k, left = 0, used = strlen(err);

    for (k = n; k-- > 0;) {
        struct txn_item *it = &t->items[order[k]];
        int rc = 0;

        if (!it->applied)
            continue;
        if (it->bak != NULL) {
            if ((rc = rename(it->bak, it->path)) == 0) {
                free(it->bak);
                it->bak = NULL;
            }
        } else if (it->op == TXN_PUT && unlink(it->path) != 0 && errno != ENOENT) {
            rc = -1;
        }
        if (rc == 0) {
            it->applied = 0;
        } else if (left++ == 0) {
            snprintf(first, sizeof(first), "%.200s: %s", it->path, strerror(errno));
        }
    }
    (void)fsync_dirs(t, scratch, sizeof(scratch)); /* best effort: the error is already said */
    if (used >= errlen)
        return;
    if (left == 0)
        snprintf(err + used, errlen - used, "; nothing was changed");
    else
        snprintf(err + used, errlen - used,
                 "; could not undo %zu of the changes made before (first: %s; hidden "
                 ".NAME.old-* files beside them hold the previous contents)", left, first);
}

int ct_txn_commit(struct ct_txn *t, char *err, size_t errlen)
{
    struct stat st;
    size_t i, n = 0, *order = NULL;
    int late, rc = -1;

    /* Everything that can be checked is checked before the first rename. */
    for (i = 0; i < t->nitems; i++) {
        if (lstat(t->items[i].path, &st) == 0 && S_ISDIR(st.st_mode)) {
            snprintf(err, errlen, "%s: is a directory", t->items[i].path);
            return -1;
        }
    }
    for (i = 0; i < t->ndirs; i++) {
        if (!t->dirs[i].created && chmod(t->dirs[i].path, t->dirs[i].mode) != 0) {
            snprintf(err, errlen, "%s: cannot set mode: %s", t->dirs[i].path, strerror(errno));
            return -1;
        }
    }
    /* The order: staging order, the late items (the indexes) last. */
    if ((order = malloc((t->nitems ? t->nitems : 1) * sizeof(*order))) == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (late = 0; late <= 1; late++)
        for (i = 0; i < t->nitems; i++)
            if (t->items[i].late == late)
                order[n++] = i;
    /* The previous targets are kept aside until every change is made... */
    for (i = 0; i < n; i++)
        if (keep_old(&t->items[order[i]], err, errlen) != 0)
            goto out;
    for (i = 0; i < n; i++) {
        if (txn_apply(&t->items[order[i]], err, errlen) != 0) {
            /* ...so that one failure undoes the changes before it. */
            txn_rollback(t, order, i, err, errlen);
            goto out;
        }
    }
    t->committed = 1;
    rc = 0;
out:
    /* Backups no longer needed: all of them after a commit (a removed file's
     * is the removal), else those of items not changed or changed back. */
    for (i = 0; i < t->nitems; i++) {
        struct txn_item *it = &t->items[i];

        if (it->bak != NULL && (rc == 0 || !it->applied)) {
            unlink(it->bak);
            free(it->bak);
            it->bak = NULL;
        }
    }
    free(order);
    /* fsync each directory touched: the renames are durable after this. */
    if (rc == 0 && fsync_dirs(t, err, errlen) != 0)
        rc = -1;
    return rc;
}

void ct_txn_free(struct ct_txn *t)
{
    size_t i;

    if (t == NULL)
        return;
    for (i = 0; i < t->nitems; i++) {
        if (t->items[i].tmp != NULL)
            unlink(t->items[i].tmp);
        free(t->items[i].tmp);
        free(t->items[i].bak); /* left only when a rollback failed: its file stays */
        free(t->items[i].path);
    }
    /* Newest first, so that children go before their parents. */
    for (i = t->ndirs; i-- > 0;) {
        if (!t->committed && t->dirs[i].created)
            rmdir(t->dirs[i].path);
        free(t->dirs[i].path);
    }
    free(t->items);
    free(t->dirs);
    free(t);
}

/* ---- reading small files ----------------------------------------------- */

int ct_read_file(const char *path, size_t max, char **out, size_t *len, char *err, size_t errlen)
{
    struct stat st;
    char *buf = NULL;
    size_t got = 0;
    int fd, rc = -1;

    *out = NULL;
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
        snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s: not a regular file", path);
        goto out;
    }
    if ((size_t)st.st_size > max) {
        snprintf(err, errlen, "%s: larger than %zu bytes", path, max);
        goto out;
    }
    if ((buf = malloc((size_t)st.st_size + 1)) == NULL) {
        snprintf(err, errlen, "%s: out of memory", path);
        goto out;
    }
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);

        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
            goto out;
        }
        if (r == 0)
            break; /* shrank while reading: take what is there */
        got += (size_t)r;
    }
    buf[got] = '\0';
    *out = buf;
    buf = NULL;
    if (len != NULL)
        *len = got;
    rc = 0;
out:
    free(buf);
    close(fd);
    return rc;
}

/* ---- serialisation helpers ---------------------------------------------- */

int ct_bio_take(BIO *bio, char **out, size_t *len, const char *what, char *err, size_t errlen)
{
    char *data;
    long n = BIO_get_mem_data(bio, &data);

    if (n < 0 || (*out = malloc((size_t)n + 1)) == NULL) {
        snprintf(err, errlen, "%s: out of memory", what);
        return -1;
    }
    memcpy(*out, data, (size_t)n);
    (*out)[n] = '\0';
    *len = (size_t)n;
    return 0;
}

int ct_pem_certs(X509 *const *certs, size_t n, char **out, size_t *len, char *err, size_t errlen)
{
    BIO *bio = BIO_new(BIO_s_mem());
    size_t i;
    int rc = -1;

    *out = NULL;
    if (bio == NULL) {
        tls_err_set(err, errlen, "certificate PEM: out of memory");
        goto out;
    }
    for (i = 0; i < n; i++) {
        if (!PEM_write_bio_X509(bio, certs[i])) {
            tls_err_set(err, errlen, "cannot encode certificate as PEM");
            goto out;
        }
    }
    rc = ct_bio_take(bio, out, len, "certificate PEM", err, errlen);
out:
    BIO_free(bio);
    return rc;
}

int ct_pem_key(EVP_PKEY *key, char **out, size_t *len, char *err, size_t errlen)
{
    BIO *bio = BIO_new(BIO_s_mem());
    int rc = -1;

    *out = NULL;
    if (bio == NULL || !PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL)) {
        tls_err_set(err, errlen, "cannot encode private key as PEM");
        goto out;
    }
    rc = ct_bio_take(bio, out, len, "private key PEM", err, errlen);
out:
    BIO_free(bio);
    return rc;
}

int ct_pem_crl(X509_CRL *crl, char **out, size_t *len, char *err, size_t errlen)
{
    BIO *bio = BIO_new(BIO_s_mem());
    int rc = -1;

    *out = NULL;
    if (bio == NULL || !PEM_write_bio_X509_CRL(bio, crl)) {
        tls_err_set(err, errlen, "cannot encode CRL as PEM");
        goto out;
    }
    rc = ct_bio_take(bio, out, len, "CRL PEM", err, errlen);
out:
    BIO_free(bio);
    return rc;
}

/*
 * Stages DIR/rel with data (what every ct_*_stage ends with); late: committed
 * after the other files (the indexes, see ct_txn_commit).
 */
static int stage_rel(struct ct_txn *t, const char *dir, const char *rel, const char *data,
                     size_t len, mode_t mode, int late, char *err, size_t errlen)
{
    char path[CT_PATH_MAX];

    if (ct_path(path, dir, rel, err, errlen) != 0)
        return -1;
    return txn_put(t, path, data, len, mode, late, err, errlen);
}

int ct_stage_certs(struct ct_txn *t, const char *dir, const char *rel, X509 *const *certs,
                   size_t n, char *err, size_t errlen)
{
    char *pem = NULL;
    size_t len = 0;
    int rc = -1;

    if (ct_pem_certs(certs, n, &pem, &len, err, errlen) == 0)
        rc = stage_rel(t, dir, rel, pem, len, 0644, 0, err, errlen);
    free(pem);
    return rc;
}

int ct_stage_key(struct ct_txn *t, const char *dir, const char *rel, EVP_PKEY *key, char *err,
                 size_t errlen)
{
    char *pem = NULL;
    size_t len = 0;
    int rc = -1;

    if (ct_pem_key(key, &pem, &len, err, errlen) == 0)
        rc = stage_rel(t, dir, rel, pem, len, 0600, 0, err, errlen);
    if (pem != NULL)
        OPENSSL_cleanse(pem, len);
    free(pem);
    return rc;
}

/* ---- the PKI directory --------------------------------------------------- */

int ct_dir_lock(const char *dir, int create, int *created, char *err, size_t errlen)
{
    int fd, i;

    if (created != NULL)
        *created = 0;
    if (create) {
        if (mkdir(dir, 0755) == 0) {
            if (created != NULL)
                *created = 1;
        } else if (errno != EEXIST) {
            snprintf(err, errlen, "%s: cannot create directory: %s", dir, strerror(errno));
            return -1;
        }
    }
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            snprintf(err, errlen, "%s: no PKI directory (run certs-tool init, or pass --dir)", dir);
        else if (errno == ENOTDIR)
            snprintf(err, errlen, "%s: not a directory", dir);
        else
            snprintf(err, errlen, "%s: cannot open: %s", dir, strerror(errno));
        goto fail;
    }
    /* Wait up to 10 s for another certs-tool run on the same PKI to finish. */
    for (i = 0; flock(fd, LOCK_EX | LOCK_NB) != 0; i++) {
        if ((errno != EWOULDBLOCK && errno != EINTR) || i >= 100) {
            snprintf(err, errlen, "%s: cannot lock (another certs-tool run?): %s", dir,
                     strerror(errno));
            close(fd);
            goto fail;
        }
        usleep(100 * 1000);
    }
    return fd;
fail:
    if (created != NULL && *created) {
        rmdir(dir);
        *created = 0;
    }
    return -1;
}

/* Loads DIR/rel as a certificate (and DIR/private/key_rel as its key when asked). */
static int load_ca(struct ct_ca *ca, const char *dir, const char *rel, const char *key_rel,
                   int want_key, char *err, size_t errlen)
{
    char path[CT_PATH_MAX];

    if (ct_path(path, dir, rel, err, errlen) != 0 ||
        tls_pem_load_cert(path, &ca->cert, err, errlen) != 0)
        return -1;
    if (!want_key)
        return 0;
    if (ct_path(path, dir, key_rel, err, errlen) != 0 ||
        tls_pem_load_key(path, &ca->key, err, errlen) != 0)
        return -1;
    if (!tls_x509_key_matches(ca->cert, ca->key)) {
        snprintf(err, errlen, "%s: does not match the certificate %s/%s", path, dir, rel);
        return -1;
    }
    return 0;
}

static int load_generations(struct ct_pki *pki, unsigned keys, char *err, size_t errlen);

int ct_pki_open(struct ct_pki *pki, const char *dir, unsigned keys, char *err, size_t errlen)
{
    char path[CT_PATH_MAX];

    memset(pki, 0, sizeof(*pki));
    pki->lock_fd = -1;
    if (snprintf(pki->dir, sizeof(pki->dir), "%s", dir) >= (int)sizeof(pki->dir)) {
        snprintf(err, errlen, "%.200s: path too long", dir);
        return -1;
    }
    if ((pki->lock_fd = ct_dir_lock(dir, 0, NULL, err, errlen)) < 0)
        return -1;
    pki->locked = 1;
    if (ct_path(path, dir, "root.crt", err, errlen) != 0)
        goto fail;
    if (!ct_exists(path)) {
        snprintf(err, errlen, "%s: no PKI here (root.crt missing; run certs-tool init)", dir);
        goto fail;
    }
    if (load_ca(&pki->root, dir, "root.crt", "private/root.key", keys & CT_PKI_KEY_ROOT,
                err, errlen) != 0 ||
        load_ca(&pki->client_ca, dir, "client-ca.crt", "private/client-ca.key",
                keys & CT_PKI_KEY_CLIENT, err, errlen) != 0 ||
        load_ca(&pki->server_ca, dir, "server-ca.crt", "private/server-ca.key",
                keys & CT_PKI_KEY_SERVER, err, errlen) != 0)
        goto fail;
    if (X509_check_issued(pki->root.cert, pki->client_ca.cert) != X509_V_OK) {
        snprintf(err, errlen, "%s/client-ca.crt: not issued by %s/root.crt", dir, dir);
        goto fail;
    }
    if (X509_check_issued(pki->root.cert, pki->server_ca.cert) != X509_V_OK) {
        snprintf(err, errlen, "%s/server-ca.crt: not issued by %s/root.crt", dir, dir);
        goto fail;
    }
    if (load_generations(pki, keys, err, errlen) != 0)
        goto fail;
    return 0;
fail:
    ct_pki_close(pki);
    return -1;
}

void ct_pki_close(struct ct_pki *pki)
{
    struct ct_ca *cas[3];
    int i;

    if (pki == NULL)
        return;
    cas[0] = &pki->root;
    cas[1] = &pki->client_ca;
    cas[2] = &pki->server_ca;
    for (i = 0; i < 3; i++) {
        X509_free(cas[i]->cert);
        EVP_PKEY_free(cas[i]->key);
        cas[i]->cert = NULL;
        cas[i]->key = NULL;
    }
    ct_gens_free(&pki->gens);
    if (pki->locked)
        close(pki->lock_fd); /* drops the flock */
    pki->locked = 0;
    pki->lock_fd = -1;
}

/* ---- revocation reasons ---------------------------------------------------- */

static const struct {
    const char *name;
    int code;
} reasons[] = {
    {"unspecified", CRL_REASON_UNSPECIFIED},
    {"keyCompromise", CRL_REASON_KEY_COMPROMISE},
    {"caCompromise", CRL_REASON_CA_COMPROMISE},
    {"affiliationChanged", CRL_REASON_AFFILIATION_CHANGED},
    {"superseded", CRL_REASON_SUPERSEDED},
    {"cessationOfOperation", CRL_REASON_CESSATION_OF_OPERATION},
    {"privilegeWithdrawn", CRL_REASON_PRIVILEGE_WITHDRAWN},
};

int ct_reason_code(const char *name)
{
    size_t i;

    for (i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
        if (strcasecmp(name, reasons[i].name) == 0)
            return reasons[i].code;
    return -1;
}

int ct_reason_parse(const char *name, int *code, char *err, size_t errlen)
{
    char q[96];

    if ((*code = ct_reason_code(name)) < 0) {
        snprintf(err, errlen, "unknown reason '%s' (%s)", ct_quote(name, q, sizeof(q)),
                 ct_reason_list());
        return -1;
    }
    return 0;
}

const char *ct_reason_name(int code)
{
    size_t i;

    for (i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
        if (reasons[i].code == code)
            return reasons[i].name;
    return NULL;
}

const char *ct_reason_list(void)
{
    return "unspecified, keyCompromise, caCompromise, affiliationChanged, superseded, "
           "cessationOfOperation, privilegeWithdrawn";
}

/* ---- the index --------------------------------------------------------------- */

#define INDEX_HEADER "# serial\tname\tkind\tnot-after\tstatus\trevoked-at\treason\tca-gen\n"
#define INDEX_MAX (64u * 1024 * 1024)

/* "YYYY-MM-DDTHH:MM:SSZ" */
static void fmt_time(time_t t, char buf[32])
{
    struct tm tm;

    if (gmtime_r(&t, &tm) == NULL || strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, 32, "?");
}

/* Parses fmt_time's output strictly (it must format back to the same text). */
static int parse_time(const char *s, time_t *out)
{
    struct tm tm;
    int n = 0;
    char again[32];

    memset(&tm, 0, sizeof(tm));
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2dZ%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
               &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 6 || s[n] != '\0')
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    *out = timegm(&tm);
    fmt_time(*out, again);
    return strcmp(again, s) == 0 ? 0 : -1;
}

/* 1..CT_SERIAL_HEX_MAX uppercase hex digits. */
static int serial_ok(const char *s)
{
    size_t n = strlen(s), i;

    if (n == 0 || n > CT_SERIAL_HEX_MAX)
        return 0;
    for (i = 0; i < n; i++)
        if (!isdigit((unsigned char)s[i]) && !(s[i] >= 'A' && s[i] <= 'F'))
            return 0;
    return 1;
}

/* A generation number: 1..CT_GEN_MAX in plain decimal (no sign, no leading zero). */
static int parse_gen(const char *s, int *out)
{
    long v = 0;
    size_t i, n = strlen(s);

    if (n == 0 || n > 6 || s[0] == '0')
        return -1;
    for (i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    if (v < 1 || v > CT_GEN_MAX)
        return -1;
    *out = (int)v;
    return 0;
}

/*
 * Cuts line at its tabs into f (room for max): returns the number of
 * fields, max meaning "max or more" (the last one then keeps the rest).
 */
static int split_tabs(char *line, char **f, int max)
{
    char *p = line, *tab;
    int nf = 0;

    while (nf < max) {
        f[nf++] = p;
        if ((tab = strchr(p, '\t')) == NULL)
            break;
        *tab = '\0';
        p = tab + 1;
    }
    return nf;
}

/*
 * Runs one() on each data line of a table file's text (index.tsv, cas.tsv):
 * NUL-terminated, without its newline, with its 1-based number; comment
 * ('#') and empty lines are skipped. A NUL byte or a last line without a
 * newline is an error naming path; so is the first line one() refuses (it
 * sets err).
 */
static int each_line(const char *text, size_t len, const char *path,
                     int (*one)(char *line, const char *path, int lineno, void *arg, char *err,
                                size_t errlen),
                     void *arg, char *err, size_t errlen)
{
    char *copy, *line, *next;
    int lineno = 0, rc = -1;

    if (memchr(text, '\0', len) != NULL) {
        snprintf(err, errlen, "%s: contains a NUL byte", path);
        return -1;
    }
    if ((copy = strndup(text, len)) == NULL) {
        snprintf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    for (line = copy; line != NULL && *line != '\0'; line = next) {
        lineno++;
        if ((next = strchr(line, '\n')) != NULL)
            *next++ = '\0';
        else {
            snprintf(err, errlen, "%s:%d: last line has no newline (truncated write?)", path,
                     lineno);
            goto out;
        }
        if (line[0] == '#' || line[0] == '\0')
            continue;
        if (one(line, path, lineno, arg, err, errlen) != 0)
            goto out;
    }
    rc = 0;
out:
    free(copy);
    return rc;
}

/* Parses one data line (already NUL-terminated, no newline) into e. */
static int parse_line(char *line, const char *path, int lineno, struct ct_index_entry *e,
                      char *err, size_t errlen)
{
    char *f[9];
    char why[CT_ERR_MAX], q[96];
    int nf = split_tabs(line, f, 9);

    /* 7 fields: a line written before generations existed (generation 1). */
    if (nf != 7 && nf != 8) {
        snprintf(err, errlen, "%s:%d: expected 8 tab-separated fields, found %s", path, lineno,
                 nf > 8 ? "more" : (nf == 1 ? "1" : "fewer"));
        return -1;
    }
    memset(e, 0, sizeof(*e));
    e->reason = -1;
    e->ca_gen = 1;
    if (nf == 8 && parse_gen(f[7], &e->ca_gen) != 0) {
        snprintf(err, errlen, "%s:%d: bad ca-gen '%s'", path, lineno, ct_quote(f[7], q, sizeof(q)));
        return -1;
    }
    if (!serial_ok(f[0])) {
        snprintf(err, errlen, "%s:%d: bad serial '%s'", path, lineno, ct_quote(f[0], q, sizeof(q)));
        return -1;
    }
    memcpy(e->serial, f[0], strlen(f[0]) + 1);
    if (ct_name_check(f[1], why, sizeof(why)) != 0) {
        snprintf(err, errlen, "%s:%d: %s", path, lineno, why);
        return -1;
    }
    memcpy(e->name, f[1], strlen(f[1]) + 1);
    if (ct_kind_parse(f[2], &e->kind) != 0) {
        snprintf(err, errlen, "%s:%d: bad kind '%s' (client or server)", path, lineno,
                 ct_quote(f[2], q, sizeof(q)));
        return -1;
    }
    if (parse_time(f[3], &e->not_after) != 0) {
        snprintf(err, errlen, "%s:%d: bad not-after '%s'", path, lineno,
                 ct_quote(f[3], q, sizeof(q)));
        return -1;
    }
    if (strcmp(f[4], "valid") == 0) {
        e->status = CT_STATUS_VALID;
        if (strcmp(f[5], "-") != 0 || strcmp(f[6], "-") != 0) {
            snprintf(err, errlen, "%s:%d: a valid entry has a revocation time or reason", path,
                     lineno);
            return -1;
        }
    } else if (strcmp(f[4], "revoked") == 0) {
        e->status = CT_STATUS_REVOKED;
        if (parse_time(f[5], &e->revoked_at) != 0) {
            snprintf(err, errlen, "%s:%d: bad revoked-at '%s'", path, lineno,
                     ct_quote(f[5], q, sizeof(q)));
            return -1;
        }
        if ((e->reason = ct_reason_code(f[6])) < 0) {
            snprintf(err, errlen, "%s:%d: bad reason '%s'", path, lineno,
                     ct_quote(f[6], q, sizeof(q)));
            return -1;
        }
    } else {
        snprintf(err, errlen, "%s:%d: bad status '%s' (valid or revoked)", path, lineno,
                 ct_quote(f[4], q, sizeof(q)));
        return -1;
    }
    return 0;
}

/* each_line's step for index.tsv: one entry, appended to the index arg. */
static int index_line(char *line, const char *path, int lineno, void *arg, char *err,
                      size_t errlen)
{
    struct ct_index *idx = arg;
    struct ct_index_entry e;
    size_t i;

    if (parse_line(line, path, lineno, &e, err, errlen) != 0)
        return -1;
    for (i = 0; i < idx->n; i++) {
        if (strcmp(idx->v[i].serial, e.serial) == 0) {
            snprintf(err, errlen, "%s:%d: serial %s listed twice", path, lineno, e.serial);
            return -1;
        }
    }
    return ct_index_add(idx, &e, err, errlen);
}

int ct_index_parse(const char *text, size_t len, const char *path, struct ct_index *idx,
                   char *err, size_t errlen)
{
    memset(idx, 0, sizeof(*idx));
    if (each_line(text, len, path, index_line, idx, err, errlen) != 0) {
        ct_index_free(idx);
        return -1;
    }
    return 0;
}

int ct_index_load(const char *dir, struct ct_index *idx, char *err, size_t errlen)
{
    char path[CT_PATH_MAX], *text = NULL;
    size_t len = 0;
    int rc;

    memset(idx, 0, sizeof(*idx));
    if (ct_path(path, dir, "index.tsv", err, errlen) != 0 ||
        ct_read_file(path, INDEX_MAX, &text, &len, err, errlen) != 0)
        return -1;
    rc = ct_index_parse(text, len, path, idx, err, errlen);
    free(text);
    return rc;
}

int ct_index_format(const struct ct_index *idx, char **out, size_t *len, char *err, size_t errlen)
{
    /* serial(40) + name(64) + kind + 2 times + status + reason, tabs: < 256 */
    size_t cap = sizeof(INDEX_HEADER) + idx->n * 256, used;
    char *buf = malloc(cap);
    size_t i;

    *out = NULL;
    if (buf == NULL) {
        snprintf(err, errlen, "index: out of memory");
        return -1;
    }
    used = (size_t)snprintf(buf, cap, "%s", INDEX_HEADER);
    for (i = 0; i < idx->n; i++) {
        const struct ct_index_entry *e = &idx->v[i];
        char na[32], ra[32];
        const char *reason = "-";
        int n;

        fmt_time(e->not_after, na);
        if (e->status == CT_STATUS_REVOKED) {
            fmt_time(e->revoked_at, ra);
            reason = ct_reason_name(e->reason);
            if (reason == NULL) {
                free(buf);
                snprintf(err, errlen, "index: serial %s: unknown reason code %d", e->serial,
                         e->reason);
                return -1;
            }
        } else {
            snprintf(ra, sizeof(ra), "-");
        }
        n = snprintf(buf + used, cap - used, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\n", e->serial,
                     e->name, ct_kind_name(e->kind), na,
                     e->status == CT_STATUS_REVOKED ? "revoked" : "valid", ra, reason,
                     e->ca_gen > 0 ? e->ca_gen : 1);
        if (n < 0 || (size_t)n >= cap - used) {
            free(buf);
            snprintf(err, errlen, "index: entry %s does not fit", e->serial);
            return -1;
        }
        used += (size_t)n;
    }
    *out = buf;
    *len = used;
    return 0;
}

int ct_index_stage(struct ct_txn *t, const char *dir, const struct ct_index *idx, char *err,
                   size_t errlen)
{
    char *text = NULL;
    size_t len = 0;
    int rc = -1;

    if (ct_index_format(idx, &text, &len, err, errlen) == 0)
        rc = stage_rel(t, dir, "index.tsv", text, len, 0644, 1, err, errlen);
    free(text);
    return rc;
}

int ct_index_add(struct ct_index *idx, const struct ct_index_entry *e, char *err, size_t errlen)
{
    if (grow((void **)&idx->v, idx->n, &idx->cap, sizeof(*idx->v)) != 0) {
        snprintf(err, errlen, "index: out of memory");
        return -1;
    }
    idx->v[idx->n++] = *e;
    return 0;
}

struct ct_index_entry *ct_index_find_valid(struct ct_index *idx, const char *name,
                                           enum ct_kind kind)
{
    size_t i;

    for (i = idx->n; i-- > 0;) {
        struct ct_index_entry *e = &idx->v[i];

        if (e->kind == kind && e->status == CT_STATUS_VALID && strcmp(e->name, name) == 0)
            return e;
    }
    return NULL;
}

void ct_index_free(struct ct_index *idx)
{
    if (idx == NULL)
        return;
    free(idx->v);
    idx->v = NULL;
    idx->n = idx->cap = 0;
}

/* ---- generations of the intermediates (cas.tsv) ------------------------------ */

#define GENS_HEADER "# kind\tgeneration\tserial\tnot-after\tstatus\tretired-at\trevoked-at\treason\n"
#define GENS_MAX (1024u * 1024)

static const char *const gen_status_names[] = {"current", "previous", "retired"};

const char *ct_gen_status_name(enum ct_gen_status st)
{
    return (unsigned)st < 3 ? gen_status_names[st] : "?";
}

const char *ct_gen_cert_rel(char buf[CT_REL_MAX], enum ct_kind kind, int gen)
{
    snprintf(buf, CT_REL_MAX, "cas/%s-ca.%d.crt", ct_kind_name(kind), gen);
    return buf;
}

const char *ct_gen_key_rel(char buf[CT_REL_MAX], enum ct_kind kind, int gen)
{
    snprintf(buf, CT_REL_MAX, "private/%s-ca.%d.key", ct_kind_name(kind), gen);
    return buf;
}

const char *ct_chain_file(enum ct_kind kind)
{
    return kind == CT_KIND_SERVER ? "server-chain.crt" : "client-chain.crt";
}

/* "-" or a time in fmt_time's format; 0 / -1. */
static int parse_opt_time(const char *s, time_t *out)
{
    *out = 0;
    if (strcmp(s, "-") == 0)
        return 0;
    return parse_time(s, out);
}

/* Parses one cas.tsv data line into g (whose ca is left empty). */
static int parse_gen_line(char *line, const char *path, int lineno, struct ct_gen *g, char *err,
                          size_t errlen)
{
    char *f[9], q[96];
    int nf = split_tabs(line, f, 9), st;

    if (nf != 8) {
        snprintf(err, errlen, "%s:%d: expected 8 tab-separated fields, found %s", path, lineno,
                 nf > 8 ? "more" : "fewer");
        return -1;
    }
    memset(g, 0, sizeof(*g));
    g->reason = -1;
    if (ct_kind_parse(f[0], &g->kind) != 0) {
        snprintf(err, errlen, "%s:%d: bad kind '%s' (client or server)", path, lineno,
                 ct_quote(f[0], q, sizeof(q)));
        return -1;
    }
    if (parse_gen(f[1], &g->gen) != 0) {
        snprintf(err, errlen, "%s:%d: bad generation '%s'", path, lineno,
                 ct_quote(f[1], q, sizeof(q)));
        return -1;
    }
    if (!serial_ok(f[2])) {
        snprintf(err, errlen, "%s:%d: bad serial '%s'", path, lineno, ct_quote(f[2], q, sizeof(q)));
        return -1;
    }
    memcpy(g->serial, f[2], strlen(f[2]) + 1);
    if (parse_time(f[3], &g->not_after) != 0) {
        snprintf(err, errlen, "%s:%d: bad not-after '%s'", path, lineno,
                 ct_quote(f[3], q, sizeof(q)));
        return -1;
    }
    for (st = 0; st < 3 && strcmp(f[4], gen_status_names[st]) != 0; st++)
        ;
    if (st == 3) {
        snprintf(err, errlen, "%s:%d: bad status '%s' (current, previous or retired)", path,
                 lineno, ct_quote(f[4], q, sizeof(q)));
        return -1;
    }
    g->status = (enum ct_gen_status)st;
    if (parse_opt_time(f[5], &g->retired_at) != 0 || parse_opt_time(f[6], &g->revoked_at) != 0) {
        snprintf(err, errlen, "%s:%d: bad retired-at or revoked-at", path, lineno);
        return -1;
    }
    if (strcmp(f[7], "-") != 0 && (g->reason = ct_reason_code(f[7])) < 0) {
        snprintf(err, errlen, "%s:%d: bad reason '%s'", path, lineno, ct_quote(f[7], q, sizeof(q)));
        return -1;
    }
    if ((g->status == CT_GEN_RETIRED) != (g->retired_at != 0) ||
        (g->revoked_at != 0) != (g->reason >= 0)) {
        snprintf(err, errlen, "%s:%d: status, retired-at, revoked-at and reason disagree", path,
                 lineno);
        return -1;
    }
    if (g->revoked_at != 0 && g->status != CT_GEN_RETIRED) {
        snprintf(err, errlen, "%s:%d: a revoked generation must be retired", path, lineno);
        return -1;
    }
    return 0;
}

/* each_line's step for cas.tsv: one generation, appended to the registry arg. */
static int gens_line(char *line, const char *path, int lineno, void *arg, char *err,
                     size_t errlen)
{
    struct ct_gens *gens = arg;
    struct ct_gen g;

    if (parse_gen_line(line, path, lineno, &g, err, errlen) != 0)
        return -1;
    if (ct_gens_find(gens, g.kind, g.gen) != NULL) {
        snprintf(err, errlen, "%s:%d: %s generation %d listed twice", path, lineno,
                 ct_kind_name(g.kind), g.gen);
        return -1;
    }
    if (g.status == CT_GEN_CURRENT && ct_gens_current(gens, g.kind) != NULL) {
        snprintf(err, errlen, "%s:%d: a second current %s generation", path, lineno,
                 ct_kind_name(g.kind));
        return -1;
    }
    return ct_gens_add(gens, &g, err, errlen);
}

int ct_gens_parse(const char *text, size_t len, const char *path, struct ct_gens *gens,
                  char *err, size_t errlen)
{
    int k, rc = -1;

    memset(gens, 0, sizeof(*gens));
    if (each_line(text, len, path, gens_line, gens, err, errlen) != 0)
        goto out;
    for (k = 0; k < 2; k++) {
        if (ct_gens_current(gens, (enum ct_kind)k) == NULL) {
            snprintf(err, errlen, "%s: no current %s generation", path,
                     ct_kind_name((enum ct_kind)k));
            goto out;
        }
    }
    rc = 0;
out:
    if (rc != 0)
        ct_gens_free(gens);
    return rc;
}

int ct_gens_format(const struct ct_gens *gens, char **out, size_t *len, char *err, size_t errlen)
{
    size_t cap = sizeof(GENS_HEADER) + gens->n * 192, used, i;
    char *buf = malloc(cap);

    *out = NULL;
    if (buf == NULL) {
        snprintf(err, errlen, "cas.tsv: out of memory");
        return -1;
    }
    used = (size_t)snprintf(buf, cap, "%s", GENS_HEADER);
    for (i = 0; i < gens->n; i++) {
        const struct ct_gen *g = &gens->v[i];
        char na[32], ra[32], va[32];
        const char *reason = "-";
        int n;

        fmt_time(g->not_after, na);
        if (g->retired_at != 0)
            fmt_time(g->retired_at, ra);
        else
            snprintf(ra, sizeof(ra), "-");
        if (g->revoked_at != 0) {
            fmt_time(g->revoked_at, va);
            if ((reason = ct_reason_name(g->reason)) == NULL) {
                free(buf);
                snprintf(err, errlen, "cas.tsv: %s generation %d: unknown reason code %d",
                         ct_kind_name(g->kind), g->gen, g->reason);
                return -1;
            }
        } else {
            snprintf(va, sizeof(va), "-");
        }
        n = snprintf(buf + used, cap - used, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n",
                     ct_kind_name(g->kind), g->gen, g->serial, na, ct_gen_status_name(g->status),
                     ra, va, reason);
        if (n < 0 || (size_t)n >= cap - used) {
            free(buf);
            snprintf(err, errlen, "cas.tsv: entry %s does not fit", g->serial);
            return -1;
        }
        used += (size_t)n;
    }
    *out = buf;
    *len = used;
    return 0;
}

int ct_gens_add(struct ct_gens *gens, const struct ct_gen *g, char *err, size_t errlen)
{
    if (grow((void **)&gens->v, gens->n, &gens->cap, sizeof(*gens->v)) != 0) {
        snprintf(err, errlen, "cas.tsv: out of memory");
        return -1;
    }
    gens->v[gens->n++] = *g;
    return 0;
}

struct ct_gen *ct_gens_current(struct ct_gens *gens, enum ct_kind kind)
{
    size_t i;

    for (i = 0; i < gens->n; i++)
        if (gens->v[i].kind == kind && gens->v[i].status == CT_GEN_CURRENT)
            return &gens->v[i];
    return NULL;
}

struct ct_gen *ct_gens_find(struct ct_gens *gens, enum ct_kind kind, int gen)
{
    size_t i;

    for (i = 0; i < gens->n; i++)
        if (gens->v[i].kind == kind && gens->v[i].gen == gen)
            return &gens->v[i];
    return NULL;
}

void ct_gens_free(struct ct_gens *gens)
{
    size_t i;

    if (gens == NULL)
        return;
    for (i = 0; i < gens->n; i++) {
        X509_free(gens->v[i].ca.cert);
        EVP_PKEY_free(gens->v[i].ca.key);
    }
    free(gens->v);
    gens->v = NULL;
    gens->n = gens->cap = 0;
}

int ct_gens_add_current(struct ct_gens *gens, enum ct_kind kind, int gen, X509 *cert, char *err,
                        size_t errlen)
{
    struct ct_gen g;

    memset(&g, 0, sizeof(g));
    g.kind = kind;
    g.gen = gen;
    g.status = CT_GEN_CURRENT;
    g.reason = -1;
    tls_x509_serial_hex(cert, g.serial, sizeof(g.serial));
    if (tls_x509_not_after(cert, &g.not_after) != 0) {
        snprintf(err, errlen, "%s intermediate: unreadable notAfter", ct_kind_name(kind));
        return -1;
    }
    return ct_gens_add(gens, &g, err, errlen);
}

int ct_gens_stage(struct ct_txn *t, const char *dir, const struct ct_gens *gens, char *err,
                  size_t errlen)
{
    char *text = NULL;
    size_t len = 0;
    int rc = -1;

    if (ct_gens_format(gens, &text, &len, err, errlen) == 0)
        rc = stage_rel(t, dir, "cas.tsv", text, len, 0644, 1, err, errlen);
    free(text);
    return rc;
}

int ct_gen_file_name(const char *name, const char *ext, int *kind, int *gen)
{
    char num[16];
    size_t n, e = strlen(ext);
    const char *p;

    if (strncmp(name, "client-ca.", 10) == 0)
        *kind = CT_KIND_CLIENT;
    else if (strncmp(name, "server-ca.", 10) == 0)
        *kind = CT_KIND_SERVER;
    else
        return 0;
    p = name + 10;
    n = strlen(p);
    if (n <= e || strcmp(p + n - e, ext) != 0 || n - e >= sizeof(num))
        return 0;
    memcpy(num, p, n - e);
    num[n - e] = '\0';
    return parse_gen(num, gen) == 0;
}

/* Loads the certificate (and, when asked, key) of one non-current generation. */
static int load_gen_files(struct ct_pki *pki, struct ct_gen *g, int want_key, char *err,
                          size_t errlen)
{
    char rel[CT_REL_MAX], krel[CT_REL_MAX], path[CT_PATH_MAX], serial[CT_SERIAL_HEX_MAX + 1];

    ct_gen_cert_rel(rel, g->kind, g->gen);
    ct_gen_key_rel(krel, g->kind, g->gen);
    if (ct_path(path, pki->dir, rel, err, errlen) != 0)
        return -1;
    /* A retired generation's files may have been archived elsewhere. */
    if (g->status == CT_GEN_RETIRED && !ct_exists(path))
        return 0;
    if (load_ca(&g->ca, pki->dir, rel, krel, want_key && g->status == CT_GEN_PREVIOUS, err,
                errlen) != 0)
        return -1;
    if (strcmp(tls_x509_serial_hex(g->ca.cert, serial, sizeof(serial)), g->serial) != 0) {
        snprintf(err, errlen, "%s: serial %s, but %s/cas.tsv says %s generation %d is %s", path,
                 serial, pki->dir, ct_kind_name(g->kind), g->gen, g->serial);
        return -1;
    }
    if (X509_check_issued(pki->root.cert, g->ca.cert) != X509_V_OK) {
        snprintf(err, errlen, "%s: not issued by %s/root.crt", path, pki->dir);
        return -1;
    }
    return 0;
}

/* Reads cas.tsv (or synthesizes generation 1 of each) and loads the other generations. */
static int load_generations(struct ct_pki *pki, unsigned keys, char *err, size_t errlen)
{
    char path[CT_PATH_MAX], *text = NULL, serial[CT_SERIAL_HEX_MAX + 1];
    size_t len = 0, i;
    int k, rc = -1;

    if (ct_path(path, pki->dir, "cas.tsv", err, errlen) != 0)
        return -1;
    if (!ct_exists(path)) {
        /* A PKI from before generations: each intermediate is generation 1. */
        if (ct_gens_add_current(&pki->gens, CT_KIND_CLIENT, 1, pki->client_ca.cert, err, errlen) != 0 ||
            ct_gens_add_current(&pki->gens, CT_KIND_SERVER, 1, pki->server_ca.cert, err, errlen) != 0)
            return -1;
        return 0;
    }
    if (ct_read_file(path, GENS_MAX, &text, &len, err, errlen) != 0 ||
        ct_gens_parse(text, len, path, &pki->gens, err, errlen) != 0)
        goto out;
    for (k = 0; k < 2; k++) {
        enum ct_kind kind = (enum ct_kind)k;
        X509 *cur = kind == CT_KIND_SERVER ? pki->server_ca.cert : pki->client_ca.cert;
        const struct ct_gen *g = ct_gens_current(&pki->gens, kind);

        if (strcmp(tls_x509_serial_hex(cur, serial, sizeof(serial)), g->serial) != 0) {
            snprintf(err, errlen, "%s: current %s generation %d has serial %s, but %s/%s-ca.crt "
                     "has %s", path, ct_kind_name(kind), g->gen, g->serial, pki->dir,
                     ct_kind_name(kind), serial);
            goto out;
        }
    }
    for (i = 0; i < pki->gens.n; i++) {
        struct ct_gen *g = &pki->gens.v[i];
        unsigned flag = g->kind == CT_KIND_SERVER ? CT_PKI_KEY_SERVER : CT_PKI_KEY_CLIENT;

        if (g->status != CT_GEN_CURRENT &&
            load_gen_files(pki, g, (keys & flag) != 0, err, errlen) != 0)
            goto out;
    }
    rc = 0;
out:
    free(text);
    return rc;
}

int ct_pki_current_gen(const struct ct_pki *pki, enum ct_kind kind)
{
    size_t i;

    for (i = 0; i < pki->gens.n; i++)
        if (pki->gens.v[i].kind == kind && pki->gens.v[i].status == CT_GEN_CURRENT)
            return pki->gens.v[i].gen;
    return 1;
}

size_t ct_pki_live(const struct ct_pki *pki, enum ct_kind kind, struct ct_live_ca *out, size_t max)
{
    size_t n = 0, i, j;

    if (max == 0)
        return 0;
    out[n].ca = kind == CT_KIND_SERVER ? &pki->server_ca : &pki->client_ca;
    out[n].gen = ct_pki_current_gen(pki, kind);
    out[n].current = 1;
    n++;
    for (i = 0; i < pki->gens.n; i++) {
        const struct ct_gen *g = &pki->gens.v[i];

        if (g->kind != kind || g->status != CT_GEN_PREVIOUS || g->ca.cert == NULL)
            continue;
        /* Insertion, newest first after the current one; when full, the oldest drops out. */
        for (j = n; j > 1 && out[j - 1].gen < g->gen; j--)
            if (j < max)
                out[j] = out[j - 1];
        if (j >= max)
            continue;
        out[j].ca = &g->ca;
        out[j].gen = g->gen;
        out[j].current = 0;
        if (n < max)
            n++;
    }
    return n;
}

int ct_chain_stage(struct ct_txn *t, const struct ct_pki *pki, enum ct_kind kind, char *err,
                   size_t errlen)
{
    struct ct_live_ca live[CT_LIVE_MAX];
    X509 *certs[CT_LIVE_MAX + 1];
    size_t n, i;

    n = ct_pki_live(pki, kind, live, CT_LIVE_MAX);
    for (i = 0; i < n; i++)
        certs[i] = live[i].ca->cert;
    certs[n] = pki->root.cert;
    return ct_stage_certs(t, pki->dir, ct_chain_file(kind), certs, n + 1, err, errlen);
}
