/*
 * main.c - mtlsgate: flags, start order, signals, reload, stop.
 *
 *   mtlsgate -c FILE            run
 *   mtlsgate -t -c FILE         check the configuration and every file it names
 *   mtlsgate -s reload -c FILE  make the running instance reload (SIGHUP via pid_file)
 *   mtlsgate -s stop -c FILE    make the running instance stop gracefully (SIGTERM)
 *   mtlsgate -V | -h
 *
 * Start order: config, logger, pid file lock (a second instance with the
 * same pid_file stops here, before binding), runtime (TLS contexts,
 * identities, upstream addresses), listening sockets, pid written,
 * privilege drop, workers. The main thread then only runs signals, the
 * watch timer and reloads. The pid file is removed on every exit path.
 */
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>
#include <openssl/crypto.h>

#include "admin.h"
#include "config.h"
#include "evalloc.h"
#include "log.h"
#include "proc.h"
#include "runtime.h"
#include "sslalloc.h"
#include "tls_libctx.h"
#include "tls_server.h"
#include "worker.h"

#define TICKET_ROTATE_S 3600

struct gw_main {
    const char *cfg_path;
    struct event_base *base;
    struct gw_workers *ws;
    struct gw_admin *admin;       /* NULL when admin.listen is not set */
    struct gw_runtime *rt;
    struct cfg *boot;             /* the restart-only keys as started */
    struct gw_pidfile *pidfile;   /* locked from start to exit; NULL: none */
    time_t config_loaded;
    struct tls_ticket_keys *keys;
    int keys_from_file;
    struct tls_sessions *sessions;  /* the session cache, kept across reloads */
    uint64_t generation;
    int stopping;                 /* 0 running, 1 draining, 2 stopping now */
    unsigned char digest[32];
    int digest_taken;             /* digest holds the files as at start */
    uint64_t reloads_ok, reloads_failed;
    struct event *ev_hup, *ev_term, *ev_int, *ev_quit, *ev_done, *ev_drain, *ev_watch,
        *ev_rotate;
};

static void usage(FILE *f)
{
    fprintf(f,
            "usage: mtlsgate -c FILE              run the gateway\n"
            "       mtlsgate -t -c FILE           check FILE and every file it names\n"
            "       mtlsgate -s reload -c FILE    tell the running gateway to reload\n"
            "       mtlsgate -s stop -c FILE      tell the running gateway to stop gracefully\n"
            "       mtlsgate -V                   print the version\n"
            "Long forms: --config FILE, --test, --signal reload|stop, --version, --help.\n"
            "Signals: HUP reload, TERM/INT graceful stop, QUIT (or a second TERM) stop now.\n");
}

/* Ticket keys for cfg: from its file, or the running random set. */
static struct tls_ticket_keys *keys_for(struct gw_main *m, const struct cfg *cfg, char *err,
                                        size_t errlen)
{
    if (!cfg->tls.session_tickets)
        return NULL;
    if (cfg->tls.ticket_key_file)
        return tls_ticket_keys_load(cfg->tls.ticket_key_file,
                                    cfg->tls.allow_insecure_key_permissions, err, errlen);
    if (m->keys && !m->keys_from_file) {
        tls_ticket_keys_ref(m->keys);
        return m->keys;
    }
    return tls_ticket_keys_new(err, errlen);
}

/*
 * Builds a runtime from the config file; NULL with the reason in err. Each
 * restart-only key that differs from the value the process started with
 * (boot) gets a warning, at every reload while it differs.
 */
static struct gw_runtime *build(struct gw_main *m, struct tls_ticket_keys **keys_out,
                                const struct cfg *boot, char *err, size_t errlen)
{
    struct cfg *cfg = NULL;
    struct cfg_diag diag = {0};
    struct tls_ticket_keys *keys = NULL;
    struct gw_runtime *rt = NULL;
    size_t i;

    if (cfg_load(m->cfg_path, &cfg, &diag) < 0) {
        snprintf(err, errlen, "%s%s", diag.n ? diag.msg[0] : m->cfg_path,
                 diag.n > 1 ? " (and more problems: run mtlsgate -t)" : "");
        goto out;
    }
    if (boot && cfg_restart_needed(boot, cfg, &diag) > 0)
        for (i = 0; i < diag.n; i++)
            gw_log(NULL, CFG_LOG_WARN, 0, "reload: %s", diag.msg[i]);
    keys = keys_for(m, cfg, err, errlen);
    if (cfg->tls.session_tickets && !keys) {
        gw_runtime_err_at(cfg, "tls.ticket_key_file", err, errlen);
        cfg_free(cfg);
        goto out;
    }
    rt = gw_runtime_new(cfg, keys, m->sessions, m->generation + 1, err, errlen);
    if (!rt)
        goto out;
    *keys_out = keys;
    keys = NULL;
out:
    tls_ticket_keys_unref(keys);
    cfg_diag_free(&diag);
    return rt;
}

/* Whether two optional strings differ (NULL = unset). */
static int str_changed(const char *a, const char *b)
{
    return (a == NULL) != (b == NULL) || (a && strcmp(a, b) != 0);
}

/* (Re)arms the watch timer every ms milliseconds; 0 disarms it. */
static void arm_watch(struct gw_main *m, unsigned ms)
{
    struct timeval tv;

    event_del(m->ev_watch);
    if (ms == 0)
        return;
    tv.tv_sec = ms / 1000;
    tv.tv_usec = (ms % 1000) * 1000;
    event_add(m->ev_watch, &tv);
}

/*
 * Builds the new set and swaps it in, or keeps the old one and says why.
 * Either way the log files are reopened (logrotate's HUP). Everything that
 * can fail (the build, opening new log destinations) comes before the swap.
 * seen: the watched files' digest just taken (the watch), or NULL.
 */
static void reload(struct gw_main *m, const char *why, const unsigned char *seen)
{
    const struct cfg *old;
    struct tls_ticket_keys *keys = NULL;
    struct gw_runtime *rt;
    unsigned old_watch;
    unsigned char before[32];
    char err[1024];

    if (m->stopping)
        return;
    old = m->rt->cfg;
    /* The watched files as they are before build() reads them (seen: the
     * watch has just taken it): one changed while build() reads them then
     * still differs at the next watch tick. */
    if (seen != NULL)
        memcpy(before, seen, sizeof(before));
    else
        gw_runtime_files_digest(old, before);
    rt = build(m, &keys, m->boot, err, sizeof(err));
    if (rt && (str_changed(old->log.access, rt->cfg->log.access) ||
               str_changed(old->log.error, rt->cfg->log.error)) &&
        gw_log_set_dests(rt->cfg->log.access, rt->cfg->log.error, err, sizeof(err)) < 0) {
        gw_runtime_unref(rt);
        tls_ticket_keys_unref(keys);
        keys = NULL;
        rt = NULL;
    } else if (rt) {
        gw_log_reopen(); /* same destinations: reopen them */
    }
    if (!rt) {
        m->reloads_failed++;
        /* logrotate's HUP must reopen the logs even when the config is bad */
        gw_log_reopen();
        gw_log(NULL, CFG_LOG_ERROR, 0, "reload (%s) refused, still serving generation %llu: %s",
               why, (unsigned long long)m->generation, err);
        return;
    }
    old_watch = old->watch_interval_ms;
    if (gw_runtime_same_files(old, rt->cfg))
        memcpy(m->digest, before, sizeof(before));
    else /* other files: as they are now (a change from here on is seen) */
        gw_runtime_files_digest(rt->cfg, m->digest);
    m->generation++;
    m->config_loaded = time(NULL);
    gw_workers_publish(m->ws, rt);
    gw_runtime_unref(m->rt);
    m->rt = rt;
    tls_ticket_keys_unref(m->keys);
    m->keys = keys;
    m->keys_from_file = rt->cfg->tls.ticket_key_file != NULL;
    tls_sessions_set_capacity(m->sessions, rt->cfg->tls.session_cache);
    if (rt->cfg->watch_interval_ms != old_watch)
        arm_watch(m, rt->cfg->watch_interval_ms);
    gw_log_reconfigure(rt->cfg->log.level, rt->cfg->log.format);
    m->reloads_ok++;
    gw_admin_reprobe(m->admin);
    gw_log(NULL, CFG_LOG_INFO, 0, "reload (%s): configuration generation %llu in service", why,
           (unsigned long long)m->generation);
}

static void stop_now(struct gw_main *m, const char *why)
{
    if (m->stopping == 2)
        return;
    m->stopping = 2;
    gw_log(NULL, CFG_LOG_INFO, 0, "%s: stopping now", why);
    gw_workers_stop(m->ws);
}

static void drain_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    stop_now(arg, "drain timeout over");
}

static void graceful_stop(struct gw_main *m, const char *sig)
{
    struct timeval tv;
    unsigned ms = m->rt->cfg->timeouts.drain_ms;

    if (m->stopping) {
        stop_now(m, sig);
        return;
    }
    m->stopping = 1;
    gw_log(NULL, CFG_LOG_INFO, 0, "%s: no new connections; letting requests in flight finish "
           "(up to %u ms)", sig, ms);
    gw_workers_drain(m->ws);
    tv.tv_sec = ms / 1000;
    tv.tv_usec = (ms % 1000) * 1000;
    evtimer_add(m->ev_drain, &tv);
}

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
    struct gw_main *m = arg;

    (void)what;
    switch (sig) {
    case SIGHUP:
        reload(m, "SIGHUP", NULL);
        break;
    case SIGTERM:
        graceful_stop(m, "SIGTERM");
        break;
    case SIGINT:
        graceful_stop(m, "SIGINT");
        break;
    case SIGQUIT:
        stop_now(m, "SIGQUIT");
        break;
    }
}

static void done_cb(evutil_socket_t fd, short what, void *arg)
{
    struct gw_main *m = arg;

    (void)fd;
    (void)what;
    if (gw_workers_running(m->ws) == 0)
        event_base_loopexit(m->base, NULL);
}

static void watch_cb(evutil_socket_t fd, short what, void *arg)
{
    struct gw_main *m = arg;
    unsigned char d[32];

    (void)fd;
    (void)what;
    gw_runtime_files_digest(m->rt->cfg, d);
    if (memcmp(d, m->digest, sizeof(d)) != 0) {
        memcpy(m->digest, d, sizeof(d)); /* a broken change is reported once */
        reload(m, "watched file changed", d);
    }
}

static void rotate_cb(evutil_socket_t fd, short what, void *arg)
{
    struct gw_main *m = arg;

    (void)fd;
    (void)what;
    if (m->keys && !m->keys_from_file && tls_ticket_keys_rotate(m->keys) < 0)
        gw_log(NULL, CFG_LOG_WARN, 0, "session ticket key rotation failed; keeping the keys");
}

/* Admin listener hooks: called on the main thread, like everything here. */
static void admin_state(void *arg, struct gw_admin_state *st)
{
    struct gw_main *m = arg;

    st->rt = m->rt;
    st->generation = m->generation;
    st->reloads_ok = m->reloads_ok;
    st->reloads_failed = m->reloads_failed;
    st->config_loaded = m->config_loaded;
    st->draining = m->stopping != 0;
    if (m->sessions) {
        st->has_tls_sessions = 1;
        st->tls_sessions = tls_sessions_count(m->sessions);
    }
}

static void admin_stats(void *arg, struct gw_stats *sum, struct gw_idstats *ids)
{
    struct gw_main *m = arg;

    gw_workers_stats(m->ws, sum, ids);
}

static int add_signal(struct gw_main *m, struct event **ev, int sig)
{
    *ev = evsignal_new(m->base, sig, signal_cb, m);
    return *ev && evsignal_add(*ev, NULL) == 0 ? 0 : -1;
}

static void free_event(struct event *ev)
{
    if (ev)
        event_free(ev);
}

/* Everything after the config and the logger are up; returns the exit code. */
static int serve(struct gw_main *m, int *fds, unsigned n_workers)
{
    const struct cfg *cfg = m->rt->cfg;
    const char *slow_tls = tls_libctx_fallback();
    struct timeval tv;
    char err[1024];
    size_t i;

    m->base = event_base_new();
    if (!m->base)
        goto oom;
    m->ev_done = event_new(m->base, -1, 0, done_cb, m);
    m->ev_drain = evtimer_new(m->base, drain_timeout_cb, m);
    m->ev_watch = event_new(m->base, -1, EV_PERSIST, watch_cb, m);
    m->ev_rotate = event_new(m->base, -1, EV_PERSIST, rotate_cb, m);
    if (!m->ev_done || !m->ev_drain || !m->ev_watch || !m->ev_rotate ||
        add_signal(m, &m->ev_hup, SIGHUP) < 0 || add_signal(m, &m->ev_term, SIGTERM) < 0 ||
        add_signal(m, &m->ev_int, SIGINT) < 0 || add_signal(m, &m->ev_quit, SIGQUIT) < 0)
        goto oom;
    if (cfg->admin.listen) {
        struct gw_admin_hooks hooks = {.arg = m, .state = admin_state, .stats = admin_stats};

        /* bound before the privilege drop, like the listeners */
        m->admin = gw_admin_start(m->base, cfg->admin.listen, &hooks, err, sizeof(err));
        if (!m->admin) {
            gw_log(NULL, CFG_LOG_ERROR, 0, "admin: %s", err);
            goto fail;
        }
    }
    if (m->pidfile && gw_pidfile_write(m->pidfile, err, sizeof(err)) < 0) {
        gw_log(NULL, CFG_LOG_ERROR, 0, "%s", err);
        goto fail;
    }
    if (gw_proc_drop_privileges(cfg->user, err, sizeof(err)) < 0) {
        gw_log(NULL, CFG_LOG_ERROR, 0, "%s", err);
        goto fail;
    }
    if (geteuid() == 0)
        gw_log(NULL, CFG_LOG_WARN, 0, "running as root: set `user` to drop privileges");
    m->ws = gw_workers_start(n_workers, m->rt, fds, cfg->n_listen, m->ev_done, err, sizeof(err));
    fds = NULL; /* taken over */
    if (!m->ws) {
        gw_log(NULL, CFG_LOG_ERROR, 0, "%s", err);
        goto fail;
    }
    if (!m->digest_taken)
        gw_runtime_files_digest(cfg, m->digest);
    arm_watch(m, cfg->watch_interval_ms);
    tv.tv_sec = TICKET_ROTATE_S;
    tv.tv_usec = 0;
    event_add(m->ev_rotate, &tv);
    for (i = 0; i < cfg->n_listen; i++)
        gw_log(NULL, CFG_LOG_INFO, 0, "listening on %s:%s", cfg->listen[i].host,
               cfg->listen[i].port);
    /* before "started", which tests wait for */
    if (slow_tls != NULL)
        gw_log(NULL, CFG_LOG_INFO, 0, "client TLS runs in OpenSSL's default library context, "
               "whose certificate parsing is slower: %s", slow_tls);
    gw_log(NULL, CFG_LOG_INFO, 0, "mtlsgate %s started: %u workers, pid %ld", MTLSGATE_VERSION,
           n_workers, (long)getpid());
    if (!tls_free_buffers_safe(OpenSSL_version_num()))
        gw_log(NULL, CFG_LOG_WARN, 0, "%s: SSL_free_buffers is not safe in this version "
               "(CVE-2024-4741): idle connections keep OpenSSL's buffers; upgrade OpenSSL",
               OpenSSL_version(OPENSSL_VERSION));
    event_base_dispatch(m->base);
    gw_workers_free(m->ws);
    m->ws = NULL;
    gw_admin_free(m->admin);
    m->admin = NULL;
    gw_log(NULL, CFG_LOG_INFO, 0, "stopped (%s)", m->stopping == 1 ? "graceful" : "immediate");
    return 0;
oom:
    gw_log(NULL, CFG_LOG_ERROR, 0, "cannot set up the main event loop (out of memory)");
fail:
    gw_admin_free(m->admin);
    m->admin = NULL;
    if (fds)
        for (i = 0; i < (size_t)n_workers * cfg->n_listen; i++)
            close(fds[i]);
    return 1;
}

static unsigned worker_count(const struct cfg *cfg)
{
    long n;

    if (cfg->workers > 0)
        return cfg->workers;
    n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1;
}

static int run(const char *path)
{
    struct gw_main m;
    struct cfg *cfg = NULL;
    struct cfg_diag diag = {0};
    struct gw_log_opts lo;
    char err[1024];
    unsigned n_workers = 1;
    int *fds = NULL, rc = 1, log_up = 0;
    size_t i;

    memset(&m, 0, sizeof(m));
    m.cfg_path = path;
    signal(SIGPIPE, SIG_IGN);
    if (evthread_use_pthreads() < 0) {
        fprintf(stderr, "mtlsgate: libevent has no pthreads support\n");
        goto out;
    }
    if (cfg_load(path, &cfg, &diag) < 0) {
        for (i = 0; i < diag.n; i++)
            fprintf(stderr, "%s\n", diag.msg[i]);
        goto out;
    }
    /* The watch's first digest, before the certificate, key, CA and CRL
     * files are read; when root hands over to `user`, after that (serve()):
     * the files must hash as the user who will read them again. */
    m.digest_taken = geteuid() != 0 || cfg->user == NULL;
    if (m.digest_taken)
        gw_runtime_files_digest(cfg, m.digest);
    lo.access = cfg->log.access;
    lo.error = cfg->log.error;
    lo.format = cfg->log.format;
    lo.level = cfg->log.level;
    if (gw_log_start(&lo, err, sizeof(err)) < 0) {
        fprintf(stderr, "mtlsgate: %s\n", err);
        goto out;
    }
    log_up = 1;
    /* Before anything is bound: a second instance with this pid_file stops here. */
    if (cfg->pid_file && gw_pidfile_lock(cfg->pid_file, &m.pidfile, err, sizeof(err)) < 0) {
        gw_log(NULL, CFG_LOG_ERROR, 0, "%s", err);
        goto out;
    }
    gw_proc_raise_nofile();
    n_workers = worker_count(cfg);
    m.keys = keys_for(&m, cfg, err, sizeof(err));
    if (cfg->tls.session_tickets && !m.keys) {
        gw_runtime_err_at(cfg, "tls.ticket_key_file", err, sizeof(err));
        gw_log(NULL, CFG_LOG_ERROR, 0, "%s", err);
        goto out;
    }
    m.keys_from_file = cfg->tls.ticket_key_file != NULL;
    if (!(m.sessions = tls_sessions_new(cfg->tls.session_cache, err, sizeof(err)))) {
        gw_log(NULL, CFG_LOG_ERROR, 0, "%s", err);
        goto out;
    }
    m.rt = gw_runtime_new(cfg, m.keys, m.sessions, 1, err, sizeof(err));
    cfg = NULL; /* taken over */
    if (!m.rt) {
        gw_log(NULL, CFG_LOG_ERROR, 0, "%s", err);
        goto out;
    }
    m.generation = 1;
    m.config_loaded = time(NULL);
    if (!(m.boot = cfg_restart_snapshot(m.rt->cfg))) {
        gw_log(NULL, CFG_LOG_ERROR, 0, "out of memory");
        goto out;
    }
    fds = calloc((size_t)n_workers * m.rt->cfg->n_listen + 1, sizeof(*fds));
    if (!fds) {
        gw_log(NULL, CFG_LOG_ERROR, 0, "out of memory");
        goto out;
    }
    if (gw_listen_open(m.rt->cfg, n_workers, fds, err, sizeof(err)) < 0) {
        gw_log(NULL, CFG_LOG_ERROR, 0, "%s", err);
        goto out;
    }
    rc = serve(&m, fds, n_workers);
out:
    free(fds);
    gw_pidfile_release(m.pidfile); /* removed (or emptied) on every exit path */
    free_event(m.ev_hup);
    free_event(m.ev_term);
    free_event(m.ev_int);
    free_event(m.ev_quit);
    free_event(m.ev_done);
    free_event(m.ev_drain);
    free_event(m.ev_watch);
    free_event(m.ev_rotate);
    if (m.base)
        event_base_free(m.base);
    gw_runtime_unref(m.rt);
    cfg_free(m.boot);
    tls_ticket_keys_unref(m.keys);
    tls_sessions_unref(m.sessions);
    cfg_free(cfg);
    cfg_diag_free(&diag);
    if (log_up)
        gw_log_stop();
    libevent_global_shutdown();
    return rc;
}

/*
 * -s reload|stop: signal the instance named by the config's pid_file. Only
 * pid_file is read from the config: an operator can always reload or stop
 * a running instance, also after editing its config badly (the reload then
 * says what is wrong, and the old set keeps serving).
 */
static int send_signal(const char *path, const char *what)
{
    struct cfg_diag diag = {0};
    char err[1024], *pid_file = NULL;
    pid_t pid;
    int sig, rc = 1;
    size_t i;

    if (strcmp(what, "reload") == 0)
        sig = SIGHUP;
    else if (strcmp(what, "stop") == 0)
        sig = SIGTERM;
    else {
        fprintf(stderr, "mtlsgate: -s %s: expected reload or stop\n", what);
        return 2;
    }
    if (cfg_load_pid_file(path, &pid_file, &diag) < 0) {
        for (i = 0; i < diag.n; i++)
            fprintf(stderr, "%s\n", diag.msg[i]);
        goto out;
    }
    if (!pid_file) {
        fprintf(stderr, "mtlsgate: %s: pid_file is not set, so the running instance cannot "
                "be found; send SIG%s to it yourself\n", path, sig == SIGHUP ? "HUP" : "TERM");
        goto out;
    }
    if (gw_proc_read_pid(pid_file, &pid, err, sizeof(err)) < 0) {
        fprintf(stderr, "mtlsgate: %s\n", err);
        goto out;
    }
    if (kill(pid, sig) != 0) {
        fprintf(stderr, "mtlsgate: cannot signal pid %ld (from %s): %s\n", (long)pid, pid_file,
                strerror(errno));
        goto out;
    }
    rc = 0;
out:
    free(pid_file);
    cfg_diag_free(&diag);
    return rc;
}

/*
 * The request path allocates and frees TLS record buffers and evbuffer
 * chains of 4-17 KiB all the time; with glibc's defaults each worker arena's
 * top is trimmed (madvise) and grown again (mprotect, page faults) over and
 * over. Keep up to 8 MiB of free top per arena, and grow in 1 MiB steps.
 * Failures only cost speed (and a sanitizer's allocator ignores this).
 */
static void tune_malloc(void)
{
    (void)mallopt(M_TRIM_THRESHOLD, 8 * 1024 * 1024);
    (void)mallopt(M_TOP_PAD, 1024 * 1024);
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'}, {"test", no_argument, NULL, 't'},
        {"signal", required_argument, NULL, 's'}, {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    const char *path = NULL, *sig = NULL;
    int test = 0, opt, rc;

    while ((opt = getopt_long(argc, argv, "c:ts:Vh", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            path = optarg;
            break;
        case 't':
            test = 1;
            break;
        case 's':
            sig = optarg;
            break;
        case 'V':
            printf("mtlsgate %s\n", MTLSGATE_VERSION);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (!path || optind != argc) {
        usage(stderr);
        return 2;
    }
    if (test) {
        rc = gw_runtime_check(path, stderr);
        tls_libctx_free();
        if (rc < 0) {
            fprintf(stderr, "mtlsgate: %s: configuration check failed\n", path);
            return 1;
        }
        printf("mtlsgate: %s: configuration ok\n", path);
        return 0;
    }
    if (sig)
        return send_signal(path, sig);
    tune_malloc();
    gw_evalloc_install(); /* before anything of libevent allocates */
    if (gw_sslalloc_install() < 0) /* before anything of OpenSSL allocates */
        fprintf(stderr, "mtlsgate: warning: OpenSSL allocated before start-up: its blocks "
                        "go straight to malloc\n");
    rc = run(path);
    tls_libctx_free(); /* after run() freed every context and key used in it */
    gw_evalloc_flush();
    return rc;
}
