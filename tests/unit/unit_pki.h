/*
 * unit_pki.h - the openssl-CLI test PKI of tests/lib/make-test-certs.sh in
 * a fresh temporary directory, for the unit tests that need real
 * certificate files (test_tls_server, test_tls_trust, test_proxy_metrics).
 *
 * Header-only (static functions): each test program gets its own copy of
 * the directory name. Typical use:
 *
 *     static int pki_setup(void **state)
 *     {
 *         (void)state;
 *         return unit_pki_make("test-foo");
 *     }
 *     ...
 *     return cmocka_run_group_tests(tests, pki_setup, unit_pki_teardown);
 *
 * Needs SRC_DIR in the environment (set by ctest; "." otherwise).
 */
#ifndef UNIT_PKI_H
#define UNIT_PKI_H

#include <stdio.h>
#include <stdlib.h>

#define UNIT_PKI_UNUSED __attribute__((unused))

/* The directory unit_pki_make created ("" before). */
static char pki[64];

/*
 * pki/name into a per-thread rotating buffer: four results stay valid at a
 * time, so that one call can take several paths.
 */
static UNIT_PKI_UNUSED const char *P(const char *name)
{
    static _Thread_local char buf[4][256];
    static _Thread_local int i;

    i = (i + 1) % 4;
    snprintf(buf[i], sizeof(buf[i]), "%s/%s", pki, name);
    return buf[i];
}

/*
 * Creates /tmp/<tag>-XXXXXX as pki and runs make-test-certs.sh into it.
 * Returns 0, or -1 when the directory or a certificate cannot be made.
 */
static UNIT_PKI_UNUSED int unit_pki_make(const char *tag)
{
    const char *src = getenv("SRC_DIR");
    char cmd[512];

    snprintf(pki, sizeof(pki), "/tmp/%s-XXXXXX", tag);
    if (mkdtemp(pki) == NULL)
        return -1;
    snprintf(cmd, sizeof(cmd), "bash '%s/tests/lib/make-test-certs.sh' '%s'", src ? src : ".",
             pki);
    return system(cmd) == 0 ? 0 : -1;
}

/* A cmocka group teardown: removes pki and everything in it. */
static UNIT_PKI_UNUSED int unit_pki_teardown(void **state)
{
    char cmd[128];

    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", pki);
    return system(cmd) == 0 ? 0 : -1;
}

#endif
