/*
 * conn.h - one client connection: TLS handshake, requests, proxying.
 *
 * A connection lives on one worker and is driven by its bufferevents and
 * timers through the states of enum gw_conn_state (conn_int.h). Only
 * conn_close() ends one, and it never frees the connection inside the
 * callback that decided to close it: the memory is released from a
 * separate event on the next loop iteration, so a callback that closes
 * can still read its own fields on the way out.
 */
#ifndef MTLS_PROXY_CONN_H
#define MTLS_PROXY_CONN_H

#include <sys/socket.h>

#include <event2/util.h>

struct gw_worker;

/*
 * Takes over an accepted socket: creates the connection with an SSL from
 * the worker's current runtime and starts the handshake (timed by
 * timeouts.handshake). On failure the socket is closed and the failure
 * logged. Worker thread only.
 */
void gw_conn_accept(struct gw_worker *w, evutil_socket_t fd, const struct sockaddr *sa,
                    int salen);

/*
 * Graceful stop: closes every connection that is not in the middle of a
 * request (handshaking, idle between requests); the others are closed as
 * soon as their current response is complete.
 */
void gw_conn_drain_all(struct gw_worker *w);

/* Immediate stop: frees every connection of w now (not from a callback). */
void gw_conn_free_all(struct gw_worker *w);

/* The callback of the worker's reap_ev (one per worker, made by worker.c):
 * frees the connections closed since it last ran. */
void gw_conn_reap_cb(evutil_socket_t fd, short what, void *worker);

/* Frees the worker's cached request objects (at worker exit). */
void gw_conn_req_cache_free(struct gw_worker *w);

#endif
