/*
 * fuzz_config.c - the configuration loader on arbitrary bytes: libyaml's
 * events, the node tree, the key table, every setter and the cross-key
 * checks. The input is loaded in memory under a name in a directory that
 * does not exist, so relative file names resolve to nothing and no file
 * outside the input is ever opened for writing. Every path must free what
 * it allocated (ASan/LSan) and every message must be one line.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cfg *c = NULL;
    struct cfg_diag d;
    char where[256];
    size_t i;

    if (cfg_load_buffer("/nonexistent-mtlsgate-fuzz/gw.yml", (const char *)data, size, &c,
                        &d) == 0) {
        /* Only reachable with absolute paths to readable files. */
        if (c == NULL || c->n_listen == 0 || c->upstream.n_servers == 0)
            abort();
        (void)cfg_where(c, "tls.key", where, sizeof(where));
        (void)cfg_restart_needed(c, c, NULL);
    } else if (c != NULL || d.n == 0) {
        abort();                /* the contract: NULL and at least one message */
    }
    for (i = 0; i < d.n; i++)
        if (d.msg[i] == NULL || strchr(d.msg[i], '\n') != NULL)
            abort();
    cfg_diag_free(&d);
    cfg_free(c);
    return 0;
}
