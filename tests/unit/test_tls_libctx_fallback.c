/*
 * test_tls_libctx_fallback.c - tls/tls_libctx.h when OpenSSL's configuration
 * makes the default context more than the default provider: the filtered
 * context is not used (NULL, the default context, with the reason), and the
 * default context keeps what the configuration loaded. A program of its own:
 * the configuration is read once per process, before the first test.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/provider.h>
#include <openssl/ssl.h>

#include "tls_libctx.h"

static char conf_path[] = "/tmp/mtlsgate-libctx-XXXXXX";

/* An openssl.cnf that activates the "base" provider beside "default". */
static int setup(void **state)
{
    static const char conf[] = "openssl_conf = init\n"
                               "[init]\nproviders = providers\n"
                               "[providers]\ndefault = on\nbase = on\n"
                               "[on]\nactivate = 1\n";
    int fd = mkstemp(conf_path);

    (void)state;
    if (fd < 0 || write(fd, conf, sizeof(conf) - 1) != (ssize_t)(sizeof(conf) - 1)) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return setenv("OPENSSL_CONF", conf_path, 1);
}

static int teardown(void **state)
{
    (void)state;
    tls_libctx_free();
    unlink(conf_path);
    return 0;
}

static void test_other_provider_means_default_context(void **state)
{
    SSL_CTX *ctx;
    const char *why;

    (void)state;
    assert_null(tls_libctx());
    why = tls_libctx_fallback();
    assert_non_null(why);
    assert_non_null(strstr(why, "other providers"));
    /* the configuration was read: base is there, and TLS still works */
    assert_int_equal(OSSL_PROVIDER_available(NULL, "base"), 1);
    ctx = SSL_CTX_new_ex(tls_libctx(), NULL, TLS_server_method());
    assert_non_null(ctx);
    SSL_CTX_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_other_provider_means_default_context),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
