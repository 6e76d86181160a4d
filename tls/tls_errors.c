#include "tls_errors.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>

const char *tls_err_drain(char *buf, size_t len)
{
    size_t used = 0;
    int n = 0;
    unsigned long code;

    if (len == 0)
        return buf;
    buf[0] = '\0';
    while ((code = ERR_get_error()) != 0) {
        const char *reason;
        char tmp[128];

        if (n++ >= 3)
            continue; /* keep draining, but print only the first three */
        reason = ERR_reason_error_string(code);
        if (reason == NULL) {
            snprintf(tmp, sizeof(tmp), "error %08lx", code);
            reason = tmp;
        }
        if (used < len) {
            int w = snprintf(buf + used, len - used, "%s%s", used ? "; " : "", reason);
            if (w > 0)
                used += (size_t)w;
        }
    }
    if (n == 0)
        snprintf(buf, len, "unknown error");
    return buf;
}

void tls_err_set(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    size_t used;
    char reason[256];

    if (err == NULL || errlen == 0) {
        ERR_clear_error();
        return;
    }
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    if (ERR_peek_error() == 0)
        return;
    used = strlen(err);
    tls_err_drain(reason, sizeof(reason));
    if (used < errlen)
        snprintf(err + used, errlen - used, ": %s", reason);
}
