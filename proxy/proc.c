/*
 * proc.c - pid file, privilege drop, limits (see proc.h).
 */
#include "proc.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

struct gw_pidfile {
    int fd;                       /* open read-write, OFD-locked */
    char *path;
    int written;
};

/* Fills l for an exclusive lock of the whole file. */
static void whole_file_lock(struct flock *l)
{
    memset(l, 0, sizeof(*l));
    l->l_type = F_WRLCK;
    l->l_whence = SEEK_SET;
}

/* The pid in the file open at fd (0 when none is readable). */
static long pid_in(int fd)
{
    char buf[32], *end;
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
    long v;

    if (n <= 0)
        return 0;
    buf[n] = '\0';
    errno = 0;
    v = strtol(buf, &end, 10);
    return errno || end == buf || v <= 1 ? 0 : v;
}

int gw_pidfile_lock(const char *path, struct gw_pidfile **out, char *err, size_t errlen)
{
    struct gw_pidfile *pf = NULL;
    struct stat fst, pst;
    struct flock l;
    int fd = -1, rc = -1, tries;

    *out = NULL;
    for (tries = 0; tries < 10; tries++) {
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0) {
            snprintf(err, errlen, "pid_file: %s: cannot open: %s", path, strerror(errno));
            goto out;
        }
        whole_file_lock(&l);
        if (fcntl(fd, F_OFD_SETLK, &l) != 0) {
            long pid;

            if (errno != EAGAIN && errno != EACCES) {
                snprintf(err, errlen, "pid_file: %s: cannot lock: %s", path, strerror(errno));
                goto out;
            }
            pid = pid_in(fd);
            if (pid > 0)
                snprintf(err, errlen, "pid_file: %s is locked by a running mtlsgate (pid %ld); "
                         "stop it first, or give this one another pid_file", path, pid);
            else
                snprintf(err, errlen, "pid_file: %s is locked by a running mtlsgate (starting); "
                         "stop it first, or give this one another pid_file", path);
            goto out;
        }
        /* The file we locked must still be the one at path: an instance
           that was stopping may have removed it between our open and lock. */
        if (fstat(fd, &fst) == 0 && stat(path, &pst) == 0 && fst.st_dev == pst.st_dev &&
            fst.st_ino == pst.st_ino)
            break;
        close(fd);
        fd = -1;
    }
    if (fd < 0) {
        snprintf(err, errlen, "pid_file: %s: keeps being replaced; cannot lock it", path);
        goto out;
    }
    /* Ours now: a stale pid in it must not be signalled by mtlsgate -s. */
    if (ftruncate(fd, 0) != 0) {
        snprintf(err, errlen, "pid_file: %s: cannot empty: %s", path, strerror(errno));
        goto out;
    }
    if (!(pf = calloc(1, sizeof(*pf))) || !(pf->path = strdup(path))) {
        snprintf(err, errlen, "pid_file: %s: out of memory", path);
        goto out;
    }
    pf->fd = fd;
    fd = -1;
    *out = pf;
    pf = NULL;
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    if (pf) {
        free(pf->path);
        free(pf);
    }
    return rc;
}

int gw_pidfile_write(struct gw_pidfile *pf, char *err, size_t errlen)
{
    char buf[32];
    int n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());

    if (ftruncate(pf->fd, 0) != 0 || pwrite(pf->fd, buf, (size_t)n, 0) != n ||
        fsync(pf->fd) != 0) {
        snprintf(err, errlen, "pid_file: %s: cannot write: %s", pf->path, strerror(errno));
        return -1;
    }
    pf->written = 1;
    return 0;
}

void gw_pidfile_release(struct gw_pidfile *pf)
{
    if (!pf)
        return;
    /* Still locked: no other instance can have taken the file over. When
       the directory is not ours any more (privilege drop), empty the file:
       an empty or unlocked pid file names no running instance. */
    if (unlink(pf->path) != 0 && ftruncate(pf->fd, 0) != 0) {
        /* nothing more to do: -s sees that the file is not locked */
    }
    close(pf->fd);
    free(pf->path);
    free(pf);
}

int gw_proc_read_pid(const char *path, pid_t *pid, char *err, size_t errlen)
{
    struct flock l;
    long v;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW), rc = -1;

    if (fd < 0) {
        snprintf(err, errlen, "%s: cannot read pid file: %s (is mtlsgate running?)", path,
                 strerror(errno));
        goto out;
    }
    whole_file_lock(&l);
    if (fcntl(fd, F_OFD_GETLK, &l) != 0) {
        snprintf(err, errlen, "%s: cannot check the pid file's lock: %s", path, strerror(errno));
        goto out;
    }
    v = pid_in(fd);
    if (l.l_type == F_UNLCK) {
        if (v > 0)
            snprintf(err, errlen, "%s: stale pid file: no running mtlsgate holds it (pid %ld "
                     "is not signalled); is mtlsgate running?", path, v);
        else
            snprintf(err, errlen, "%s: stale pid file: no running mtlsgate holds it; "
                     "is mtlsgate running?", path);
        goto out;
    }
    if (v <= 0) {
        snprintf(err, errlen, "%s: no pid in the pid file yet (mtlsgate is starting); try again",
                 path);
        goto out;
    }
    *pid = (pid_t)v;
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    return rc;
}

int gw_proc_drop_privileges(const char *user, char *err, size_t errlen)
{
    struct passwd pw, *res = NULL;
    char buf[4096];
    int e;

    if (geteuid() != 0 || !user)
        return 0;
    e = getpwnam_r(user, &pw, buf, sizeof(buf), &res);
    if (e != 0 || !res) {
        snprintf(err, errlen, "user: %s: no such user%s%s", user, e ? ": " : "",
                 e ? strerror(e) : "");
        return -1;
    }
    if (pw.pw_uid == 0) {
        snprintf(err, errlen, "user: %s: is root; name an unprivileged user", user);
        return -1;
    }
    if (initgroups(user, pw.pw_gid) != 0 || setgid(pw.pw_gid) != 0 ||
        setuid(pw.pw_uid) != 0) {
        snprintf(err, errlen, "user: %s: cannot switch to uid %ld gid %ld: %s", user,
                 (long)pw.pw_uid, (long)pw.pw_gid, strerror(errno));
        return -1;
    }
    if (setuid(0) == 0 || getuid() != pw.pw_uid || geteuid() != pw.pw_uid ||
        getegid() != pw.pw_gid) {
        snprintf(err, errlen, "user: %s: privileges were not dropped completely", user);
        return -1;
    }
    return 0;
}

void gw_proc_raise_nofile(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}
