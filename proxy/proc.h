/*
 * proc.h - process chores of the daemon: pid file, privileges, limits.
 */
#ifndef MTLS_PROXY_PROC_H
#define MTLS_PROXY_PROC_H

#include <stddef.h>
#include <sys/types.h>

#define GW_PROC_MUSTCHECK __attribute__((warn_unused_result))

/*
 * The pid file. The running instance holds an exclusive open-file-description
 * lock (fcntl F_OFD_SETLK) on it for its whole life, so a second instance with
 * the same pid_file refuses to start (SO_REUSEPORT would otherwise let both
 * listen on one port), and `mtlsgate -s` can tell a live pid file from a
 * stale one: a file that nobody locks names no running mtlsgate, whatever
 * pid it holds.
 */
struct gw_pidfile;

/*
 * Opens path (created 0644 if needed), locks it and empties it (a stale pid
 * in it is never signalled). Call before binding. -1 with one line in err
 * naming the pid file, and the running pid when another process holds the
 * lock. The handle keeps the lock until gw_pidfile_release.
 */
int gw_pidfile_lock(const char *path, struct gw_pidfile **out, char *err,
                    size_t errlen) GW_PROC_MUSTCHECK;

/* Writes our pid through the locked descriptor. 0 / -1 with the cause. */
int gw_pidfile_write(struct gw_pidfile *pf, char *err, size_t errlen) GW_PROC_MUSTCHECK;

/*
 * At exit, on every path: removes the file while it is still locked (so a
 * new instance's file is never removed), or, when that is not allowed any
 * more (after a privilege drop the directory may not be writable), empties
 * it through the descriptor; then releases the lock. NULL is fine.
 */
void gw_pidfile_release(struct gw_pidfile *pf);

/*
 * For mtlsgate -s: the pid of the instance holding path's lock. -1 with the
 * cause in err when the file is missing, not locked (stale), or locked but
 * still empty (the instance is starting).
 */
int gw_proc_read_pid(const char *path, pid_t *pid, char *err, size_t errlen) GW_PROC_MUSTCHECK;

/*
 * When running as root and user is not NULL: switches to that user's uid,
 * gid and supplementary groups, then checks that root cannot be regained.
 * When not root, or user is NULL: does nothing. 0 / -1 with the cause.
 */
int gw_proc_drop_privileges(const char *user, char *err, size_t errlen) GW_PROC_MUSTCHECK;

/* Raises the soft open-files limit to the hard limit (best effort). */
void gw_proc_raise_nofile(void);

#endif
