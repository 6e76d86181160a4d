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
#include <unistd.h>

int gw_proc_write_pid(const char *path, char *err, size_t errlen)
{
    char tmp[4096], buf[32];
    int fd = -1, rc = -1, n;

    if (snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof(tmp)) {
        snprintf(err, errlen, "%s: pid file path too long", path);
        goto out;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(err, errlen, "%s: cannot create pid file: %s", tmp, strerror(errno));
        goto out;
    }
    n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
    if (write(fd, buf, (size_t)n) != n || fsync(fd) != 0) {
        snprintf(err, errlen, "%s: cannot write pid file: %s", tmp, strerror(errno));
        goto out;
    }
    if (close(fd) != 0) {
        fd = -1;
        snprintf(err, errlen, "%s: cannot write pid file: %s", tmp, strerror(errno));
        goto out;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        snprintf(err, errlen, "%s: cannot rename pid file into place: %s", path,
                 strerror(errno));
        goto out;
    }
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    if (rc < 0)
        unlink(tmp);
    return rc;
}

int gw_proc_read_pid(const char *path, pid_t *pid, char *err, size_t errlen)
{
    char buf[32], *end;
    FILE *f = fopen(path, "re");
    long v;
    int rc = -1;

    if (!f) {
        snprintf(err, errlen, "%s: cannot read pid file: %s (is mtlsgate running?)", path,
                 strerror(errno));
        goto out;
    }
    if (!fgets(buf, sizeof(buf), f)) {
        snprintf(err, errlen, "%s: empty pid file", path);
        goto out;
    }
    errno = 0;
    v = strtol(buf, &end, 10);
    if (errno || end == buf || (*end != '\n' && *end != '\0') || v <= 1) {
        snprintf(err, errlen, "%s: no valid pid in pid file", path);
        goto out;
    }
    *pid = (pid_t)v;
    rc = 0;
out:
    if (f)
        fclose(f);
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
