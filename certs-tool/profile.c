/*
 * profile.c - builds certificates from the profiles described in profile.h.
 */
#include "profile.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "tls_errors.h"
#include "tls_x509.h"

/* ---- subjectAltName ------------------------------------------------------ */

/* A host name: dot-separated labels of [A-Za-z0-9-], optional leading "*.". */
static int dns_ok(const char *s)
{
    size_t len = strlen(s), label = 0, i;

    if (len == 0 || len > CT_SAN_VALUE_MAX)
        return 0;
    if (strncmp(s, "*.", 2) == 0) {
        s += 2;
        len -= 2;
        if (len == 0)
            return 0;
    }
    for (i = 0; i <= len; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c == '.' || c == '\0') {
            if (label == 0 || label > 63 || s[i - 1] == '-')
                return 0;
            label = 0;
            continue;
        }
        if (!(isascii(c) && (isalnum(c) || c == '-')))
            return 0;
        if (label == 0 && c == '-')
            return 0;
        label++;
    }
    return 1;
}

/* Normalises an IP address into out (inet_ntop form); 0 / -1. */
static int ip_norm(const char *s, char out[INET6_ADDRSTRLEN])
{
    unsigned char buf[16];

    if (inet_pton(AF_INET, s, buf) == 1)
        return inet_ntop(AF_INET, buf, out, INET6_ADDRSTRLEN) ? 0 : -1;
    if (inet_pton(AF_INET6, s, buf) == 1)
        return inet_ntop(AF_INET6, buf, out, INET6_ADDRSTRLEN) ? 0 : -1;
    return -1;
}

/* Appends one SAN unless an equal one (case-insensitive) is already there. */
static int san_append(struct ct_san_list *list, int is_ip, const char *value, char *err,
                      size_t errlen)
{
    int i;

    for (i = 0; i < list->n; i++)
        if (list->v[i].is_ip == is_ip && strcasecmp(list->v[i].value, value) == 0)
            return 0;
    if (list->n >= CT_SAN_MAX) {
        snprintf(err, errlen, "more than %d subjectAltNames", CT_SAN_MAX);
        return -1;
    }
    list->v[list->n].is_ip = is_ip;
    /* Callers checked the length (dns_ok, ip_norm); the precision says so to -O3. */
    snprintf(list->v[list->n].value, sizeof(list->v[list->n].value), "%.*s", CT_SAN_VALUE_MAX,
             value);
    list->n++;
    return 0;
}

int ct_san_parse(const char *text, struct ct_san_list *list, char *err, size_t errlen)
{
    char item[CT_SAN_VALUE_MAX + 8], q[96], ip[INET6_ADDRSTRLEN];
    const char *p = text, *comma;
    size_t n;

    for (;;) {
        comma = strchr(p, ',');
        n = comma ? (size_t)(comma - p) : strlen(p);
        if (n == 0 || n >= sizeof(item)) {
            snprintf(err, errlen, "--san '%s': %s entry", ct_quote(text, q, sizeof(q)),
                     n == 0 ? "empty" : "too long an");
            return -1;
        }
        memcpy(item, p, n);
        item[n] = '\0';
        if (strncasecmp(item, "DNS:", 4) == 0) {
            if (!dns_ok(item + 4)) {
                snprintf(err, errlen, "--san: '%s' is not a valid DNS name",
                         ct_quote(item + 4, q, sizeof(q)));
                return -1;
            }
            if (san_append(list, 0, item + 4, err, errlen) != 0)
                return -1;
        } else if (strncasecmp(item, "IP:", 3) == 0) {
            if (ip_norm(item + 3, ip) != 0) {
                snprintf(err, errlen, "--san: '%s' is not an IPv4 or IPv6 address",
                         ct_quote(item + 3, q, sizeof(q)));
                return -1;
            }
            if (san_append(list, 1, ip, err, errlen) != 0)
                return -1;
        } else {
            snprintf(err, errlen, "--san: '%s' must start with DNS: or IP:",
                     ct_quote(item, q, sizeof(q)));
            return -1;
        }
        if (comma == NULL)
            return 0;
        p = comma + 1;
    }
}

int ct_san_add_name(struct ct_san_list *list, const char *name, char *err, size_t errlen)
{
    char ip[INET6_ADDRSTRLEN], q[96];

    if (ip_norm(name, ip) == 0)
        return san_append(list, 1, ip, err, errlen);
    if (!dns_ok(name)) {
        snprintf(err, errlen, "server name '%s' is not a host name (letters, digits, '-', '.')",
                 ct_quote(name, q, sizeof(q)));
        return -1;
    }
    return san_append(list, 0, name, err, errlen);
}

/* Builds the subjectAltName extension from list and adds it to x. */
static int add_sans(X509 *x, const struct ct_san_list *list, char *err, size_t errlen)
{
    GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
    GENERAL_NAME *gn = NULL;
    int i, rc = -1;

    if (gens == NULL)
        goto fail;
    for (i = 0; i < list->n; i++) {
        if ((gn = GENERAL_NAME_new()) == NULL)
            goto fail;
        if (list->v[i].is_ip) {
            ASN1_OCTET_STRING *os = a2i_IPADDRESS(list->v[i].value);

            if (os == NULL)
                goto fail;
            GENERAL_NAME_set0_value(gn, GEN_IPADD, os);
        } else {
            ASN1_IA5STRING *ia5 = ASN1_IA5STRING_new();

            if (ia5 == NULL || !ASN1_STRING_set(ia5, list->v[i].value, -1)) {
                ASN1_IA5STRING_free(ia5);
                goto fail;
            }
            GENERAL_NAME_set0_value(gn, GEN_DNS, ia5);
        }
        if (!sk_GENERAL_NAME_push(gens, gn))
            goto fail;
        gn = NULL;
    }
    if (X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT) != 1)
        goto fail;
    rc = 0;
    goto out;
fail:
    tls_err_set(err, errlen, "cannot build subjectAltName");
out:
    GENERAL_NAME_free(gn);
    GENERAL_NAMES_free(gens);
    return rc;
}

/* ---- names ----------------------------------------------------------------- */

/*
 * 1 when s is well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates,
 * nothing above U+10FFFF), else 0.
 */
static int utf8_ok(const unsigned char *s)
{
    while (*s != '\0') {
        unsigned c = *s, cp, min;
        int n, i;

        if (c < 0x80) {
            s++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            n = 1, cp = c & 0x1f, min = 0x80;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2, cp = c & 0x0f, min = 0x800;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return 0;
        }
        for (i = 1; i <= n; i++) {
            if ((s[i] & 0xc0) != 0x80) /* also stops at the NUL */
                return 0;
            cp = (cp << 6) | (s[i] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        s += n + 1;
    }
    return 1;
}

int ct_org_check(const char *org, char *err, size_t errlen)
{
    const unsigned char *p;
    char q[96];

    if (org == NULL || org[0] == '\0') {
        snprintf(err, errlen, "organisation name is empty");
        return -1;
    }
    if (strlen(org) > CT_ORG_MAX) {
        snprintf(err, errlen, "organisation name '%s' is longer than %d bytes",
                 ct_quote(org, q, sizeof(q)), CT_ORG_MAX);
        return -1;
    }
    for (p = (const unsigned char *)org; *p != '\0'; p++) {
        if (*p < 0x20 || *p == 0x7f) {
            snprintf(err, errlen, "organisation name '%s' contains a control character",
                     ct_quote(org, q, sizeof(q)));
            return -1;
        }
    }
    /* It goes into a UTF8String; the message shows the bytes escaped. */
    if (!utf8_ok((const unsigned char *)org)) {
        snprintf(err, errlen, "organisation name '%s' is not valid UTF-8",
                 ct_quote(org, q, sizeof(q)));
        return -1;
    }
    return 0;
}

const char *ct_cert_org(X509 *x, char *buf, size_t len)
{
    const X509_NAME *name = X509_get_subject_name(x);
    int idx;
    unsigned char *utf8 = NULL;
    int n;

    if (len == 0)
        return buf;
    buf[0] = '\0';
    idx = name ? X509_NAME_get_index_by_NID(name, NID_organizationName, -1) : -1;
    if (idx < 0)
        return buf;
    n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx)));
    if (n > 0)
        snprintf(buf, len, "%.*s", n, (const char *)utf8);
    OPENSSL_free(utf8);
    ERR_clear_error();
    return buf;
}

/* ---- building a certificate ---------------------------------------------- */

const EVP_MD *ct_sign_md(EVP_PKEY *key)
{
    if (EVP_PKEY_is_a(key, "ED25519") || EVP_PKEY_is_a(key, "ED448"))
        return NULL;
    if (EVP_PKEY_is_a(key, "EC") && EVP_PKEY_get_bits(key) > 384)
        return EVP_sha512();
    if (EVP_PKEY_is_a(key, "EC") && EVP_PKEY_get_bits(key) > 256)
        return EVP_sha384();
    return EVP_sha256();
}

/* Adds one extension given in openssl's config syntax, e.g. "critical,CA:TRUE". */
static int add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value, char *err, size_t errlen)
{
    X509_EXTENSION *ext = X509V3_EXT_nconf_nid(NULL, ctx, nid, value);
    int ok = ext != NULL && X509_add_ext(x, ext, -1);

    X509_EXTENSION_free(ext);
    if (!ok) {
        tls_err_set(err, errlen, "cannot add extension %s = %s", OBJ_nid2sn(nid), value);
        return -1;
    }
    return 0;
}

/* A random positive serial of CT_SERIAL_BYTES bytes. */
static int set_serial(X509 *x, char *err, size_t errlen)
{
    unsigned char b[CT_SERIAL_BYTES];
    BIGNUM *bn = NULL;
    ASN1_INTEGER *ai = NULL;
    int rc = -1;

    if (RAND_bytes(b, sizeof(b)) != 1)
        goto out;
    /* Top bits 01: positive, and never shorter than 16 bytes in DER. */
    b[0] = (unsigned char)((b[0] & 0x3f) | 0x40);
    if ((bn = BN_bin2bn(b, sizeof(b), NULL)) == NULL || (ai = BN_to_ASN1_INTEGER(bn, NULL)) == NULL ||
        !X509_set_serialNumber(x, ai))
        goto out;
    rc = 0;
out:
    if (rc != 0)
        tls_err_set(err, errlen, "cannot make a random serial number");
    ASN1_INTEGER_free(ai);
    BN_free(bn);
    return rc;
}

/* Sets the subject to O=org (when given), CN=cn, as UTF8Strings. */
static int set_subject(X509 *x, const char *org, const char *cn, char *err, size_t errlen)
{
    X509_NAME *name = X509_NAME_new();
    int rc = -1;

    if (name == NULL)
        goto out;
    if (org != NULL && org[0] != '\0' &&
        !X509_NAME_add_entry_by_NID(name, NID_organizationName, MBSTRING_UTF8,
                                    (const unsigned char *)org, -1, -1, 0))
        goto out;
    if (!X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8,
                                    (const unsigned char *)cn, -1, -1, 0) ||
        !X509_set_subject_name(x, name))
        goto out;
    rc = 0;
out:
    if (rc != 0) {
        char qo[96], qc[96];

        tls_err_set(err, errlen, "cannot set subject O=%s, CN=%s", ct_quote(org, qo, sizeof(qo)),
                    ct_quote(cn, qc, sizeof(qc)));
    }
    X509_NAME_free(name);
    return rc;
}

/*
 * Refuses (-1, err naming the issuer, when it expired and what to do) when
 * spec's issuer is no longer valid at now: a certificate cut to its
 * notAfter would end before it begins, or be born expired.
 */
static int issuer_alive(const struct ct_cert_spec *spec, time_t now, char *err, size_t errlen)
{
    const ASN1_TIME *na;
    char subj[256], ts[64];
    time_t when = 0;
    const char *what, *hint;

    if (spec->issuer == NULL)
        return 0;
    na = X509_get0_notAfter(spec->issuer);
    if (na != NULL && ASN1_TIME_cmp_time_t(na, now) > 0)
        return 0;
    if (spec->profile == CT_PROFILE_INTERMEDIATE) {
        what = "root CA";
        hint = "a root cannot be renewed in place: make a new PKI with certs-tool init";
    } else if (spec->profile == CT_PROFILE_SERVER) {
        what = "server intermediate";
        hint = "run certs-tool rollover server";
    } else {
        what = "client intermediate";
        hint = "run certs-tool rollover client";
    }
    if (tls_x509_not_after(spec->issuer, &when) != 0)
        when = 0;
    snprintf(err, errlen, "%s %s expired on %s: cannot issue '%s'; %s", what,
             tls_x509_subject(spec->issuer, subj, sizeof(subj)), tls_time_str(when, ts, sizeof(ts)),
             spec->cn, hint);
    return -1;
}

/*
 * notBefore = now - 5 min, notAfter = now + days, cut to the issuer's
 * notAfter; refused (issuer_alive) when the issuer has expired.
 */
static int set_validity(X509 *x, const struct ct_cert_spec *spec, int *clamped, char *err,
                        size_t errlen)
{
    time_t now = spec->now ? spec->now : time(NULL);

    if (issuer_alive(spec, now, err, errlen) != 0)
        return -1;
    if (X509_time_adj_ex(X509_getm_notBefore(x), 0, -CT_BACKDATE_SECONDS, &now) == NULL ||
        X509_time_adj_ex(X509_getm_notAfter(x), spec->days, 0, &now) == NULL) {
        tls_err_set(err, errlen, "cannot set validity");
        return -1;
    }
    if (spec->issuer != NULL &&
        ASN1_TIME_compare(X509_get0_notAfter(x), X509_get0_notAfter(spec->issuer)) > 0) {
        if (!X509_set1_notAfter(x, X509_get0_notAfter(spec->issuer))) {
            tls_err_set(err, errlen, "cannot set validity");
            return -1;
        }
        if (clamped != NULL)
            *clamped = 1;
    }
    return 0;
}

X509 *ct_profile_make(const struct ct_cert_spec *spec, int *clamped, char *err, size_t errlen)
{
    X509 *x = X509_new();
    X509 *issuer;
    X509V3_CTX ctx;
    const char *bc, *ku, *eku = NULL;
    int ok = 0;

    if (clamped != NULL)
        *clamped = 0;
    if (x == NULL) {
        tls_err_set(err, errlen, "out of memory");
        return NULL;
    }
    if (spec->days < 1 || spec->days > CT_DAYS_MAX) {
        snprintf(err, errlen, "days must be 1..%d", CT_DAYS_MAX);
        goto out;
    }
    if ((spec->issuer == NULL) != (spec->profile == CT_PROFILE_ROOT)) {
        snprintf(err, errlen, "%s: only the root is self-signed", spec->cn);
        goto out;
    }
    if (spec->profile == CT_PROFILE_SERVER && (spec->sans == NULL || spec->sans->n == 0)) {
        snprintf(err, errlen, "%s: a server certificate needs at least one subjectAltName",
                 spec->cn);
        goto out;
    }
    switch (spec->profile) {
    case CT_PROFILE_ROOT:
        bc = "critical,CA:TRUE,pathlen:1";
        ku = "critical,keyCertSign,cRLSign";
        break;
    case CT_PROFILE_INTERMEDIATE:
        bc = "critical,CA:TRUE,pathlen:0";
        ku = "critical,keyCertSign,cRLSign";
        /* Limits what the intermediate's leaves can be used for, for every
         * verifier that nests EKUs (OpenSSL purposes, Go, browsers). */
        eku = spec->kind == CT_KIND_SERVER ? "serverAuth" : "clientAuth";
        break;
    case CT_PROFILE_CLIENT:
        bc = "critical,CA:FALSE";
        ku = "critical,digitalSignature,keyEncipherment,dataEncipherment";
        eku = "clientAuth";
        break;
    case CT_PROFILE_SERVER:
    default:
        bc = "critical,CA:FALSE";
        ku = "critical,digitalSignature,keyEncipherment";
        eku = "serverAuth";
        break;
    }
    if (!X509_set_version(x, X509_VERSION_3) || !X509_set_pubkey(x, spec->subject_key)) {
        tls_err_set(err, errlen, "%s: cannot set version or public key", spec->cn);
        goto out;
    }
    if (set_serial(x, err, errlen) != 0 || set_subject(x, spec->org, spec->cn, err, errlen) != 0 ||
        set_validity(x, spec, clamped, err, errlen) != 0)
        goto out;
    issuer = spec->issuer ? spec->issuer : x;
    if (!X509_set_issuer_name(x, X509_get_subject_name(issuer))) {
        tls_err_set(err, errlen, "%s: cannot set issuer", spec->cn);
        goto out;
    }
    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    /* SKI before AKI: a self-signed AKI is taken from the SKI just added. */
    if (add_ext(x, &ctx, NID_basic_constraints, bc, err, errlen) != 0 ||
        add_ext(x, &ctx, NID_key_usage, ku, err, errlen) != 0 ||
        (eku != NULL && add_ext(x, &ctx, NID_ext_key_usage, eku, err, errlen) != 0) ||
        add_ext(x, &ctx, NID_subject_key_identifier, "hash", err, errlen) != 0 ||
        add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always", err, errlen) != 0)
        goto out;
    if (spec->profile == CT_PROFILE_SERVER && add_sans(x, spec->sans, err, errlen) != 0)
        goto out;
    if (X509_sign(x, spec->issuer_key, ct_sign_md(spec->issuer_key)) <= 0) {
        tls_err_set(err, errlen, "%s: cannot sign", spec->cn);
        goto out;
    }
    ok = 1;
out:
    if (!ok) {
        X509_free(x);
        x = NULL;
    }
    return x;
}

/* ---- CA certificates ---------------------------------------------------------- */

void ct_ca_cn(char *out, size_t len, const char *org, const char *suffix)
{
    size_t slen = strlen(suffix), room = slen < TLS_CN_MAX ? TLS_CN_MAX - slen : 0;
    size_t n = strlen(org);

    if (n > room) {
        n = room;
        while (n > 0 && ((unsigned char)org[n] & 0xc0) == 0x80)
            n--;
    }
    snprintf(out, len, "%.*s%s", (int)n, org, suffix);
}

int ct_ca_make(struct ct_ca *ca, enum ct_key_type kt, enum ct_profile profile, enum ct_kind kind,
               const char *org, const char *suffix, const struct ct_ca *issuer, int days,
               int *clamped, char *err, size_t errlen)
{
    struct ct_cert_spec spec;
    char cn[TLS_CN_MAX + 1];

    if ((ca->key = ct_keygen(kt, err, errlen)) == NULL)
        return -1;
    ct_ca_cn(cn, sizeof(cn), org, suffix);
    memset(&spec, 0, sizeof(spec));
    spec.profile = profile;
    spec.kind = kind;
    spec.org = org;
    spec.cn = cn;
    spec.subject_key = ca->key;
    spec.issuer = issuer ? issuer->cert : NULL;
    spec.issuer_key = issuer ? issuer->key : ca->key;
    spec.days = days;
    ca->cert = ct_profile_make(&spec, clamped, err, errlen);
    return ca->cert != NULL ? 0 : -1;
}
