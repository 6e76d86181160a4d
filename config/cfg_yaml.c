/*
 * cfg_yaml.c - libyaml events into a small tree of nodes that remember
 * where they start, so that every later message can say file:line:column.
 *
 * The tree is deliberately plain: scalars, sequences and mappings. Aliases
 * are refused (no "billion laughs"), only one document is allowed, and the
 * nesting depth and node count are bounded.
 */
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "cfg_internal.h"

void cfg_ynode_free(struct ynode *n)
{
    size_t i;

    if (n == NULL)
        return;
    for (i = 0; i < n->n; i++)
        cfg_ynode_free(n->kid[i]);
    free(n->kid);
    free(n->str);
    free(n);
}

int cfg_ynode_is_null(const struct ynode *n)
{
    if (n == NULL)
        return 1;
    if (n->kind != YN_SCALAR || !n->plain)
        return 0;
    return n->len == 0 || strcmp(n->str, "~") == 0 || strcmp(n->str, "null") == 0 ||
           strcmp(n->str, "Null") == 0 || strcmp(n->str, "NULL") == 0;
}

/* A new node of kind at mark m (0-based in libyaml). NULL when out of memory. */
static struct ynode *node_new(enum ynode_kind kind, yaml_mark_t m)
{
    struct ynode *n = calloc(1, sizeof(*n));

    if (n == NULL)
        return NULL;
    n->kind = kind;
    n->line = (unsigned)m.line + 1;
    n->col = (unsigned)m.column + 1;
    return n;
}

/* Appends kid to parent. 0 / -1 (out of memory; kid still the caller's). */
static int node_add(struct ynode *parent, struct ynode *kid)
{
    if (parent->n == parent->cap) {
        size_t cap = parent->cap ? parent->cap * 2 : 8;
        struct ynode **k = realloc(parent->kid, cap * sizeof(*k));

        if (k == NULL)
            return -1;
        parent->kid = k;
        parent->cap = cap;
    }
    parent->kid[parent->n++] = kid;
    return 0;
}

/* 1-based line and column of byte offset off in x->buf (reader errors). */
static void offset_mark(const struct cfg_ctx *x, size_t off, unsigned *line, unsigned *col)
{
    size_t i;

    *line = 1;
    *col = 1;
    for (i = 0; i < off && i < x->len; i++) {
        if (x->buf[i] == '\n') {
            (*line)++;
            *col = 1;
        } else {
            (*col)++;
        }
    }
}

/* Reports the parser's error with libyaml's own words and position. */
static void syntax_error(struct cfg_ctx *x, const yaml_parser_t *p)
{
    unsigned line, col;
    const char *problem = p->problem != NULL ? p->problem : "unknown error";

    switch (p->error) {
    case YAML_MEMORY_ERROR:
        cfg_err_at(x, 1, 1, "syntax error", "out of memory");
        return;
    case YAML_READER_ERROR:
        offset_mark(x, p->problem_offset, &line, &col);
        cfg_err_at(x, line, col, "syntax error", "%s", problem);
        return;
    default:
        break;
    }
    /* At the end of a file without a final newline libyaml moves to a line
     * of its own; point at the real end instead. */
    if (p->problem_mark.index >= x->len)
        offset_mark(x, x->len, &line, &col);
    else {
        line = (unsigned)p->problem_mark.line + 1;
        col = (unsigned)p->problem_mark.column + 1;
    }
    if (p->context == NULL)
        cfg_err_at(x, line, col, "syntax error", "%s", problem);
    else if (p->context_mark.index == p->problem_mark.index)
        cfg_err_at(x, line, col, "syntax error", "%s (%s)", problem, p->context);
    else
        cfg_err_at(x, line, col, "syntax error", "%s (%s at line %u column %u)", problem,
                   p->context, (unsigned)p->context_mark.line + 1,
                   (unsigned)p->context_mark.column + 1);
}

/* The tree being built: the open collections, innermost last. */
struct builder {
    struct ynode *stack[CFG_MAX_DEPTH];
    size_t depth, nodes;
    int docs;
    struct ynode *root;
};

/* Reports "out of memory" at line:col and frees n. Always -1. */
static int oom(struct cfg_ctx *x, struct ynode *n, unsigned line, unsigned col)
{
    cfg_ynode_free(n);
    cfg_err_at(x, line, col, "syntax error", "out of memory");
    return -1;
}

/*
 * Puts the new node n into the innermost open collection, or makes it the
 * root; a collection is opened. Takes n in all cases. 0 / -1 (reported).
 */
static int add_node(struct cfg_ctx *x, struct builder *b, struct ynode *n)
{
    if (++b->nodes > CFG_MAX_NODES) {
        cfg_err_at(x, n->line, n->col, "syntax error", "more than %d values", CFG_MAX_NODES);
        cfg_ynode_free(n);
        return -1;
    }
    if (b->depth == 0) {
        cfg_ynode_free(b->root);        /* NULL: one document, one root */
        b->root = n;
    } else if (node_add(b->stack[b->depth - 1], n) != 0) {
        return oom(x, n, n->line, n->col);
    }
    if (n->kind != YN_SCALAR)
        b->stack[b->depth++] = n;
    return 0;
}

/* One libyaml event into the tree: 1 at the end of the stream, 0 to go on, -1 (reported). */
static int take_event(struct cfg_ctx *x, struct builder *b, const yaml_event_t *ev)
{
    unsigned line = (unsigned)ev->start_mark.line + 1, col = (unsigned)ev->start_mark.column + 1;
    struct ynode *n;

    switch (ev->type) {
    case YAML_STREAM_END_EVENT:
        return 1;
    case YAML_DOCUMENT_START_EVENT:
        if (++b->docs > 1) {
            cfg_err_at(x, line, col, "syntax error", "only one YAML document is allowed");
            return -1;
        }
        return 0;
    case YAML_ALIAS_EVENT:
        cfg_err_at(x, line, col, "syntax error", "aliases (*%s) are not supported",
                   (const char *)ev->data.alias.anchor);
        return -1;
    case YAML_SCALAR_EVENT:
        if (strlen((const char *)ev->data.scalar.value) != ev->data.scalar.length) {
            cfg_err_at(x, line, col, "syntax error", "a value contains a NUL character");
            return -1;
        }
        if ((n = node_new(YN_SCALAR, ev->start_mark)) == NULL)
            return oom(x, NULL, line, col);
        if ((n->str = strdup((const char *)ev->data.scalar.value)) == NULL)
            return oom(x, n, line, col);
        n->len = ev->data.scalar.length;
        n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
        return add_node(x, b, n);
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT:
        if (b->depth == CFG_MAX_DEPTH) {
            cfg_err_at(x, line, col, "syntax error", "nested more than %d levels deep",
                       CFG_MAX_DEPTH);
            return -1;
        }
        n = node_new(ev->type == YAML_SEQUENCE_START_EVENT ? YN_SEQ : YN_MAP, ev->start_mark);
        if (n == NULL)
            return oom(x, NULL, line, col);
        return add_node(x, b, n);
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
        if (b->depth > 0)
            b->depth--;
        return 0;
    default:
        return 0;
    }
}

/*
 * Builds the tree from libyaml's event stream. On failure nothing is
 * returned: a partial tree would only produce follow-up noise.
 */
int cfg_yaml_parse(struct cfg_ctx *x, const char *buf, size_t len, struct ynode **rootp)
{
    yaml_parser_t p;
    yaml_event_t ev;
    struct builder b;
    int r, rc = -1;

    memset(&b, 0, sizeof(b));
    *rootp = NULL;
    if (!yaml_parser_initialize(&p)) {
        cfg_err_at(x, 1, 1, "syntax error", "out of memory");
        return -1;
    }
    yaml_parser_set_input_string(&p, (const unsigned char *)buf, len);
    for (;;) {
        if (!yaml_parser_parse(&p, &ev)) {
            syntax_error(x, &p);
            goto out;
        }
        r = take_event(x, &b, &ev);
        yaml_event_delete(&ev);
        if (r < 0)
            goto out;
        if (r > 0)
            break;
    }
    rc = 0;
out:
    if (rc != 0) {
        cfg_ynode_free(b.root);
        b.root = NULL;
    }
    yaml_parser_delete(&p);
    *rootp = b.root;
    return rc;
}
