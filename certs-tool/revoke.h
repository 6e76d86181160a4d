/*
 * revoke.h - certificate revocation lists.
 *
 * client-ca.crl (signed by the client intermediate) lists every revoked
 * client certificate of the index; server-ca.crl (server intermediate) every
 * revoked server certificate. Both are v2 CRLs with an authority key
 * identifier and a CRL number one higher than the file they replace,
 * lastUpdate 5 minutes in the past and nextUpdate after --days (30).
 */
#ifndef CT_REVOKE_H
#define CT_REVOKE_H

#include <stddef.h>
#include <time.h>
#include <openssl/types.h>

#include "store.h"

#define CT_CRL_DAYS 30

/* "client-ca.crl" or "server-ca.crl" */
const char *ct_crl_file(enum ct_kind kind);

/*
 * The CRL number of the CRL in path; *out = 0 when the file does not exist.
 * A file that exists but is not a CRL is an error.
 */
int ct_crl_read_number(const char *path, long *out, char *err, size_t errlen) CT_MUSTCHECK;

/*
 * Builds the CRL of kind from idx, signed by that intermediate of pki (its
 * key must be loaded). now = 0 means the current time. Caller frees.
 */
X509_CRL *ct_crl_build(const struct ct_pki *pki, const struct ct_index *idx, enum ct_kind kind,
                       long number, int days, time_t now, char *err, size_t errlen) CT_MUSTCHECK;

/*
 * Builds the next CRL of kind (number = current file's + 1) and stages it
 * as DIR/<kind>-ca.crl in t. *revoked (may be NULL) gets its entry count.
 */
int ct_crl_stage(struct ct_txn *t, const struct ct_pki *pki, const struct ct_index *idx,
                 enum ct_kind kind, int days, int *revoked, char *err, size_t errlen) CT_MUSTCHECK;

#endif
