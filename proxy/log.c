/*
 * log.c - per-thread log buffers and one logger thread (see log.h).
 */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LB_CAP (64 * 1024)        /* bytes per channel buffer */
#define LB_LINE_MAX 4096          /* longer lines are cut */
#define LOG_MAX_BUFS 512
#define FLUSH_MS 50

enum { CH_ERROR = 0, CH_ACCESS = 1, CH__COUNT };

struct gw_chan {
    char *active;                 /* written by the owner under lock */
    char *spare;                  /* written out by the flusher only */
    size_t len;
};

struct gw_logbuf {
    pthread_mutex_t lock;
    struct gw_chan ch[CH__COUNT];
};

static struct {
    int running;
    pthread_t thread;
    pthread_mutex_t lock;         /* registry, cond */
    pthread_cond_t cond;
    struct gw_logbuf *bufs[LOG_MAX_BUFS];
    size_t n_bufs;
    struct gw_logbuf *main_buf;
    int fd[CH__COUNT];            /* -1 = off */
    char *path[CH__COUNT];        /* NULL = stderr / off */
    int level;                    /* atomics below: relaxed */
    int format;
    int reopen;
    int stop;
    int pending;                  /* new destinations for the logger (under lock) */
    int new_fd[CH__COUNT];
    char *new_path[CH__COUNT];
    uint64_t dropped;
} L = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .cond = PTHREAD_COND_INITIALIZER,
    .fd = {2, 2},
    .level = CFG_LOG_INFO,
    .format = CFG_LOG_TEXT,
};

static const char *const level_names[] = {"debug", "info", "warn", "error"};

static void close_dests(void);

const char *gw_log_level_name(enum cfg_log_level level)
{
    return (unsigned)level < 4 ? level_names[level] : "error";
}

/*
 * A bounded string builder: never overflows. A string value stops short of
 * the last `keep` bytes of the buffer (and of its closing quote), so that
 * whatever a line must end with ("}" of a JSON object) still fits when a
 * long message is cut; the cut never splits an escape or a UTF-8 sequence.
 */
struct sb {
    char *p;
    size_t len, cap;
    size_t keep;
};

#define SB_KEEP 8                 /* room for the end of a line after a cut value */

/* 1 when n more bytes of a string value fit (closing quote and keep left). */
static int sb_room(const struct sb *s, size_t n)
{
    return s->len + n + 1 + s->keep < s->cap;
}

static void sb_putn(struct sb *s, const char *v, size_t n)
{
    if (s->len + n >= s->cap)
        n = s->cap - 1 - s->len;
    memcpy(s->p + s->len, v, n);
    s->len += n;
    s->p[s->len] = '\0';
}

static void sb_puts(struct sb *s, const char *v)
{
    sb_putn(s, v, strlen(v));
}

static void sb_vprintf(struct sb *s, const char *fmt, va_list ap)
{
    int n = vsnprintf(s->p + s->len, s->cap - s->len, fmt, ap);

    if (n < 0)
        return;
    s->len += (size_t)n < s->cap - s->len ? (size_t)n : s->cap - 1 - s->len;
}

static void sb_printf(struct sb *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(struct sb *s, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    sb_vprintf(s, fmt, ap);
    va_end(ap);
}

/*
 * The length of the well-formed UTF-8 sequence at u (lead byte >= 0x80):
 * 2..4, or 0 when it is not one (a stray continuation byte, an overlong
 * form, a surrogate, above U+10FFFF, or cut by the string's NUL).
 */
static size_t utf8_seq_len(const unsigned char *u)
{
    unsigned char lo = 0x80, hi = 0xbf;

    if (u[0] >= 0xc2 && u[0] <= 0xdf)
        return (u[1] & 0xc0) == 0x80 ? 2 : 0;
    if (u[0] >= 0xe0 && u[0] <= 0xef) {
        if (u[0] == 0xe0)
            lo = 0xa0;            /* overlong */
        else if (u[0] == 0xed)
            hi = 0x9f;            /* surrogates */
        return u[1] >= lo && u[1] <= hi && (u[2] & 0xc0) == 0x80 ? 3 : 0;
    }
    if (u[0] >= 0xf0 && u[0] <= 0xf4) {
        if (u[0] == 0xf0)
            lo = 0x90;            /* overlong */
        else if (u[0] == 0xf4)
            hi = 0x8f;            /* above U+10FFFF */
        return u[1] >= lo && u[1] <= hi && (u[2] & 0xc0) == 0x80 && (u[3] & 0xc0) == 0x80 ? 4
                                                                                          : 0;
    }
    return 0;
}

/*
 * A JSON string literal, quotes included; NULL is written as "-". '"', '\\'
 * and control characters are escaped; a byte that is not part of
 * well-formed UTF-8 becomes U+FFFD (escaped), so that every line is valid
 * JSON for a strict reader. Cut (see struct sb) when it does not fit.
 */
static void sb_json_str(struct sb *s, const char *v)
{
    const unsigned char *u = (const unsigned char *)(v ? v : "-");
    char esc[8];
    size_t n;

    sb_putn(s, "\"", 1);
    for (; *u; u += n) {
        n = 1;
        if (*u == '"' || *u == '\\') {
            esc[0] = '\\';
            esc[1] = (char)*u;
            if (!sb_room(s, 2))
                break;
            sb_putn(s, esc, 2);
        } else if (*u < 0x20 || *u == 0x7f) {
            snprintf(esc, sizeof(esc), "\\u%04x", *u);
            if (!sb_room(s, 6))
                break;
            sb_putn(s, esc, 6);
        } else if (*u < 0x80) {
            if (!sb_room(s, 1))
                break;
            sb_putn(s, (const char *)u, 1);
        } else if ((n = utf8_seq_len(u)) != 0) {
            if (!sb_room(s, n))
                break;
            sb_putn(s, (const char *)u, n);
        } else {
            n = 1;
            if (!sb_room(s, 6))
                break;
            sb_putn(s, "\\ufffd", 6);
        }
    }
    sb_putn(s, "\"", 1);
}

/* A text value: bare when it is safe, else quoted with escapes. */
static void sb_text_val(struct sb *s, const char *v)
{
    const unsigned char *u;
    char esc[8];
    int bare = 1;

    if (!v || !*v)
        v = "-";
    for (u = (const unsigned char *)v; *u; u++)
        if (*u <= 0x20 || *u == '"' || *u == '=' || *u == '\\' || *u >= 0x7f)
            bare = 0;
    if (bare) {
        sb_puts(s, v);
        return;
    }
    sb_putn(s, "\"", 1);
    for (u = (const unsigned char *)v; *u; u++) {
        if (*u == '"' || *u == '\\') {
            esc[0] = '\\';
            esc[1] = (char)*u;
            if (!sb_room(s, 2))
                break;
            sb_putn(s, esc, 2);
        } else if (*u < 0x20 || *u == 0x7f) {
            snprintf(esc, sizeof(esc), "\\x%02x", *u);
            if (!sb_room(s, 4))
                break;
            sb_putn(s, esc, 4);
        } else {
            if (!sb_room(s, 1))
                break;
            sb_putn(s, (const char *)u, 1);
        }
    }
    sb_putn(s, "\"", 1);
}

/* key=value (text) or "key":"value" (json), with a separator before. */
static void sb_field(struct sb *s, int json, const char *key, const char *v)
{
    if (json) {
        sb_printf(s, "%s\"%s\":", s->len > 1 ? "," : "", key);
        sb_json_str(s, v);
    } else {
        sb_printf(s, "%s%s=", s->len ? " " : "", key);
        sb_text_val(s, v);
    }
}

/*
 * A number that may be absent (v < 0): JSON null, or "-" in text. A JSON
 * reader gets a number or null, never the string "-".
 */
static void sb_field_num(struct sb *s, int json, const char *key, int64_t v)
{
    if (json && v < 0)
        sb_printf(s, "%s\"%s\":null", s->len > 1 ? "," : "", key);
    else if (v < 0)
        sb_field(s, json, key, NULL);
    else if (json)
        sb_printf(s, "%s\"%s\":%lld", s->len > 1 ? "," : "", key, (long long)v);
    else
        sb_printf(s, "%s%s=%lld", s->len ? " " : "", key, (long long)v);
}

/* A number that is always there (counts, ids): unsigned, never "-". */
static void sb_field_u64(struct sb *s, int json, const char *key, uint64_t v)
{
    if (json)
        sb_printf(s, "%s\"%s\":%llu", s->len > 1 ? "," : "", key, (unsigned long long)v);
    else
        sb_printf(s, "%s%s=%llu", s->len ? " " : "", key, (unsigned long long)v);
}

static void now_iso(char *buf, size_t len)
{
    struct timespec ts;
    struct tm tm;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", (tm.tm_year + 1900) % 10000,
             (tm.tm_mon + 1) % 100, tm.tm_mday % 100, tm.tm_hour % 100, tm.tm_min % 100,
             tm.tm_sec % 100, (int)(ts.tv_nsec / 1000000) % 1000);
}

static void write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);

        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return; /* a log write failure has nowhere to be reported */
        p += w;
        n -= (size_t)w;
    }
}

/* Appends a finished line (newline included) to b's channel, or drops it. */
static void emit(struct gw_logbuf *b, int ch, const char *line, size_t n)
{
    struct gw_chan *c;
    int wake = 0;

    if (!b)
        b = L.main_buf;
    if (!b || !__atomic_load_n(&L.running, __ATOMIC_ACQUIRE)) {
        int fd = __atomic_load_n(&L.fd[ch], __ATOMIC_RELAXED);

        if (fd >= 0)
            write_all(fd, line, n);
        return;
    }
    c = &b->ch[ch];
    pthread_mutex_lock(&b->lock);
    if (c->len + n > LB_CAP) {
        __atomic_fetch_add(&L.dropped, 1, __ATOMIC_RELAXED);
    } else {
        memcpy(c->active + c->len, line, n);
        c->len += n;
        wake = c->len > LB_CAP / 2;
    }
    pthread_mutex_unlock(&b->lock);
    if (wake)
        pthread_cond_signal(&L.cond);
}

int gw_log_enabled(enum cfg_log_level level)
{
    return (int)level >= __atomic_load_n(&L.level, __ATOMIC_RELAXED);
}

void gw_log(struct gw_logbuf *b, enum cfg_log_level level, uint64_t conn_id,
            const char *fmt, ...)
{
    char line[LB_LINE_MAX], msg[LB_LINE_MAX - 128], ts[40];
    struct sb s = {line, 0, sizeof(line) - 1, SB_KEEP};
    int json = __atomic_load_n(&L.format, __ATOMIC_RELAXED) == CFG_LOG_JSON;
    va_list ap;

    if (!gw_log_enabled(level))
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    now_iso(ts, sizeof(ts));
    line[0] = '\0';
    if (json)
        sb_puts(&s, "{");
    sb_field(&s, json, "time", ts);
    sb_field(&s, json, "level", gw_log_level_name(level));
    sb_field_u64(&s, json, "conn", conn_id);
    sb_field(&s, json, "msg", msg);
    if (json)
        sb_puts(&s, "}");
    line[s.len++] = '\n';
    emit(b, CH_ERROR, line, s.len);
}

void gw_log_access(struct gw_logbuf *b, const struct gw_access_rec *r)
{
    char line[LB_LINE_MAX], ts[40];
    struct sb s = {line, 0, sizeof(line) - 1, SB_KEEP};
    int json = __atomic_load_n(&L.format, __ATOMIC_RELAXED) == CFG_LOG_JSON;

    if (__atomic_load_n(&L.fd[CH_ACCESS], __ATOMIC_RELAXED) < 0)
        return;
    now_iso(ts, sizeof(ts));
    line[0] = '\0';
    if (json)
        sb_puts(&s, "{");
    sb_field(&s, json, "time", ts);
    sb_field(&s, json, "client", r->client);
    sb_field(&s, json, "cn", r->cn);
    sb_field(&s, json, "identity", r->identity);
    sb_field(&s, json, "method", r->method);
    sb_field(&s, json, "path", r->path);
    sb_field_num(&s, json, "status", r->status);
    sb_field_u64(&s, json, "bytes", r->bytes);
    sb_field_num(&s, json, "upstream_ms", r->upstream_ms);
    sb_field_num(&s, json, "total_ms", r->total_ms);
    sb_field(&s, json, "tls", r->tls_version);
    sb_field(&s, json, "request_id", r->request_id);
    if (json)
        sb_puts(&s, "}");
    line[s.len++] = '\n';
    emit(b, CH_ACCESS, line, s.len);
}

uint64_t gw_log_dropped(void)
{
    return __atomic_load_n(&L.dropped, __ATOMIC_RELAXED);
}

void gw_log_reconfigure(enum cfg_log_level level, enum cfg_log_format format)
{
    __atomic_store_n(&L.level, (int)level, __ATOMIC_RELAXED);
    __atomic_store_n(&L.format, (int)format, __ATOMIC_RELAXED);
}

void gw_log_reopen(void)
{
    __atomic_store_n(&L.reopen, 1, __ATOMIC_RELAXED);
    pthread_cond_signal(&L.cond);
}

static struct gw_logbuf *logbuf_alloc(void)
{
    struct gw_logbuf *b = calloc(1, sizeof(*b));
    int i;

    if (!b)
        return NULL;
    pthread_mutex_init(&b->lock, NULL);
    for (i = 0; i < CH__COUNT; i++) {
        b->ch[i].active = malloc(LB_CAP);
        b->ch[i].spare = malloc(LB_CAP);
        if (!b->ch[i].active || !b->ch[i].spare) {
            for (; i >= 0; i--) {
                free(b->ch[i].active);
                free(b->ch[i].spare);
            }
            pthread_mutex_destroy(&b->lock);
            free(b);
            return NULL;
        }
    }
    return b;
}

static void logbuf_free(struct gw_logbuf *b)
{
    int i;

    if (!b)
        return;
    for (i = 0; i < CH__COUNT; i++) {
        free(b->ch[i].active);
        free(b->ch[i].spare);
    }
    pthread_mutex_destroy(&b->lock);
    free(b);
}

struct gw_logbuf *gw_logbuf_new(void)
{
    struct gw_logbuf *b = NULL;

    pthread_mutex_lock(&L.lock);
    if (L.running && L.n_bufs < LOG_MAX_BUFS) {
        b = logbuf_alloc();
        if (b)
            L.bufs[L.n_bufs++] = b;
    }
    pthread_mutex_unlock(&L.lock);
    return b;
}

/* Swaps each buffer out under its lock, then writes it without the lock. */
static void flush_all(void)
{
    size_t i, n;
    int ch;

    pthread_mutex_lock(&L.lock);
    n = L.n_bufs;
    pthread_mutex_unlock(&L.lock);
    for (i = 0; i < n; i++) {
        struct gw_logbuf *b = L.bufs[i];

        for (ch = 0; ch < CH__COUNT; ch++) {
            struct gw_chan *c = &b->ch[ch];
            char *out;
            size_t len;

            pthread_mutex_lock(&b->lock);
            out = c->active;
            len = c->len;
            c->active = c->spare;
            c->spare = out;
            c->len = 0;
            pthread_mutex_unlock(&b->lock);
            if (len > 0 && L.fd[ch] >= 0)
                write_all(L.fd[ch], out, len);
        }
    }
}

static int open_dest(const char *path)
{
    return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
}

/* Reopens the file destinations (log rotation); keeps the old fd on error. */
static void reopen_files(void)
{
    int ch;

    for (ch = 0; ch < CH__COUNT; ch++) {
        int fd;

        if (!L.path[ch])
            continue;
        fd = open_dest(L.path[ch]);
        if (fd < 0)
            continue;
        close(L.fd[ch]);
        __atomic_store_n(&L.fd[ch], fd, __ATOMIC_RELAXED);
    }
}

/* Closes dests of a pending swap that was never installed (paths freed). */
static void drop_dests(int fd[CH__COUNT], char *path[CH__COUNT])
{
    int ch;

    for (ch = 0; ch < CH__COUNT; ch++) {
        if (path[ch] && fd[ch] > 2)
            close(fd[ch]);
        free(path[ch]);
        path[ch] = NULL;
        fd[ch] = 2;
    }
}

/* Logger thread: makes fd/path the destinations, closing the old files. */
static void install_dests(int fd[CH__COUNT], char *path[CH__COUNT])
{
    int ch;

    for (ch = 0; ch < CH__COUNT; ch++) {
        int old = L.fd[ch];

        __atomic_store_n(&L.fd[ch], fd[ch], __ATOMIC_RELAXED);
        if (L.path[ch] && old > 2)
            close(old);
        free(L.path[ch]);
        L.path[ch] = path[ch];
        path[ch] = NULL;
    }
}

static void *logger_main(void *arg)
{
    int new_fd[CH__COUNT], swap;
    char *new_path[CH__COUNT];

    (void)arg;
    pthread_mutex_lock(&L.lock);
    while (!L.stop) {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += FLUSH_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&L.cond, &L.lock, &ts);
        swap = L.pending;
        if (swap) {
            memcpy(new_fd, L.new_fd, sizeof(new_fd));
            memcpy(new_path, L.new_path, sizeof(new_path));
            memset(L.new_path, 0, sizeof(L.new_path));
            L.pending = 0;
        }
        pthread_mutex_unlock(&L.lock);
        if (swap) {
            flush_all(); /* what was logged before goes where it was headed */
            install_dests(new_fd, new_path);
            __atomic_store_n(&L.reopen, 0, __ATOMIC_RELAXED); /* just opened */
        }
        if (__atomic_exchange_n(&L.reopen, 0, __ATOMIC_RELAXED))
            reopen_files();
        flush_all();
        pthread_mutex_lock(&L.lock);
    }
    pthread_mutex_unlock(&L.lock);
    flush_all();
    return NULL;
}

/*
 * Opens one channel's destination into *fd / *path: stderr (2, NULL), off
 * (access only: -1, NULL), or a file (its fd and a copy of its name). 0, or
 * -1 with the file and cause in err and *fd = 2, *path = NULL.
 */
static int open_one(int ch, const char *dest, int *fd, char **path, char *err, size_t errlen)
{
    *fd = 2;
    *path = NULL;
    if (!dest || strcmp(dest, "stderr") == 0)
        return 0;
    if (ch == CH_ACCESS && strcmp(dest, "off") == 0) {
        *fd = -1;
        return 0;
    }
    *fd = open_dest(dest);
    if (*fd < 0) {
        snprintf(err, errlen, "%s: %s: cannot open the log file: %s",
                 ch == CH_ACCESS ? "log.access" : "log.error", dest, strerror(errno));
        *fd = 2;
        return -1;
    }
    *path = strdup(dest);
    if (!*path) {
        snprintf(err, errlen, "%s: out of memory", dest);
        close(*fd);
        *fd = 2;
        return -1;
    }
    return 0;
}

/* Sets up one channel's destination at start. */
static int setup_dest(int ch, const char *dest, char *err, size_t errlen)
{
    return open_one(ch, dest, &L.fd[ch], &L.path[ch], err, errlen);
}

int gw_log_set_dests(const char *access, const char *error, char *err, size_t errlen)
{
    int fd[CH__COUNT] = {2, 2};
    char *path[CH__COUNT] = {NULL, NULL};
    int rc = -1;

    if (open_one(CH_ERROR, error, &fd[CH_ERROR], &path[CH_ERROR], err, errlen) < 0 ||
        open_one(CH_ACCESS, access, &fd[CH_ACCESS], &path[CH_ACCESS], err, errlen) < 0)
        goto out;
    if (!__atomic_load_n(&L.running, __ATOMIC_ACQUIRE)) {
        /* no logger thread: lines go straight to L.fd from this thread */
        close_dests();
        install_dests(fd, path);
        rc = 0;
        goto out;
    }
    pthread_mutex_lock(&L.lock);
    drop_dests(L.new_fd, L.new_path); /* an earlier swap not yet taken */
    memcpy(L.new_fd, fd, sizeof(fd));
    memcpy(L.new_path, path, sizeof(path));
    memset(path, 0, sizeof(path));
    L.pending = 1;
    pthread_cond_signal(&L.cond);
    pthread_mutex_unlock(&L.lock);
    rc = 0;
out:
    if (rc < 0)
        drop_dests(fd, path);
    return rc;
}

static void close_dests(void)
{
    int ch;

    for (ch = 0; ch < CH__COUNT; ch++) {
        if (L.path[ch] && L.fd[ch] > 2)
            close(L.fd[ch]);
        free(L.path[ch]);
        L.path[ch] = NULL;
        L.fd[ch] = 2;
    }
}

int gw_log_start(const struct gw_log_opts *opts, char *err, size_t errlen)
{
    int rc = -1;

    if (L.running) {
        snprintf(err, errlen, "logger already running");
        goto out;
    }
    gw_log_reconfigure(opts->level, opts->format);
    if (setup_dest(CH_ERROR, opts->error, err, errlen) < 0 ||
        setup_dest(CH_ACCESS, opts->access, err, errlen) < 0)
        goto out;
    L.main_buf = logbuf_alloc();
    if (!L.main_buf) {
        snprintf(err, errlen, "logger: out of memory");
        goto out;
    }
    L.bufs[0] = L.main_buf;
    L.n_bufs = 1;
    L.stop = 0;
    __atomic_store_n(&L.running, 1, __ATOMIC_RELEASE);
    if (pthread_create(&L.thread, NULL, logger_main, NULL) != 0) {
        snprintf(err, errlen, "logger: cannot start thread");
        __atomic_store_n(&L.running, 0, __ATOMIC_RELEASE);
        goto out;
    }
    rc = 0;
out:
    if (rc < 0) {
        logbuf_free(L.main_buf);
        L.main_buf = NULL;
        L.n_bufs = 0;
        close_dests();
    }
    return rc;
}

void gw_log_stop(void)
{
    size_t i;

    if (!L.running)
        return;
    pthread_mutex_lock(&L.lock);
    L.stop = 1;
    pthread_cond_signal(&L.cond);
    pthread_mutex_unlock(&L.lock);
    pthread_join(L.thread, NULL);
    __atomic_store_n(&L.running, 0, __ATOMIC_RELEASE);
    if (L.pending) { /* set after the thread's last turn: never installed */
        drop_dests(L.new_fd, L.new_path);
        L.pending = 0;
    }
    for (i = 0; i < L.n_bufs; i++)
        logbuf_free(L.bufs[i]);
    L.n_bufs = 0;
    L.main_buf = NULL;
    close_dests();
}
