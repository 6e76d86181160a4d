/*
 * verify.h - checking a leaf against this PKI and saying why it fails.
 */
#ifndef CT_VERIFY_H
#define CT_VERIFY_H

#include <stddef.h>
#include <time.h>
#include <openssl/types.h>
#include <openssl/x509.h>

#include "store.h"

/*
 * Verifies cert as a client (or server) certificate of pki: a chain to the
 * root (the only trust anchor) through a trusted generation (the current
 * or a previous one, see ct_pki_live) of the matching intermediate, with
 * X509_V_FLAG_X509_STRICT, the sslclient (sslserver) purpose and, when
 * crls is not NULL, a CRL check of the leaf. now = 0 means the current
 * time. Returns 0 when valid. Returns -1 with why in words, most specific
 * first: "is a CA certificate ...", "issued by the client intermediate
 * generation N, which was retired (revoked) on <date> ...", "issued by the
 * server intermediate, not the client intermediate", "unknown issuer ...",
 * "has no extended key usage ...", "no clientAuth usage ...", "expired on
 * <date>", "not yet valid until <date>", "revoked on <date> (reason)", or
 * OpenSSL's reason.
 */
int ct_verify_cert(const struct ct_pki *pki, X509 *cert, enum ct_kind kind,
                   STACK_OF(X509_CRL) *crls, time_t now, char *why, size_t whylen) CT_MUSTCHECK;

#endif
