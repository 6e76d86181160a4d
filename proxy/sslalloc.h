/*
 * sslalloc.h - OpenSSL's allocations, with a per-thread cache of the small
 * blocks a handshake makes and frees by the thousand.
 *
 * A full mTLS handshake in OpenSSL 3.0 makes and frees thousands of small
 * blocks, most of them while it parses the client's certificates (an
 * OSSL_DECODER context per certificate) and many of one size in a row.
 * glibc's per-thread cache holds 7 blocks of a size; the rest go through
 * its arena's bins and are consolidated again and again: malloc and free
 * were 14% of a worker's CPU in RSA handshakes (perf). Here a thread keeps
 * up to GW_SSLALLOC_PER_CLASS freed blocks of each 16-byte size class up to
 * GW_SSLALLOC_MAX bytes, GW_SSLALLOC_KEEP bytes in all, and hands them out
 * again for OpenSSL's next blocks of their class. The blocks are plain
 * malloc blocks, without a header (no byte more per block: an idle
 * connection's memory does not grow); a freed block's class comes from
 * malloc_usable_size(). The lists need no lock: each thread has its own,
 * freed when the thread exits; a block may be freed by another thread than
 * the one that made it.
 *
 * Under AddressSanitizer gw_sslalloc_install() does nothing, so that a use
 * after free is still caught; the functions themselves are built and tested.
 */
#ifndef MTLS_PROXY_SSLALLOC_H
#define MTLS_PROXY_SSLALLOC_H

#include <stddef.h>

#define GW_SSLALLOC_MAX 1024              /* the largest block kept */
#define GW_SSLALLOC_PER_CLASS 512         /* blocks kept per size class */
#define GW_SSLALLOC_KEEP (512 * 1024)     /* bytes kept per thread */

/*
 * Hands the functions below to CRYPTO_set_mem_functions(). Call it first
 * in main(), before anything of OpenSSL allocates (OpenSSL refuses it
 * after that): 0 when installed, or skipped under ASan; -1 when refused.
 */
int gw_sslalloc_install(void);

/* malloc's contract (NULL when out of memory): a kept block of size's
 * class when this thread has one, else a new one. file and line are
 * OpenSSL's and unused. */
void *gw_sslalloc_malloc(size_t size, const char *file, int line);

/* realloc's contract: NULL p allocates, size 0 frees and returns NULL. */
void *gw_sslalloc_realloc(void *p, size_t size, const char *file, int line);

/* Frees a block (NULL: nothing), keeping it in the calling thread's list
 * of its class when the bounds allow. */
void gw_sslalloc_free(void *p, const char *file, int line);

/* Frees the calling thread's kept blocks (a thread's exit does this too). */
void gw_sslalloc_flush(void);

/* Bytes the calling thread keeps, counted as its blocks' classes' least
 * usable size (for tests). */
size_t gw_sslalloc_kept(void);

#endif
