/*
 * log.h - the gateway's error log and access log, without blocking a loop.
 *
 * Every thread that logs (each worker, and the main thread) owns one
 * struct gw_logbuf: lines are formatted straight into that buffer under a
 * lock shared only with the flusher, and one logger thread writes the
 * buffers out every 50 ms, or sooner when one is half full. A line that does
 * not fit is dropped and counted (gw_log_dropped()); a worker never waits for
 * a disk or a pipe.
 *
 * Error lines (text):   time=2025-01-02T03:04:05.678Z level=warn conn=12 msg="..."
 *             (json):   {"time":"...","level":"warn","conn":12,"msg":"..."}
 * Access lines (text):  time=... client=127.0.0.1:5555 cn=attestor1
 *                       identity=svc-attestor-1 method=GET path=/x status=200
 *                       bytes=123 upstream_ms=2 total_ms=3 tls=TLSv1.3
 *                       request_id=0123...
 *             (json):   the same keys as one JSON object per line.
 * In text lines a value with a space, a quote, '=' or a control character is
 * written in double quotes with \" \\ and \xNN escapes; "-" means "none".
 * In JSON lines a number that is absent (upstream_ms without an upstream) is
 * null, never "-"; status, bytes, total_ms and conn are always numbers; an
 * absent string is "-"; strings escape '"', '\\' and control characters, and
 * a byte that is not well-formed UTF-8 becomes U+FFFD, so that every line is
 * valid JSON, also when a long message is cut to fit LB_LINE_MAX.
 * conn=0 means "not about a connection".
 */
#ifndef MTLS_PROXY_LOG_H
#define MTLS_PROXY_LOG_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

#define GW_LOG_MUSTCHECK __attribute__((warn_unused_result))

struct gw_log_opts {
    const char *access;           /* "stderr", "off" or a file path */
    const char *error;            /* "stderr" or a file path (NULL = stderr) */
    enum cfg_log_format format;
    enum cfg_log_level level;
};

struct gw_logbuf; /* one per logging thread */

/* One access line: strings may be NULL ("-"); numbers < 0 print "-" in
   text and null in JSON. */
struct gw_access_rec {
    const char *client;           /* "addr:port" */
    const char *cn;
    const char *identity;
    const char *method;
    const char *path;
    int status;
    uint64_t bytes;               /* response bytes sent to the client */
    int64_t upstream_ms;
    int64_t total_ms;
    const char *tls_version;
    const char *request_id;
};

/*
 * Opens the destinations and starts the logger thread. Before this call,
 * and after gw_log_stop(), lines go straight to stderr. 0 / -1 with the
 * file and cause in err.
 */
int gw_log_start(const struct gw_log_opts *opts, char *err, size_t errlen) GW_LOG_MUSTCHECK;

/* Writes out everything buffered, stops the thread, frees every logbuf. */
void gw_log_stop(void);

/* Changes level and format at run time (a reload); destinations stay. */
void gw_log_reconfigure(enum cfg_log_level level, enum cfg_log_format format);

/*
 * Changes the destinations at run time (a reload that changed log.access or
 * log.error; values as in struct gw_log_opts). Opens every file destination
 * now, on the calling thread (the main thread), so that a file that cannot
 * be opened is reported before anything changes: -1 with the file and cause
 * in err, and the old destinations stay. On 0 the logger thread writes out
 * what was logged so far to the old destinations, then switches to the new
 * ones and closes the old files. Also reopens (a file named again is opened
 * afresh, as by gw_log_reopen).
 */
int gw_log_set_dests(const char *access, const char *error, char *err,
                     size_t errlen) GW_LOG_MUSTCHECK;

/* Asks the logger thread to reopen the log files (after log rotation). */
void gw_log_reopen(void);

/*
 * A new buffer for the calling thread (registered with the logger; freed by
 * gw_log_stop()). NULL when out of memory or the logger is not running;
 * passing NULL to the functions below logs through the main thread's buffer.
 */
struct gw_logbuf *gw_logbuf_new(void);

/* 1 when lines of this level are written. */
int gw_log_enabled(enum cfg_log_level level);

/* One error-log line; conn_id 0 when not about a connection. */
void gw_log(struct gw_logbuf *b, enum cfg_log_level level, uint64_t conn_id,
            const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* One access-log line (nothing when log.access is off). */
void gw_log_access(struct gw_logbuf *b, const struct gw_access_rec *r);

/* Lines dropped because a buffer was full, since the start. */
uint64_t gw_log_dropped(void);

/* The level's name ("debug", "info", "warn", "error"). */
const char *gw_log_level_name(enum cfg_log_level level);

#endif
