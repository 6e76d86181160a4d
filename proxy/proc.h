/*
 * proc.h - process chores of the daemon: pid file, privileges, limits.
 */
#ifndef MTLS_PROXY_PROC_H
#define MTLS_PROXY_PROC_H

#include <stddef.h>
#include <sys/types.h>

#define GW_PROC_MUSTCHECK __attribute__((warn_unused_result))

/*
 * Writes our pid to path atomically (a temporary file in the same
 * directory, fsync, rename), so that a reader never sees a partial file.
 * 0 / -1 with the file and cause in err.
 */
int gw_proc_write_pid(const char *path, char *err, size_t errlen) GW_PROC_MUSTCHECK;

/* Reads a pid written by gw_proc_write_pid. 0 / -1 with the cause in err. */
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
