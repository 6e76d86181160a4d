/*
 * slow_getaddrinfo.so: an LD_PRELOAD shim for the integration tests. It
 * resolves the name "slow.test" to 127.0.0.1 after SLOW_GAI_MS milliseconds
 * (default 3000) and every other name as the C library does: a reload of
 * a gateway whose upstream is "slow.test" then spends that long inside its
 * build, after it has read the certificate, CA and CRL files.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef int (*gai_fn)(const char *, const char *, const struct addrinfo *, struct addrinfo **);

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                struct addrinfo **res)
{
    gai_fn real = (gai_fn)dlsym(RTLD_NEXT, "getaddrinfo");

    if (real == NULL)
        return EAI_SYSTEM;
    if (node != NULL && strcmp(node, "slow.test") == 0) {
        const char *env = getenv("SLOW_GAI_MS");
        long ms = env != NULL ? strtol(env, NULL, 10) : 3000;
        struct timespec ts;

        if (ms < 0 || ms > 60000)
            ms = 3000;
        ts.tv_sec = ms / 1000;
        ts.tv_nsec = (ms % 1000) * 1000000L;
        while (nanosleep(&ts, &ts) != 0)
            ;
        node = "127.0.0.1";
    }
    return real(node, service, hints, res);
}
