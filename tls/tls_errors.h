/*
 * tls_errors.h - the OpenSSL error queue as one human-readable line.
 *
 * OpenSSL reports failures on a thread-local queue of packed codes; every
 * caller in this project wants them as one short line to append to its own
 * message ("file: what failed: <openssl reason>").
 */
#ifndef MTLS_TLS_ERRORS_H
#define MTLS_TLS_ERRORS_H

#include <stddef.h>

/*
 * Drains this thread's OpenSSL error queue into buf as "reason[; reason...]"
 * (at most three entries, library reason strings only) and returns buf.
 * Writes "unknown error" when the queue is empty. Always NUL-terminates.
 */
const char *tls_err_drain(char *buf, size_t len);

/*
 * snprintf into err (when err is not NULL and errlen > 0), then append
 * ": <drained OpenSSL reason>" when the OpenSSL queue is not empty.
 * The queue is left empty.
 */
void tls_err_set(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
