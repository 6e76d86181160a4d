/*
 * threadexit.c - a function run when a thread exits (see threadexit.h).
 *
 * Each hook has a pthread key of its own, made at its first use under one
 * lock; a thread arms it by setting its value, and the key's destructor
 * runs the hook's function when the thread exits.
 */
#include "threadexit.h"

static pthread_mutex_t make_lock = PTHREAD_MUTEX_INITIALIZER;

static void run_hook(void *arg)
{
    struct gw_thread_exit *hook = arg;

    hook->fn();
}

int gw_thread_exit_arm(struct gw_thread_exit *hook)
{
    if (__atomic_load_n(&hook->state, __ATOMIC_ACQUIRE) == 0) {
        pthread_mutex_lock(&make_lock);
        if (hook->state == 0)
            __atomic_store_n(&hook->state, pthread_key_create(&hook->key, run_hook) == 0 ? 1 : -1,
                             __ATOMIC_RELEASE);
        pthread_mutex_unlock(&make_lock);
    }
    if (__atomic_load_n(&hook->state, __ATOMIC_ACQUIRE) != 1)
        return -1;
    return pthread_setspecific(hook->key, hook) == 0 ? 0 : -1;
}
