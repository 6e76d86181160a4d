/*
 * evalloc.h - libevent's allocations, with a small per-thread cache of the
 * blocks its buffer chains are made of.
 *
 * An evbuffer frees a chain as soon as it is drained, and allocates one for
 * the next bytes: a proxied keep-alive request makes and frees about five
 * (client input and output, upstream input and output), each of 1 KiB or
 * more, which glibc's thread cache does not hold (about 300 instructions a
 * malloc/free pair). libevent rounds a chain to a power of two; freed blocks
 * of 1 to 32 KiB wait in the freeing thread's list for the next chain of
 * their size, up to GW_EVALLOC_KEEP bytes per thread. Everything else goes
 * straight to malloc. The lists need no lock: each thread has its own, and
 * a thread's list is freed when it exits.
 *
 * Under AddressSanitizer gw_evalloc_install() does nothing, so that a use
 * after free of a chain is still caught; the functions themselves are still
 * built (and tested) there.
 *
 * Once installed, memory libevent allocates must go back through libevent
 * (a block starts 16 bytes into what malloc returned): libevent calls that
 * hand the caller a string to free() are not to be used (evbuffer_readln,
 * evbuffer_readline, evhttp's decoders), nor those that parse an IPv6
 * address with a "%scope" (evutil_inet_pton_scope, and through it
 * evutil_getaddrinfo, evutil_parse_sockaddr_port, evdns and
 * bufferevent_socket_connect_hostname), which free libevent's own
 * allocation with free(). The gateway uses none of them.
 */
#ifndef MTLS_PROXY_EVALLOC_H
#define MTLS_PROXY_EVALLOC_H

#include <stddef.h>

/* 1 in a build with AddressSanitizer (GCC's macro, or clang's feature
 * test): gw_evalloc_install() does nothing there. */
#if defined(__SANITIZE_ADDRESS__)
#define GW_EVALLOC_UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define GW_EVALLOC_UNDER_ASAN 1
#endif
#endif
#ifndef GW_EVALLOC_UNDER_ASAN
#define GW_EVALLOC_UNDER_ASAN 0
#endif

/* Bytes of freed blocks a thread keeps at most. */
#define GW_EVALLOC_KEEP (256 * 1024)

/*
 * Hands the three functions below to event_set_mem_functions(). Call it
 * first in main(), before anything of libevent allocates: a block must be
 * freed by the allocator that made it.
 */
void gw_evalloc_install(void);

/* malloc's contract (NULL when out of memory or size is too large): a kept
 * block of exactly size when this thread has one, else a new one. */
void *gw_evalloc_malloc(size_t size);

/* realloc's contract for a block of these functions: NULL p allocates,
 * size 0 frees and returns NULL; the block keeps its new size. */
void *gw_evalloc_realloc(void *p, size_t size);

/* Frees a block of these functions (NULL: nothing), keeping it in the
 * calling thread's list when its size is kept and the bound allows. */
void gw_evalloc_free(void *p);

/* Frees the calling thread's kept blocks (a thread's exit does this too). */
void gw_evalloc_flush(void);

/* Bytes the calling thread keeps (for tests). */
size_t gw_evalloc_kept(void);

#endif
