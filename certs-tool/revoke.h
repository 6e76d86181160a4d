/*
 * revoke.h - certificate revocation lists.
 *
 * client-ca.crl holds one CRL per trusted client intermediate (the current
 * generation first, then the previous ones still trusted, see store.h),
 * each signed by that intermediate and listing the revoked client
 * certificates it issued (index.tsv's ca-gen); server-ca.crl the same for
 * the server intermediates. root.crl (signed by the root) lists the
 * revoked intermediates (`retire --revoke`); mtlsgate takes only the
 * intermediates' CRLs, while nginx's ssl_crl wants a CRL for every CA of
 * the chain (client-ca.crl followed by root.crl). All are v2 CRLs with an
 * authority key identifier and a CRL number one higher than the highest in
 * the file they replace, lastUpdate 5 minutes in the past and nextUpdate
 * after --days (30).
 */
#ifndef CT_REVOKE_H
#define CT_REVOKE_H

#include <stddef.h>
#include <time.h>
#include <openssl/types.h>

#include "store.h"

#define CT_CRL_DAYS 30
#define CT_ROOT_CRL_FILE "root.crl"

/* "client-ca.crl" or "server-ca.crl" */
const char *ct_crl_file(enum ct_kind kind);

/*
 * The highest CRL number of the CRLs in path; *out = 0 when the file does
 * not exist. A file that exists but holds no CRL is an error.
 */
int ct_crl_read_number(const char *path, long *out, char *err, size_t errlen) CT_MUSTCHECK;

/*
 * Builds the CRL of generation gen of kind's intermediate (ca, whose key
 * must be loaded) from the revoked entries of idx that it issued. now = 0
 * means the current time. Caller frees.
 */
X509_CRL *ct_crl_build_gen(const struct ct_ca *ca, int gen, const struct ct_index *idx,
                           enum ct_kind kind, long number, int days, time_t now,
                           char *err, size_t errlen) CT_MUSTCHECK;

/* The same for the current generation of kind in pki. */
X509_CRL *ct_crl_build(const struct ct_pki *pki, const struct ct_index *idx, enum ct_kind kind,
                       long number, int days, time_t now, char *err, size_t errlen) CT_MUSTCHECK;

/*
 * Builds the next CRLs of kind (number = the file's highest + 1), one per
 * trusted generation, and stages them as DIR/<kind>-ca.crl in t (so the
 * keys of every trusted generation of kind must be loaded). *revoked (may
 * be NULL) gets the total entry count.
 */
int ct_crl_stage(struct ct_txn *t, const struct ct_pki *pki, const struct ct_index *idx,
                 enum ct_kind kind, int days, int *revoked, char *err, size_t errlen) CT_MUSTCHECK;

/* root.crl: the revoked intermediates of pki->gens, signed by the root (key loaded). */
X509_CRL *ct_root_crl_build(const struct ct_pki *pki, long number, int days, time_t now,
                            char *err, size_t errlen) CT_MUSTCHECK;

/* Builds the next root.crl and stages it; *revoked (may be NULL) its entry count. */
int ct_root_crl_stage(struct ct_txn *t, const struct ct_pki *pki, int days, int *revoked,
                      char *err, size_t errlen) CT_MUSTCHECK;

#endif
