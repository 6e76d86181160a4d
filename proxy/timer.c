/*
 * timer.c - deadline timers armed lazily (see timer.h).
 */
#include "timer.h"

#include <sys/time.h>

#include <event2/event.h>

#include "runtime.h"

void gw_timer_set(struct event *ev, uint64_t *armed_at, uint64_t deadline, uint64_t now)
{
    struct timeval tv;
    uint64_t d;

    if (*armed_at != 0 && *armed_at <= deadline)
        return; /* fires first; gw_timer_due() sets it again then */
    d = deadline > now ? deadline - now : 0;
    tv.tv_sec = (time_t)(d / 1000000);
    tv.tv_usec = (suseconds_t)(d % 1000000);
    if (event_add(ev, &tv) == 0)
        *armed_at = deadline;
}

int gw_timer_due(struct event *ev, uint64_t *armed_at, uint64_t deadline)
{
    uint64_t now = gw_mono_us();

    *armed_at = 0;
    if (deadline <= now)
        return 1;
    gw_timer_set(ev, armed_at, deadline, now);
    return 0;
}
