/*
 * cfg_apply.c - the node tree onto a struct cfg, driven by the key table:
 * each mapping key is looked up by its dotted name and its value converted
 * by the setter for the key's type. Every problem is reported with the
 * position of the node it is about and loading goes on, so that one run
 * lists them all. Cross-key rules come last (cfg_validate).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cfg_internal.h"

#define SHOWN 72            /* room for a value quoted in a message */
#define SHOWN_PATH 1024     /* room for a path in a message */

/* ---- field access ---- */

static void *field_ptr(struct cfg *c, const struct cfg_key *k)
{
    return (char *)c + k->off;
}

static void store_uint(struct cfg *c, const struct cfg_key *k, uint64_t v)
{
    if (k->size == sizeof(unsigned)) {
        unsigned u = (unsigned)v;

        memcpy(field_ptr(c, k), &u, sizeof(u));
    } else {
        memcpy(field_ptr(c, k), &v, sizeof(v));
    }
}

/* Replaces the pointer held by k's field (the old value is freed). */
static void store_ptr(struct cfg *c, const struct cfg_key *k, void *p)
{
    cfg_field_free(c, k);
    memcpy(field_ptr(c, k), &p, sizeof(p));
}

static void rule_free(struct cfg_rule *r)
{
    free(r->method);
    free(r->path_prefix);
}

static void identity_free(struct cfg_identity *id)
{
    size_t i;

    for (i = 0; i < id->n_allow; i++)
        rule_free(&id->allow[i]);
    free(id->allow);
    free(id->cn);
    free(id->identity);
    memset(id, 0, sizeof(*id));
}

static void addrs_free(struct cfg_addr *a, size_t n)
{
    size_t i;

    for (i = 0; a != NULL && i < n; i++)
        cfg_addr_free(&a[i]);
    free(a);
}

void cfg_field_free(struct cfg *c, const struct cfg_key *k)
{
    void *p = NULL;
    size_t i, zero = 0;

    switch (k->type) {
    case CT_STRING:
    case CT_PATH:
    case CT_ADDR:
        memcpy(&p, field_ptr(c, k), sizeof(p));
        if (k->type == CT_ADDR)
            cfg_addr_free(p);
        free(p);
        p = NULL;
        memcpy(field_ptr(c, k), &p, sizeof(p));
        break;
    case CT_ADDRS:
        memcpy(&p, field_ptr(c, k), sizeof(p));
        memcpy(&i, (char *)c + k->off_n, sizeof(i));
        addrs_free(p, i);
        p = NULL;
        memcpy(field_ptr(c, k), &p, sizeof(p));
        memcpy((char *)c + k->off_n, &zero, sizeof(zero));
        break;
    case CT_IDENTITIES:
        for (i = 0; i < c->identities.n_map; i++)
            identity_free(&c->identities.map[i]);
        free(c->identities.map);
        c->identities.map = NULL;
        c->identities.n_map = 0;
        break;
    default:
        break;
    }
}

/* ---- value syntaxes ---- */

static const char *kind_name(const struct ynode *n)
{
    return n->kind == YN_MAP ? "a mapping" : n->kind == YN_SEQ ? "a list" : "a single value";
}

static int parse_bool(const char *s, int *b)
{
    static const char *const yes[] = {"true", "yes", "on"}, *const no[] = {"false", "no", "off"};
    size_t i;

    for (i = 0; i < 3; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *b = 1;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *b = 0;
            return 0;
        }
    }
    return -1;
}

static int is_off(const char *s)
{
    int b;

    return parse_bool(s, &b) == 0 && b == 0;
}

/* Decimal digits only, no overflow. */
static int parse_uint(const char *s, uint64_t *v)
{
    uint64_t n = 0;

    if (*s == '\0')
        return -1;
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9' || n > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
            return -1;
        n = n * 10 + (uint64_t)(*s - '0');
    }
    *v = n;
    return 0;
}

static const char *fmt_duration(uint64_t ms, char *buf, size_t len)
{
    if (ms != 0 && ms % 3600000 == 0)
        snprintf(buf, len, "%lluh", (unsigned long long)(ms / 3600000));
    else if (ms != 0 && ms % 60000 == 0)
        snprintf(buf, len, "%llum", (unsigned long long)(ms / 60000));
    else if (ms != 0 && ms % 1000 == 0)
        snprintf(buf, len, "%llus", (unsigned long long)(ms / 1000));
    else
        snprintf(buf, len, "%llums", (unsigned long long)ms);
    return buf;
}

static const char *fmt_size(uint64_t b, char *buf, size_t len)
{
    if (b != 0 && b % (1u << 30) == 0)
        snprintf(buf, len, "%llug", (unsigned long long)(b >> 30));
    else if (b != 0 && b % (1u << 20) == 0)
        snprintf(buf, len, "%llum", (unsigned long long)(b >> 20));
    else if (b != 0 && b % (1u << 10) == 0)
        snprintf(buf, len, "%lluk", (unsigned long long)(b >> 10));
    else
        snprintf(buf, len, "%llu", (unsigned long long)b);
    return buf;
}

static unsigned online_cores(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);

    return n < 1 ? 1 : (unsigned)n;
}

/* "a, b, c" from names[] into buf. */
static const char *names_list(const struct cfg_name *names, char *buf, size_t len)
{
    size_t n = 0;

    buf[0] = '\0';
    for (; names->name != NULL && n < len; names++)
        n += (size_t)snprintf(buf + n, len - n, "%s%s", n ? ", " : "", names->name);
    return buf;
}

/* A word that means a stream or "nothing" for a log destination, never a file. */
static int reserved_word(const char *s)
{
    static const char *const words[] = {"stderr", "stdout", "off", "on", "none", "null",
                                        "false", "true", "no", "yes", "-"};
    size_t i;

    for (i = 0; i < sizeof(words) / sizeof(words[0]); i++)
        if (strcasecmp(s, words[i]) == 0)
            return 1;
    return 0;
}

/* "given (/abs/given)" or just "/abs" when the file named it absolutely. */
static const char *path_desc(const char *given, const char *abs, char *buf, size_t len)
{
    char a[SHOWN_PATH], b[SHOWN_PATH];

    if (strcmp(given, abs) == 0)
        snprintf(buf, len, "%s", cfg_shown(abs, a, sizeof(a)));
    else
        snprintf(buf, len, "%s (%s)", cfg_shown(given, a, sizeof(a)), cfg_shown(abs, b, sizeof(b)));
    return buf;
}

/*
 * The file checks of a path key: CF_READ opens it as the gateway will;
 * CF_PARENT (a file written later) wants its directory to exist.
 */
static int check_file(struct cfg_ctx *x, const struct cfg_key *k, const char *given,
                      const char *abs, const struct ynode *at)
{
    char desc[2 * SHOWN_PATH + 4];
    struct stat st;
    int fd = -1, rc = -1;

    path_desc(given, abs, desc, sizeof(desc));
    if (k->flags & CF_READ) {
        if ((fd = open(abs, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)) < 0 ||
            fstat(fd, &st) != 0) {
            cfg_err(x, at, k->name, "cannot read %s: %s", desc, strerror(errno));
            goto out;
        }
        if (!S_ISREG(st.st_mode)) {
            cfg_err(x, at, k->name, "%s is not a regular file", desc);
            goto out;
        }
    }
    if (k->flags & CF_PARENT) {
        char *dir = strdup(abs), *slash = dir != NULL ? strrchr(dir, '/') : NULL;
        int e;

        if (slash == NULL) {
            free(dir);
            cfg_err(x, at, k->name, "out of memory");
            goto out;
        }
        slash[slash == dir ? 1 : 0] = '\0';
        e = stat(dir, &st) != 0 ? errno : S_ISDIR(st.st_mode) ? 0 : ENOTDIR;
        free(dir);
        if (e != 0) {
            cfg_err(x, at, k->name, "the directory of %s: %s", desc, strerror(e));
            goto out;
        }
        if (stat(abs, &st) == 0 && S_ISDIR(st.st_mode)) {
            cfg_err(x, at, k->name, "%s is a directory", desc);
            goto out;
        }
    }
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    return rc;
}

/*
 * The setters of scalar types: each converts the text s for key k, stores
 * it, and returns 0; or reports the problem at node at and returns -1 with
 * the field unchanged. at is NULL for a default from the table (a failure
 * there is a bug in the table, reported all the same).
 */
typedef int (*setter_fn)(struct cfg_ctx *x, const struct cfg_key *k, const char *s,
                         const struct ynode *at);

/* Stores a new copy of s into k's char * field. */
static int store_string(struct cfg_ctx *x, const struct cfg_key *k, const char *s,
                        const struct ynode *at)
{
    char *p = strdup(s);

    if (p == NULL) {
        cfg_err(x, at, k->name, "out of memory");
        return -1;
    }
    store_ptr(x->c, k, p);
    return 0;
}

static int set_string(struct cfg_ctx *x, const struct cfg_key *k, const char *s,
                      const struct ynode *at)
{
    char why[256], v[SHOWN];

    if ((k->flags & CF_NONEMPTY) && *s == '\0') {
        cfg_err(x, at, k->name, "must not be empty");
        return -1;
    }
    if (k->check != NULL && k->check(s, why, sizeof(why)) != 0) {
        cfg_err(x, at, k->name, "'%s' %s", cfg_shown(s, v, sizeof(v)), why);
        return -1;
    }
    return store_string(x, k, s, at);
}

static int set_bool(struct cfg_ctx *x, const struct cfg_key *k, const char *s,
                    const struct ynode *at)
{
    char v[SHOWN];
    int b;

    if (parse_bool(s, &b) != 0) {
        cfg_err(x, at, k->name, "'%s' is not a boolean (use true or false)",
                cfg_shown(s, v, sizeof(v)));
        return -1;
    }
    memcpy(field_ptr(x->c, k), &b, sizeof(b));
    return 0;
}

static int set_uint(struct cfg_ctx *x, const struct cfg_key *k, const char *s,
                    const struct ynode *at)
{
    char v[SHOWN];
    uint64_t n;

    if ((k->flags & CF_AUTO) && strcmp(s, "auto") == 0) {
        n = online_cores();
        store_uint(x->c, k, n < k->min ? k->min : n > k->max ? k->max : n);
        return 0;
    }
    if (parse_uint(s, &n) != 0) {
        cfg_err(x, at, k->name, "'%s' is not a whole number%s", cfg_shown(s, v, sizeof(v)),
                (k->flags & CF_AUTO) ? " or auto" : "");
        return -1;
    }
    if (n < k->min || n > k->max) {
        cfg_err(x, at, k->name, "%s is out of range (%llu to %llu)", s,
                (unsigned long long)k->min, (unsigned long long)k->max);
        return -1;
    }
    store_uint(x->c, k, n);
    return 0;
}

static int set_duration(struct cfg_ctx *x, const struct cfg_key *k, const char *s,
                        const struct ynode *at)
{
    char v[SHOWN], lo[32], hi[32];
    unsigned ms;

    if ((k->flags & CF_OFF) && is_off(s)) {
        store_uint(x->c, k, 0);
        return 0;
    }
    if (cfg_parse_duration(s, &ms) != 0) {
        cfg_err(x, at, k->name, "'%s' is not a duration (use 500ms, 10s, 2m)%s",
                cfg_shown(s, v, sizeof(v)), (k->flags & CF_OFF) ? " or off" : "");
        return -1;
    }
    if (ms < k->min || ms > k->max) {
        cfg_err(x, at, k->name, "%s is out of range (%s to %s%s)", s,
                fmt_duration(k->min, lo, sizeof(lo)), fmt_duration(k->max, hi, sizeof(hi)),
                (k->flags & CF_OFF) ? ", or off" : "");
        return -1;
    }
    store_uint(x->c, k, ms);
    return 0;
}

static int set_size(struct cfg_ctx *x, const struct cfg_key *k, const char *s,
                    const struct ynode *at)
{
    char v[SHOWN], lo[32], hi[32];
    uint64_t n;

    if (cfg_parse_size(s, &n) != 0) {
        cfg_err(x, at, k->name, "'%s' is not a size (use 512, 16k, 1m, 1g)",
                cfg_shown(s, v, sizeof(v)));
        return -1;
    }
    if (n < k->min || n > k->max) {
        cfg_err(x, at, k->name, "%s is out of range (%s to %s)", s,
                fmt_size(k->min, lo, sizeof(lo)), fmt_size(k->max, hi, sizeof(hi)));
        return -1;
    }
    store_uint(x->c, k, n);
    return 0;
}

static int set_enum(struct cfg_ctx *x, const struct cfg_key *k, const char *s,
                    const struct ynode *at)
{
    char v[SHOWN], list[256];
    const struct cfg_name *nm;

    for (nm = k->names; nm->name != NULL; nm++) {
        if (strcmp(nm->name, s) == 0) {
            memcpy(field_ptr(x->c, k), &nm->value, sizeof(nm->value));
            return 0;
        }
    }
    cfg_err(x, at, k->name, "'%s' is not one of: %s", cfg_shown(s, v, sizeof(v)),
            names_list(k->names, list, sizeof(list)));
    return -1;
}

/* A keyword of k->names kept as is, or a file made absolute and checked. */
static int set_path(struct cfg_ctx *x, const struct cfg_key *k, const char *s,
                    const struct ynode *at)
{
    char v[SHOWN], list[256];
    const struct cfg_name *nm;
    char *p;

    for (nm = k->names; nm != NULL && nm->name != NULL; nm++)
        if (strcmp(nm->name, s) == 0)
            return store_string(x, k, s, at);
    if (*s == '\0') {
        cfg_err(x, at, k->name, "must not be empty");
        return -1;
    }
    if (k->names != NULL && reserved_word(s)) {
        /* "off" where off is not allowed must not become a file "off". */
        cfg_err(x, at, k->name, "'%s' is not valid here (use %s, or a file path)",
                cfg_shown(s, v, sizeof(v)), names_list(k->names, list, sizeof(list)));
        return -1;
    }
    if ((p = cfg_resolve(x->dir, s)) == NULL) {
        cfg_err(x, at, k->name, "out of memory");
        return -1;
    }
    if (check_file(x, k, s, p, at) != 0) {
        free(p);
        return -1;
    }
    store_ptr(x->c, k, p);
    return 0;
}

static int set_addr(struct cfg_ctx *x, const struct cfg_key *k, const char *s,
                    const struct ynode *at)
{
    char v[SHOWN];
    struct cfg_addr *a;

    if ((k->flags & CF_OFF) && is_off(s)) {
        store_ptr(x->c, k, NULL);
        return 0;
    }
    if ((a = calloc(1, sizeof(*a))) == NULL) {
        cfg_err(x, at, k->name, "out of memory");
        return -1;
    }
    if (cfg_parse_addr(s, a) != 0) {
        free(a);
        cfg_err(x, at, k->name, "'%s' is not an address (use host:port, [v6]:port or :port)",
                cfg_shown(s, v, sizeof(v)));
        return -1;
    }
    store_ptr(x->c, k, a);
    return 0;
}

/* By enum cfg_type; NULL for the types that are not one scalar. */
static const setter_fn setters[] = {
    [CT_STRING] = set_string,     [CT_BOOL] = set_bool, [CT_UINT] = set_uint,
    [CT_DURATION] = set_duration, [CT_SIZE] = set_size, [CT_ENUM] = set_enum,
    [CT_PATH] = set_path,         [CT_ADDR] = set_addr,
};

/* Sets scalar key k from text s (see setter_fn). */
static int set_text(struct cfg_ctx *x, const struct cfg_key *k, const char *s,
                    const struct ynode *at)
{
    if ((size_t)k->type >= sizeof(setters) / sizeof(setters[0]) || setters[k->type] == NULL) {
        cfg_err(x, at, k->name, "expected %s", k->type_doc);
        return -1;
    }
    return setters[k->type](x, k, s, at);
}

/*
 * A list of addresses (a single scalar is a list of one). Every item is
 * checked; the list replaces the field only when all are good.
 */
static int set_addrs(struct cfg_ctx *x, const struct cfg_key *k, const struct ynode *v)
{
    const struct ynode *const *items = (const struct ynode *const *)v->kid;
    size_t n = v->n, i, j, ok = 0;
    struct cfg_addr *list = NULL;
    char sv[SHOWN];
    int rc = -1;

    if (v->kind == YN_MAP) {
        cfg_err(x, v, k->name, "expected a list of addresses, got a mapping");
        return -1;
    }
    if (v->kind == YN_SCALAR) {
        items = &v;
        n = 1;
    }
    if (n == 0 && (k->flags & CF_REQUIRED)) {
        cfg_err(x, v, k->name, "must list at least one address");
        return -1;
    }
    if (n > 0 && (list = calloc(n, sizeof(*list))) == NULL) {
        cfg_err(x, v, k->name, "out of memory");
        return -1;
    }
    for (i = 0; i < n; i++) {
        const struct ynode *it = items[i];

        if (it->kind != YN_SCALAR) {
            cfg_err(x, it, k->name, "expected an address, got %s", kind_name(it));
            continue;
        }
        if (cfg_parse_addr(it->str, &list[i]) != 0) {
            cfg_err(x, it, k->name, "'%s' is not an address (use host:port, [v6]:port or :port)",
                    cfg_shown(it->str, sv, sizeof(sv)));
            continue;
        }
        for (j = 0; j < i; j++) {
            if (list[j].host != NULL && strcmp(list[j].host, list[i].host) == 0 &&
                strcmp(list[j].port, list[i].port) == 0) {
                cfg_err(x, it, k->name, "'%s' is listed twice (first at line %u)",
                        cfg_shown(it->str, sv, sizeof(sv)), items[j]->line);
                break;
            }
        }
        if (j == i)
            ok++;
    }
    if (ok != n)
        goto out;
    store_ptr(x->c, k, list);
    memcpy((char *)x->c + k->off_n, &n, sizeof(n));
    list = NULL;
    rc = 0;
out:
    addrs_free(list, n);
    return rc;
}

/* ---- identities.map ---- */

/* RFC 9110 tchar. */
static int is_tchar(unsigned char ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
           (ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

/*
 * "METHOD /prefix" or "/prefix" (any method). The method is a token in
 * upper case (methods are case-sensitive, so "get" would never match);
 * the prefix starts with '/' and is visible ASCII without '#'.
 */
static int parse_rule(const char *s, struct cfg_rule *r, char *why, size_t len)
{
    const char *path = s, *sp;
    size_t i, mlen = 0;

    memset(r, 0, sizeof(*r));
    if (s[0] != '/') {
        if ((sp = strchr(s, ' ')) == NULL || sp == s) {
            snprintf(why, len, "is not \"METHOD /prefix\" or \"/prefix\"");
            return -1;
        }
        mlen = (size_t)(sp - s);
        for (i = 0; i < mlen; i++) {
            if (!is_tchar((unsigned char)s[i])) {
                snprintf(why, len, "has a method that is not a valid token");
                return -1;
            }
            if (s[i] >= 'a' && s[i] <= 'z') {
                snprintf(why, len, "has a lower-case method; methods are case-sensitive (GET, POST)");
                return -1;
            }
        }
        path = sp + 1;
        if (path[0] != '/') {
            snprintf(why, len, "needs a path that starts with '/' after the method");
            return -1;
        }
    }
    for (i = 0; path[i] != '\0'; i++) {
        if ((unsigned char)path[i] <= 0x20 || (unsigned char)path[i] >= 0x7f || path[i] == '#') {
            snprintf(why, len, "has a path with a space, a control character, '#' or non-ASCII");
            return -1;
        }
    }
    if ((mlen > 0 && (r->method = strndup(s, mlen)) == NULL) ||
        (r->path_prefix = strdup(path)) == NULL) {
        rule_free(r);
        snprintf(why, len, "out of memory");
        return -1;
    }
    return 0;
}

/*
 * The longest identity: a connection keeps it in a 128-byte buffer
 * (proxy/conn_int.h), so a longer one would be cut without a word.
 */
#define IDENTITY_MAX 127
/* The longest CN a certificate can carry (TLS_CN_MAX, RFC 5280 ub-common-name). */
#define CN_MAX 64

/* An identity goes into a header value: printable ASCII, no edge spaces. */
static int identity_ok(const char *s)
{
    size_t i, n = strlen(s);

    if (n == 0 || n > IDENTITY_MAX || s[0] == ' ' || s[n - 1] == ' ')
        return 0;
    for (i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
            return 0;
    return 1;
}

/* A CN as written in the map: no control characters (length: see CN_MAX). */
static int cn_ok(const char *s)
{
    size_t i, n = strlen(s);

    if (n == 0)
        return 0;
    for (i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return 0;
    return 1;
}

static int set_identity_value(struct cfg_ctx *x, const char *key, const struct ynode *v,
                              struct cfg_identity *id)
{
    char sv[SHOWN];

    if (v->kind != YN_SCALAR || cfg_ynode_is_null(v)) {
        cfg_err(x, v, key, "expected an identity, got %s",
                v->kind == YN_SCALAR ? "nothing" : kind_name(v));
        return -1;
    }
    if (strlen(v->str) > IDENTITY_MAX) {
        cfg_err(x, v, key, "'%s' is %zu characters: an identity has at most %d",
                cfg_shown(v->str, sv, sizeof(sv)), strlen(v->str), IDENTITY_MAX);
        return -1;
    }
    if (!identity_ok(v->str)) {
        cfg_err(x, v, key, "'%s' is not a usable identity (1 to %d printable ASCII characters)",
                cfg_shown(v->str, sv, sizeof(sv)), IDENTITY_MAX);
        return -1;
    }
    if ((id->identity = strdup(v->str)) == NULL) {
        cfg_err(x, v, key, "out of memory");
        return -1;
    }
    return 0;
}

static int set_allow(struct cfg_ctx *x, const char *key, const struct ynode *v,
                     struct cfg_identity *id)
{
    char why[128], sv[SHOWN];
    size_t i;
    int rc = 0;

    if (v->kind != YN_SEQ) {
        cfg_err(x, v, key, "expected a list of rules such as [\"GET /\", \"POST /x\", \"/y\"]");
        return -1;
    }
    id->has_allow = 1;
    if (v->n > 0 && (id->allow = calloc(v->n, sizeof(*id->allow))) == NULL) {
        cfg_err(x, v, key, "out of memory");
        return -1;
    }
    for (i = 0; i < v->n; i++) {
        const struct ynode *it = v->kid[i];

        if (it->kind != YN_SCALAR) {
            cfg_err(x, it, key, "expected a rule such as \"GET /\", got %s", kind_name(it));
            rc = -1;
            continue;
        }
        if (parse_rule(it->str, &id->allow[id->n_allow], why, sizeof(why)) != 0) {
            cfg_err(x, it, key, "'%s' %s", cfg_shown(it->str, sv, sizeof(sv)), why);
            rc = -1;
            continue;
        }
        id->n_allow++;
    }
    return rc;
}

/* "CN: {identity: X, allow: [...]}": checks keys like any other mapping. */
static int set_identity_map(struct cfg_ctx *x, const char *prefix, const struct ynode *v,
                            struct cfg_identity *id)
{
    static const char *const keys[] = {"identity", "allow"};
    const struct ynode *seen[2] = {NULL, NULL};
    char key[SHOWN * 3], sk[SHOWN];
    size_t i;
    int rc = 0, which;

    for (i = 0; i + 1 < v->n; i += 2) {
        const struct ynode *kn = v->kid[i], *val = v->kid[i + 1];
        const char *near;

        if (kn->kind != YN_SCALAR) {
            cfg_err(x, kn, prefix, "a key must be a word, not %s", kind_name(kn));
            rc = -1;
            continue;
        }
        snprintf(key, sizeof(key), "%s.%s", prefix, cfg_shown(kn->str, sk, sizeof(sk)));
        which = strcmp(kn->str, "identity") == 0 ? 0 : strcmp(kn->str, "allow") == 0 ? 1 : -1;
        if (which < 0) {
            near = cfg_nearest(kn->str, keys, 2);
            if (near != NULL)
                cfg_err(x, kn, key, "unknown key (did you mean %s.%s?)", prefix, near);
            else
                cfg_err(x, kn, key, "unknown key (use identity and allow)");
            rc = -1;
            continue;
        }
        if (seen[which] != NULL) {
            cfg_err(x, kn, key, "duplicate key (first at line %u column %u)", seen[which]->line,
                    seen[which]->col);
            rc = -1;
            continue;
        }
        seen[which] = kn;
        if ((which == 0 ? set_identity_value(x, key, val, id) : set_allow(x, key, val, id)) != 0)
            rc = -1;
    }
    if (seen[0] == NULL) {
        snprintf(key, sizeof(key), "%s.identity", prefix);
        cfg_err(x, v, key, "required");
        rc = -1;
    }
    return rc;
}

struct keyref {
    const char *s;
    size_t pair;
};

static int keyref_cmp(const void *a, const void *b)
{
    const struct keyref *x = a, *y = b;
    int c = strcmp(x->s, y->s);

    return c != 0 ? c : (x->pair > y->pair) - (x->pair < y->pair);
}

/*
 * first[p] = the first pair of map v whose key is the same string as pair
 * p's (p itself when none is before it; non-scalar keys are their own).
 * By sorting: a map of 100,000 CNs is checked in milliseconds, where
 * comparing each with those before it took seconds at every reload.
 */
static int first_keys(const struct ynode *v, size_t *first)
{
    size_t np = v->n / 2, nr = 0, i;
    struct keyref *r = np > 0 ? calloc(np, sizeof(*r)) : NULL;

    if (np > 0 && r == NULL)
        return -1;
    for (i = 0; i < np; i++) {
        first[i] = i;
        if (v->kid[2 * i]->kind == YN_SCALAR) {
            r[nr].s = v->kid[2 * i]->str;
            r[nr++].pair = i;
        }
    }
    if (nr > 1)
        qsort(r, nr, sizeof(*r), keyref_cmp);
    for (i = 1; i < nr; i++)
        if (strcmp(r[i].s, r[i - 1].s) == 0)
            first[r[i].pair] = first[r[i - 1].pair];
    free(r);
    return 0;
}

/*
 * identities.map: each CN once, mapped to an identity string or to a
 * mapping with an allow list. The whole map replaces the field only when
 * every entry is good.
 */
static int set_identities(struct cfg_ctx *x, const struct cfg_key *k, const struct ynode *v)
{
    struct cfg_identity *map = NULL;
    size_t *first = NULL;
    size_t n = 0, i;
    char prefix[SHOWN * 2], scn[SHOWN];
    int rc = -1, bad = 0;

    if (v->kind != YN_MAP) {
        cfg_err(x, v, k->name, "expected a mapping of CN: identity, got %s", kind_name(v));
        return -1;
    }
    if (v->n > 0 && ((map = calloc(v->n / 2, sizeof(*map))) == NULL ||
                     (first = calloc(v->n / 2, sizeof(*first))) == NULL ||
                     first_keys(v, first) < 0)) {
        cfg_err(x, v, k->name, "out of memory");
        goto out;
    }
    for (i = 0; i + 1 < v->n; i += 2) {
        const struct ynode *kn = v->kid[i], *val = v->kid[i + 1];
        struct cfg_identity *id = &map[n];

        if (kn->kind != YN_SCALAR || !cn_ok(kn->str)) {
            cfg_err(x, kn, k->name, "a CN must be 1 to %d bytes without control characters",
                    CN_MAX);
            bad = 1;
            continue;
        }
        if (strlen(kn->str) > CN_MAX) {
            cfg_err(x, kn, k->name, "'%s' is %zu bytes: a certificate's CN has at most %d "
                    "(RFC 5280), so this entry could never match",
                    cfg_shown(kn->str, scn, sizeof(scn)), strlen(kn->str), CN_MAX);
            bad = 1;
            continue;
        }
        snprintf(prefix, sizeof(prefix), "%s.%s", k->name, cfg_shown(kn->str, scn, sizeof(scn)));
        if (first[i / 2] != i / 2) {
            cfg_err(x, kn, prefix, "CN listed twice (first at line %u)",
                    v->kid[2 * first[i / 2]]->line);
            bad = 1;
            continue;
        }
        if ((id->cn = strdup(kn->str)) == NULL) {
            cfg_err(x, kn, prefix, "out of memory");
            bad = 1;
            continue;
        }
        if ((val->kind == YN_MAP ? set_identity_map(x, prefix, val, id)
                                 : set_identity_value(x, prefix, val, id)) != 0) {
            identity_free(id);
            bad = 1;
            continue;
        }
        n++;
    }
    if (bad)
        goto out;
    cfg_field_free(x->c, k);
    x->c->identities.map = map;
    x->c->identities.n_map = n;
    map = NULL;
    rc = 0;
out:
    for (i = 0; map != NULL && i < n; i++)
        identity_free(&map[i]);
    free(map);
    free(first);
    return rc;
}

/* ---- walking the tree ---- */

static void walk_map(struct cfg_ctx *x, const struct ynode *map, const char *prefix);

/* The key "full" is not in the table: say so, with a guess when there is one. */
static void unknown_key(struct cfg_ctx *x, const struct ynode *kn, const char *full,
                        const char *prefix, const char *leaf)
{
    const char *cand[128];
    size_t i, n = 0, plen = prefix != NULL ? strlen(prefix) : 0;
    const char *near;

    for (i = 0; i < cfg_nkeys && n < 128; i++) {
        const char *name = cfg_keys[i].name, *dot = strrchr(name, '.');

        if (prefix == NULL ? dot == NULL
                           : (dot != NULL && (size_t)(dot - name) == plen &&
                              memcmp(name, prefix, plen) == 0))
            cand[n++] = dot != NULL ? dot + 1 : name;
    }
    if ((near = cfg_nearest(leaf, cand, n)) != NULL) {
        cfg_err(x, kn, full, "unknown key (did you mean %s%s%s?)", prefix ? prefix : "",
                prefix ? "." : "", near);
        return;
    }
    for (i = 0; i < cfg_nkeys; i++) {
        const char *dot = strrchr(cfg_keys[i].name, '.');

        if (dot != NULL && strcmp(dot + 1, leaf) == 0) {
            cfg_err(x, kn, full, "unknown key (did you mean %s?)", cfg_keys[i].name);
            return;
        }
    }
    cfg_err(x, kn, full, "unknown key");
}

/* Applies the value v of table key idx (its key node kn). */
static void apply_value(struct cfg_ctx *x, int idx, const struct ynode *kn, const struct ynode *v)
{
    const struct cfg_key *k = &cfg_keys[idx];
    int rc;

    if (k->type == CT_SECTION) {
        x->mark[idx].line = kn->line;
        x->mark[idx].col = kn->col;
        x->seen[idx] = SEEN_SET;
        if (cfg_ynode_is_null(v))
            return;
        if (v->kind != YN_MAP) {
            cfg_err(x, v, k->name, "expected a mapping of keys, got %s", kind_name(v));
            x->seen[idx] = SEEN_BAD;
            return;
        }
        walk_map(x, v, k->name);
        return;
    }
    x->mark[idx].line = v->line;
    x->mark[idx].col = v->col;
    if (cfg_ynode_is_null(v)) {
        if (k->flags & CF_REQUIRED) {
            cfg_err(x, v, k->name, "required");
            x->seen[idx] = SEEN_BAD;
            return;
        }
        /* "key:" with nothing: as if absent. */
        cfg_field_free(x->c, k);
        x->seen[idx] = SEEN_NULL;
        if (k->def != NULL && set_text(x, k, k->def, NULL) != 0)
            x->seen[idx] = SEEN_BAD;
        return;
    }
    switch (k->type) {
    case CT_ADDRS:
        rc = set_addrs(x, k, v);
        break;
    case CT_IDENTITIES:
        rc = set_identities(x, k, v);
        break;
    default:
        if (v->kind != YN_SCALAR) {
            cfg_err(x, v, k->name, "expected %s, got %s", k->type_doc, kind_name(v));
            rc = -1;
            break;
        }
        rc = set_text(x, k, v->str, v);
        break;
    }
    x->seen[idx] = rc == 0 ? SEEN_SET : SEEN_BAD;
}

/*
 * One mapping of the file, at prefix (NULL for the top level). Keys are
 * single words; the dotted name they form must be in the table.
 */
static void walk_map(struct cfg_ctx *x, const struct ynode *map, const char *prefix)
{
    char full[256], leaf[SHOWN];
    size_t i, j;

    for (i = 0; i + 1 < map->n; i += 2) {
        const struct ynode *kn = map->kid[i], *v = map->kid[i + 1];
        int idx;

        if (kn->kind != YN_SCALAR) {
            cfg_err(x, kn, prefix != NULL ? prefix : "(top level)",
                    "a key must be a word, not %s", kind_name(kn));
            continue;
        }
        cfg_shown(kn->str, leaf, sizeof(leaf));
        snprintf(full, sizeof(full), "%s%s%s", prefix ? prefix : "", prefix ? "." : "", leaf);
        for (j = 0; j < i; j += 2)
            if (map->kid[j]->kind == YN_SCALAR && strcmp(map->kid[j]->str, kn->str) == 0)
                break;
        if (j < i) {
            cfg_err(x, kn, full, "duplicate key (first at line %u column %u)", map->kid[j]->line,
                    map->kid[j]->col);
            continue;
        }
        idx = cfg_key_find(full, strlen(full));
        if (idx >= 0 && strchr(kn->str, '.') != NULL) {
            const char *dot = strrchr(full, '.');

            cfg_err(x, kn, full, "unknown key (write it nested, as %.*s: { %s: ... })",
                    (int)(dot - full), full, dot + 1);
            continue;
        }
        if (idx < 0) {
            unknown_key(x, kn, full, prefix, leaf);
            continue;
        }
        apply_value(x, idx, kn, v);
    }
}

int cfg_apply_defaults(struct cfg_ctx *x)
{
    size_t i;

    for (i = 0; i < cfg_nkeys; i++)
        if (cfg_keys[i].def != NULL && set_text(x, &cfg_keys[i], cfg_keys[i].def, NULL) != 0)
            return -1;
    return 0;
}

void cfg_apply_tree(struct cfg_ctx *x, const struct ynode *root)
{
    if (root == NULL || cfg_ynode_is_null(root))
        return;                 /* empty file: the required keys will say so */
    if (root->kind != YN_MAP) {
        cfg_err(x, root, "(top level)", "expected a mapping of keys (listen:, tls:, ...), got %s",
                kind_name(root));
        return;
    }
    walk_map(x, root, NULL);
}

/* ---- cross-key rules ---- */

/*
 * The position to report about key name: where it was set, else where its
 * nearest enclosing section was, else the start of the document. Returns
 * 1 when name or a section above it was already reported as bad (a child
 * of a bad section cannot have been set, so the first one found decides).
 */
static int locate(struct cfg_ctx *x, const char *name, unsigned *line, unsigned *col)
{
    size_t len = strlen(name);
    int idx;

    *line = x->root != NULL ? x->root->line : 1;
    *col = x->root != NULL ? x->root->col : 1;
    for (;;) {
        idx = cfg_key_find(name, len);
        if (idx >= 0 && x->seen[idx] == SEEN_BAD)
            return 1;
        if (idx >= 0 && x->seen[idx] != SEEN_UNSET) {
            *line = x->mark[idx].line;
            *col = x->mark[idx].col;
            break;
        }
        while (len > 0 && name[len - 1] != '.')
            len--;
        if (len == 0)
            break;
        len--;                  /* drop the '.' */
    }
    return 0;
}

static int is_set(struct cfg_ctx *x, const char *name)
{
    int idx = cfg_key_find(name, strlen(name));

    return idx >= 0 && x->seen[idx] == SEEN_SET;
}

/*
 * Key perms: a private key others can read is a key others have. Same rule
 * as the gateway and the ticket key loader: no group or other bits at all.
 */
static void check_key_mode(struct cfg_ctx *x, const char *name, const char *path)
{
    struct stat st;
    unsigned line, col;
    char sp[SHOWN_PATH];

    if (path == NULL || stat(path, &st) != 0 || !(st.st_mode & (S_IRWXG | S_IRWXO)))
        return;
    if (locate(x, name, &line, &col))
        return;
    cfg_err_at(x, line, col, name,
               "%s is open to group or others (mode %04o); chmod 600 it, or set "
               "tls.allow_insecure_key_permissions: true",
               cfg_shown(path, sp, sizeof(sp)), (unsigned)(st.st_mode & 07777));
}

void cfg_validate(struct cfg_ctx *x)
{
    static const char *const upstream_tls[] = {"upstream.tls.ca", "upstream.tls.certificate",
                                               "upstream.tls.key", "upstream.tls.server_name"};
    static const char *const hnames[] = {"headers.identity", "headers.cn", "headers.cert_sha256",
                                         "headers.request_id"};
    struct cfg *c = x->c;
    const char *hval[4] = {c->headers.identity, c->headers.cn, c->headers.cert_sha256,
                           c->headers.request_id};
    unsigned line, col;
    size_t i, j;

    for (i = 0; i < cfg_nkeys; i++) {
        if (!(cfg_keys[i].flags & CF_REQUIRED) || x->seen[i] == SEEN_SET)
            continue;
        if (!locate(x, cfg_keys[i].name, &line, &col))
            cfg_err_at(x, line, col, cfg_keys[i].name, "required");
    }

    if (c->upstream.tls) {
        if (c->upstream.tls_ca == NULL && !locate(x, "upstream.tls.ca", &line, &col))
            cfg_err_at(x, line, col, "upstream.tls.ca", "required when upstream.tls.enabled is true");
        if ((c->upstream.tls_certificate == NULL) != (c->upstream.tls_key == NULL)) {
            const char *missing = c->upstream.tls_key == NULL ? "upstream.tls.key"
                                                              : "upstream.tls.certificate";
            const char *other = c->upstream.tls_key == NULL ? "upstream.tls.certificate"
                                                            : "upstream.tls.key";

            if (!locate(x, missing, &line, &col))
                cfg_err_at(x, line, col, missing, "required together with %s", other);
        }
    } else {
        for (i = 0; i < 4; i++)
            if (is_set(x, upstream_tls[i]) && !locate(x, upstream_tls[i], &line, &col))
                cfg_err_at(x, line, col, upstream_tls[i],
                           "set, but upstream.tls.enabled is false (enable it, or remove this key)");
    }

    for (i = 1; i < 4; i++) {
        for (j = 0; j < i; j++) {
            if (hval[i] != NULL && hval[j] != NULL && strcasecmp(hval[i], hval[j]) == 0 &&
                !locate(x, hnames[i], &line, &col)) {
                cfg_err_at(x, line, col, hnames[i], "'%s' is already the name of %s", hval[i],
                           hnames[j]);
                break;
            }
        }
    }

    /* Keys in a file are for tickets several instances decrypt: stateless
     * ones. The in-memory cache is per process, so one or the other. */
    if (c->tls.ticket_key_file != NULL) {
        if (is_set(x, "tls.session_cache") && c->tls.session_cache > 0 &&
            !locate(x, "tls.session_cache", &line, &col))
            cfg_err_at(x, line, col, "tls.session_cache",
                       "must be 0 with tls.ticket_key_file (tickets several instances decrypt "
                       "are stateless; the session cache is per process)");
        c->tls.session_cache = 0;
    }

    if (!c->tls.allow_insecure_key_permissions) {
        check_key_mode(x, "tls.key", c->tls.key);
        check_key_mode(x, "upstream.tls.key", c->upstream.tls_key);
        check_key_mode(x, "tls.ticket_key_file", c->tls.ticket_key_file);
    }
}
