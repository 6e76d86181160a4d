/*
 * cfg_internal.h - what the files of config/ share and nobody else sees:
 * the YAML node tree (cfg_yaml.c), the key table (cfg_schema.c) and the
 * load context with its error reporting (cfg_load.c, cfg_apply.c).
 */
#ifndef MTLS_CFG_INTERNAL_H
#define MTLS_CFG_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

/* Limits that keep a hostile or broken file cheap to reject. */
#define CFG_MAX_FILE_BYTES (1024 * 1024)
#define CFG_MAX_DEPTH 16
#define CFG_MAX_NODES 50000

/* ---- YAML node tree (cfg_yaml.c) ---- */

enum ynode_kind { YN_SCALAR, YN_SEQ, YN_MAP };

/*
 * One YAML node with the position where it starts (1-based). A mapping's
 * kid[] holds key, value, key, value...; a sequence's holds its items.
 */
struct ynode {
    enum ynode_kind kind;
    unsigned line, col;
    char *str;              /* scalar text, NUL-terminated (no NUL inside) */
    size_t len;
    int plain;              /* scalar written without quotes */
    struct ynode **kid;
    size_t n, cap;
};

struct cfg_ctx;

/*
 * Parses buf (one YAML document) into a tree. Returns 0 with *root set (NULL
 * for an empty document), or -1 after reporting the syntax error in x.
 */
int cfg_yaml_parse(struct cfg_ctx *x, const char *buf, size_t len, struct ynode **root);
void cfg_ynode_free(struct ynode *n);      /* NULL is fine */
/* Plain "", "~", "null": the YAML null ("key:" with nothing after it). */
int cfg_ynode_is_null(const struct ynode *n);

/* ---- key table (cfg_schema.c) ---- */

enum cfg_type {
    CT_SECTION,             /* a mapping of further keys */
    CT_STRING,              /* char * */
    CT_BOOL,                /* int 0/1 */
    CT_UINT,                /* unsigned or uint64_t/size_t (size) */
    CT_DURATION,            /* unsigned milliseconds */
    CT_SIZE,                /* bytes, into a field of size bytes */
    CT_ENUM,                /* int, from names[] */
    CT_PATH,                /* char *, absolute; or a keyword of names[] */
    CT_ADDRS,               /* struct cfg_addr * at off, size_t count at off_n */
    CT_ADDR,                /* struct cfg_addr * (one, or NULL) */
    CT_IDENTITIES           /* identities.map */
};

#define CF_REQUIRED 0x01u   /* must be set (and non-empty for a list) */
#define CF_NONEMPTY 0x02u   /* string: "" is refused */
#define CF_AUTO     0x04u   /* uint: "auto" = number of online cores */
#define CF_OFF      0x08u   /* duration: off/false = 0; addr: off = NULL */
#define CF_READ     0x10u   /* path: a regular file we can open for reading */
#define CF_PARENT   0x20u   /* path: written later; its directory must exist */
#define CF_RESTART  0x40u   /* a new value needs a restart, not a reload */

/* Name <-> value of an enum, or a keyword a path key keeps verbatim. */
struct cfg_name {
    const char *name;
    int value;
};

struct cfg_key {
    const char *name;        /* dotted: "tls.key" */
    enum cfg_type type;
    size_t off;              /* the field in struct cfg */
    size_t size;             /* its size in bytes */
    size_t off_n;            /* CT_ADDRS: the count field */
    const char *def;         /* default, written as in the file; NULL: none */
    uint64_t min, max;       /* CT_UINT, CT_DURATION (ms), CT_SIZE (bytes) */
    unsigned flags;          /* CF_* */
    const struct cfg_name *names; /* CT_ENUM values, CT_PATH keywords */
    /* Extra check of a string value: 0, or -1 with the cause in why. */
    int (*check)(const char *s, char *why, size_t len);
    const char *type_doc;    /* for the README table */
    const char *help;        /* one line: what it does */
};

extern const struct cfg_key cfg_keys[];
extern const size_t cfg_nkeys;

/* Index of the key named name (the first len bytes), or -1. */
int cfg_key_find(const char *name, size_t len);

/* ---- load context and reporting (cfg_load.c) ---- */

enum cfg_seen { SEEN_UNSET = 0, SEEN_NULL, SEEN_SET, SEEN_BAD };

struct cfg_mark {
    unsigned line, col;
};

/* Where each table key was set; lives on in the struct cfg for cfg_where. */
struct cfg_origin {
    char *name;              /* the file as the caller named it */
    struct cfg_mark mark[];  /* cfg_nkeys entries, line 0 = not set */
};

struct cfg_ctx {
    const char *name;        /* file name for messages */
    const char *dir;         /* absolute directory for relative paths */
    const char *buf;         /* the text, to turn offsets into positions */
    size_t len;
    struct cfg_diag *diag;
    unsigned errors;         /* problems found (diag may be capped) */
    struct cfg *c;
    const struct ynode *root;
    enum cfg_seen *seen;     /* per table key */
    struct cfg_mark *mark;   /* per table key: value (or section key) mark */
};

/* "NAME:LINE:COL: KEY: cause"; at NULL means the document start. */
void cfg_err(struct cfg_ctx *x, const struct ynode *at, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Same at an explicit position. */
void cfg_err_at(struct cfg_ctx *x, unsigned line, unsigned col, const char *key,
                const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Copies s into buf for a message: at most ~60 bytes, controls as '?'. */
const char *cfg_shown(const char *s, char *buf, size_t len);

/* Returns the key of names[] nearest to word (edit distance), or NULL. */
const char *cfg_nearest(const char *word, const char *const *names, size_t n);

/* rel made absolute against dir, "." and "//" folded; new string or NULL. */
char *cfg_resolve(const char *dir, const char *rel);

/* ---- applying the tree to a struct cfg (cfg_apply.c) ---- */

/* Sets every key to its default. 0 / -1 (out of memory, reported). */
int cfg_apply_defaults(struct cfg_ctx *x);
/* Walks the tree root into x->c, reporting each problem. */
void cfg_apply_tree(struct cfg_ctx *x, const struct ynode *root);
/* Required keys and cross-key rules, after the walk. */
void cfg_validate(struct cfg_ctx *x);
/* Frees what the key owns in c and zeroes the field. */
void cfg_field_free(struct cfg *c, const struct cfg_key *k);

#endif
