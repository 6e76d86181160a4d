/*
 * keygen.c - key generation and the key-strength policy for CSRs.
 */
#include "keygen.h"

#include <stdio.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>

#include "tls_errors.h"

static const struct {
    const char *name;
    enum ct_key_type type;
} key_types[] = {
    {"ec-p256", CT_KEY_EC_P256},   {"ec-p384", CT_KEY_EC_P384},
    {"rsa-2048", CT_KEY_RSA_2048}, {"rsa-3072", CT_KEY_RSA_3072},
    {"rsa-4096", CT_KEY_RSA_4096}, {"ed25519", CT_KEY_ED25519},
};

const char *ct_key_type_list(void)
{
    return "ec-p256, ec-p384, rsa-2048, rsa-3072, rsa-4096, ed25519";
}

int ct_key_type_parse(const char *name, enum ct_key_type *out, char *err, size_t errlen)
{
    char q[96];
    size_t i;

    for (i = 0; i < sizeof(key_types) / sizeof(key_types[0]); i++) {
        if (strcmp(name, key_types[i].name) == 0) {
            *out = key_types[i].type;
            return 0;
        }
    }
    snprintf(err, errlen, "unknown key type '%s' (%s)", ct_quote(name, q, sizeof(q)),
             ct_key_type_list());
    return -1;
}

const char *ct_key_type_name(enum ct_key_type t)
{
    size_t i;

    for (i = 0; i < sizeof(key_types) / sizeof(key_types[0]); i++)
        if (key_types[i].type == t)
            return key_types[i].name;
    return "?";
}

int ct_key_type_of(EVP_PKEY *key, enum ct_key_type *out, char *err, size_t errlen)
{
    char group[64];
    size_t glen = 0;
    int bits = EVP_PKEY_get_bits(key);

    if (EVP_PKEY_is_a(key, "RSA")) {
        if (bits == 2048 || bits == 3072 || bits == 4096) {
            *out = bits == 2048 ? CT_KEY_RSA_2048 : bits == 3072 ? CT_KEY_RSA_3072 : CT_KEY_RSA_4096;
            return 0;
        }
    } else if (EVP_PKEY_is_a(key, "ED25519")) {
        *out = CT_KEY_ED25519;
        return 0;
    } else if (EVP_PKEY_is_a(key, "EC") &&
               EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group,
                                              sizeof(group), &glen)) {
        if (strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0) {
            *out = CT_KEY_EC_P256;
            return 0;
        }
        if (strcmp(group, "secp384r1") == 0 || strcmp(group, "P-384") == 0) {
            *out = CT_KEY_EC_P384;
            return 0;
        }
    }
    snprintf(err, errlen, "%s key of %d bits is not a type certs-tool makes; pass --key-type (%s)",
             EVP_PKEY_get0_type_name(key) ? EVP_PKEY_get0_type_name(key) : "unknown", bits,
             ct_key_type_list());
    return -1;
}

EVP_PKEY *ct_keygen(enum ct_key_type t, char *err, size_t errlen)
{
    EVP_PKEY *key = NULL;

    switch (t) {
    case CT_KEY_EC_P256:
        key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        break;
    case CT_KEY_EC_P384:
        key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
        break;
    case CT_KEY_RSA_2048:
        key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
        break;
    case CT_KEY_RSA_3072:
        key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)3072);
        break;
    case CT_KEY_RSA_4096:
        key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)4096);
        break;
    case CT_KEY_ED25519:
        key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
        break;
    }
    if (key == NULL)
        tls_err_set(err, errlen, "key generation failed");
    return key;
}

int ct_key_acceptable(EVP_PKEY *key, char *err, size_t errlen)
{
    char group[64];
    size_t glen = 0;

    if (EVP_PKEY_is_a(key, "RSA") || EVP_PKEY_is_a(key, "RSA-PSS")) {
        if (EVP_PKEY_get_bits(key) < 2048) {
            snprintf(err, errlen, "RSA key of %d bits is too weak (at least 2048)",
                     EVP_PKEY_get_bits(key));
            return -1;
        }
        return 0;
    }
    if (EVP_PKEY_is_a(key, "ED25519") || EVP_PKEY_is_a(key, "ED448"))
        return 0;
    if (EVP_PKEY_is_a(key, "EC")) {
        if (!EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group,
                                            sizeof(group), &glen)) {
            tls_err_set(err, errlen, "EC key with explicit or unknown curve parameters");
            return -1;
        }
        if (strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0 ||
            strcmp(group, "secp384r1") == 0 || strcmp(group, "P-384") == 0 ||
            strcmp(group, "secp521r1") == 0 || strcmp(group, "P-521") == 0)
            return 0;
        snprintf(err, errlen, "EC key on curve %s is not accepted (P-256, P-384, P-521)", group);
        return -1;
    }
    snprintf(err, errlen, "%s keys are not accepted (RSA >= 2048, EC P-256/P-384/P-521, Ed25519)",
             EVP_PKEY_get0_type_name(key) ? EVP_PKEY_get0_type_name(key) : "unknown");
    return -1;
}
