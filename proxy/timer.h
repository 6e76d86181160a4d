/*
 * timer.h - deadline timers armed lazily, on libevent timer events.
 *
 * A deadline that changes often (a connection's per-state timeouts, the
 * upstream pool's idle time) is kept in a variable; the event is re-added
 * only when the deadline moves before the time it is set for. When it
 * fires, gw_timer_due() says whether the deadline has come, and otherwise
 * sets it again for the rest: a deadline that moved later, or libevent's
 * coarse clock waking it early, never ends a timeout early. Deadlines are
 * gw_mono_us() times (runtime.h). One event loop thread; no locks.
 */
#ifndef MTLS_PROXY_TIMER_H
#define MTLS_PROXY_TIMER_H

#include <stdint.h>

struct event;

/*
 * Makes ev fire no later than deadline (now: gw_mono_us()). *armed_at is
 * when ev is set to fire, 0 when it is not pending: nothing is done when it
 * fires first already. A failed event_add leaves *armed_at as it was.
 */
void gw_timer_set(struct event *ev, uint64_t *armed_at, uint64_t deadline, uint64_t now);

/*
 * In ev's callback: *armed_at becomes 0; 1 when deadline has come, else ev
 * is set again for the rest and 0 is returned.
 */
int gw_timer_due(struct event *ev, uint64_t *armed_at, uint64_t deadline);

#endif
