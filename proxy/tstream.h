/*
 * tstream.h - the client side's TLS stream: an SSL on a non-blocking
 * socket with an input and an output evbuffer, driven by a read and a
 * write event on the worker's base.
 *
 * It does for a client connection what libevent's bufferevent_openssl
 * did, minus what the gateway paid for and did not use: per request that
 * was two ERR_clear_error() calls (the error queue is cleared here only
 * after a failed call), an evbuffer callback run at every change of both
 * buffers, the read and write events re-added at each state change, and
 * reads of 4 KiB at most. Reads here take what OpenSSL holds (a record, or
 * the records read ahead behind it) in one callback; writes go out from
 * the output's chains, 16 KiB per TLS record at most.
 *
 * Callbacks run only from the stream's own events (or their activation
 * later in the same loop iteration), never from inside a call into the
 * stream, so a callback may call anything here, except gw_ts_free.
 *   read cb:  bytes were added to the input;
 *   write cb: a write left the output at or below the write low mark;
 *   event cb: GW_TS_CONNECTED (handshake done), or the end: GW_TS_EOF
 *             (close_notify, a FIN, a reset: allow-dirty-shutdown),
 *             GW_TS_ERROR (a TLS error: gw_ts_ssl_error says which),
 *             GW_TS_TIMEOUT (the write timeout), each with GW_TS_READING
 *             or GW_TS_WRITING. After EOF or ERROR the stream reads no more;
 *             after an EOF while reading it may still write.
 * Neither the socket nor the SSL is owned: gw_ts_free leaves both.
 */
#ifndef MTLS_PROXY_TSTREAM_H
#define MTLS_PROXY_TSTREAM_H

#include <stddef.h>

#include <event2/util.h>
#include <openssl/ssl.h>

struct event_base;
struct evbuffer;
struct gw_ts;

#define GW_TS_READING 0x01
#define GW_TS_WRITING 0x02
#define GW_TS_EOF 0x10
#define GW_TS_ERROR 0x20
#define GW_TS_TIMEOUT 0x40
#define GW_TS_CONNECTED 0x80

typedef void (*gw_ts_data_cb)(struct gw_ts *t, void *arg);
typedef void (*gw_ts_event_cb)(struct gw_ts *t, short what, void *arg);

/*
 * A stream on fd and ssl; accepting: the server side of the handshake runs
 * first (GW_TS_CONNECTED when done), else the session is open already.
 * Reading and writing start enabled. wtimeout_ms: how long the output may
 * wait for the socket to take a byte (0: for ever). NULL on out of memory.
 */
struct gw_ts *gw_ts_new(struct event_base *base, evutil_socket_t fd, SSL *ssl, int accepting,
                        unsigned wtimeout_ms, gw_ts_data_cb readcb, gw_ts_data_cb writecb,
                        gw_ts_event_cb eventcb, void *arg);
void gw_ts_free(struct gw_ts *t);

struct evbuffer *gw_ts_input(struct gw_ts *t);
/* Bytes added here go out in this loop iteration, while writing is on. */
struct evbuffer *gw_ts_output(struct gw_ts *t);

/* EV_READ and/or EV_WRITE on or off; gw_ts_enabled says which are on.
 * Turning reading on reads what OpenSSL holds already (gw_ts_kick_read). */
void gw_ts_enable(struct gw_ts *t, short what);
void gw_ts_disable(struct gw_ts *t, short what);
short gw_ts_enabled(const struct gw_ts *t);

/* Reading stops while the input holds high bytes or more (0: no bound). */
void gw_ts_set_read_high(struct gw_ts *t, size_t high);
/* The write cb runs when a write leaves the output at low bytes or less. */
void gw_ts_set_write_low(struct gw_ts *t, size_t low);

/* Reads, in this loop iteration, the whole records OpenSSL already holds,
 * when reading is on: records read ahead wait there with nothing left in
 * the socket to announce them. */
void gw_ts_kick_read(struct gw_ts *t);

/*
 * Ends the writing side, called once the output is written (-1 while it
 * holds bytes): close_notify, then a FIN (shutdown(SHUT_WR)), so the
 * client sees a clean end at once. 1: both are out; 0: the alert waits for
 * the socket to take it (the FIN after it: the write cb runs once both are
 * out, the write timeout bounds the wait, writing must stay enabled); -1:
 * the socket or the session failed (or, later, an event GW_TS_EOF |
 * GW_TS_WRITING). Called again after 1, it returns 1. Nothing is written
 * after it; reading goes on.
 */
int gw_ts_shutdown(struct gw_ts *t);

/* The OpenSSL errors of the failure that ended the stream, latest first
 * (as libevent's bufferevent_get_openssl_error); 0 when there are none. */
unsigned long gw_ts_ssl_error(struct gw_ts *t);

#endif
