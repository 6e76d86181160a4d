/*
 * profile.h - the certificate profiles certs-tool issues.
 *
 *   root          CA:TRUE pathlen:1 (critical), keyUsage keyCertSign+cRLSign
 *                 (critical), SKI, AKI = SKI; self-signed.
 *   intermediate  CA:TRUE pathlen:0 (critical), keyUsage keyCertSign+cRLSign
 *                 (critical), EKU clientAuth (client intermediate) or
 *                 serverAuth (server intermediate), SKI, AKI.
 *   client leaf   CA:FALSE (critical), keyUsage digitalSignature+
 *                 keyEncipherment+dataEncipherment (critical; what the
 *                 PostgreSQL JDBC driver expects), EKU clientAuth, SKI, AKI.
 *   server leaf   CA:FALSE (critical), keyUsage digitalSignature+
 *                 keyEncipherment (critical), EKU serverAuth, subjectAltName
 *                 (the name itself plus --san entries), SKI, AKI.
 *
 * Every certificate is X.509 v3 with a random positive 16-byte serial (126
 * random bits from RAND_bytes, top bits fixed to 01 so the DER length is
 * always 16; well above the 64 bits required), subject O=<org>, CN=<name>,
 * notBefore 5 minutes in the past (clock skew), notAfter now + days, clamped
 * so that no certificate outlives its issuer; an issuer whose notAfter has
 * passed issues nothing (ct_profile_make refuses, naming it). Nothing from a CSR other than
 * its public key ever reaches a certificate: the profile alone decides the
 * extensions.
 */
#ifndef CT_PROFILE_H
#define CT_PROFILE_H

#include <stddef.h>
#include <time.h>
#include <openssl/types.h>

#include "keygen.h"
#include "store.h"

#define CT_DAYS_ROOT 3650
#define CT_DAYS_INTERMEDIATE 1825
#define CT_DAYS_LEAF 365
#define CT_DAYS_MAX 36500
#define CT_BACKDATE_SECONDS 300
#define CT_SERIAL_BYTES 16
#define CT_ORG_DEFAULT "mtlsgate"
#define CT_ORG_MAX 64

enum ct_profile {
    CT_PROFILE_ROOT,
    CT_PROFILE_INTERMEDIATE,
    CT_PROFILE_CLIENT,
    CT_PROFILE_SERVER,
};

#define CT_SAN_MAX 32
#define CT_SAN_VALUE_MAX 253

/* One subjectAltName entry: a DNS name or an IP address (text form). */
struct ct_san {
    int is_ip;
    char value[CT_SAN_VALUE_MAX + 1];
};

struct ct_san_list {
    struct ct_san v[CT_SAN_MAX];
    int n;
};

/*
 * Parses "DNS:host,IP:addr,..." (case-insensitive prefixes; IPv4 or IPv6)
 * and appends the entries to list, skipping duplicates. DNS names must be
 * host names (letters, digits, '-', dot-separated labels, an optional
 * leading "*."). Returns 0, or -1 with err naming the bad entry.
 */
int ct_san_parse(const char *text, struct ct_san_list *list, char *err, size_t errlen) CT_MUSTCHECK;

/*
 * Appends name as an IP entry when it parses as an IP address, else as a
 * DNS entry (which must then be a valid host name). Duplicates are skipped.
 */
int ct_san_add_name(struct ct_san_list *list, const char *name, char *err, size_t errlen) CT_MUSTCHECK;

/*
 * Checks an organisation name: 1..CT_ORG_MAX bytes, no control characters,
 * well-formed UTF-8. err quotes it with ct_quote (bytes escaped).
 */
int ct_org_check(const char *org, char *err, size_t errlen) CT_MUSTCHECK;

/* What to certify. */
struct ct_cert_spec {
    enum ct_profile profile;
    enum ct_kind kind;             /* intermediates: which leaves it issues (its EKU) */
    const char *org;               /* O=; NULL or "" to leave out */
    const char *cn;                /* CN= */
    EVP_PKEY *subject_key;         /* the public key certified (private half not needed) */
    X509 *issuer;                  /* NULL: self-signed (root profile only) */
    EVP_PKEY *issuer_key;          /* signs; the subject's own key for the root */
    int days;                      /* 1..CT_DAYS_MAX */
    time_t now;                    /* 0: the current time (tests pass other times) */
    const struct ct_san_list *sans; /* server profile: subjectAltNames (required) */
};

/*
 * Builds and signs one certificate per spec. *clamped (when not NULL) is set
 * to 1 when notAfter had to be cut to the issuer's notAfter. Refuses when
 * the issuer's notAfter is at or before spec->now: "client intermediate
 * SUBJECT expired on DATE: cannot issue 'CN'; run certs-tool rollover
 * client" (the root, for an intermediate). Returns the new certificate
 * (caller frees) or NULL with err set.
 */
X509 *ct_profile_make(const struct ct_cert_spec *spec, int *clamped, char *err, size_t errlen) CT_MUSTCHECK;

/*
 * The digest to sign with for key: NULL for Ed25519/Ed448 (which take
 * none), SHA-384 for P-384, SHA-512 for P-521, SHA-256 otherwise.
 */
const EVP_MD *ct_sign_md(EVP_PKEY *key);

/*
 * The O= of a certificate's subject into buf ("" when absent). Used to
 * give leaves the organisation of the CA that issues them.
 */
const char *ct_cert_org(X509 *x, char *buf, size_t len);

/*
 * A CA's CN: "<org><suffix>" (suffix like " Client CA" or " Client CA 2"),
 * with org cut at a UTF-8 boundary so that the CN fits in 64 bytes.
 */
void ct_ca_cn(char *out, size_t len, const char *org, const char *suffix);

/*
 * Generates a key of type kt into ca->key and certifies it into ca->cert
 * with profile (root or intermediate), subject O=org, CN=ct_ca_cn(org,
 * suffix), signed by issuer (NULL: self-signed). *clamped as for
 * ct_profile_make (may be NULL). On failure ca may hold a key (the caller
 * frees ca either way).
 */
int ct_ca_make(struct ct_ca *ca, enum ct_key_type kt, enum ct_profile profile, enum ct_kind kind,
               const char *org, const char *suffix, const struct ct_ca *issuer, int days,
               int *clamped, char *err, size_t errlen) CT_MUSTCHECK;

#endif
