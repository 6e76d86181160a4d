/*
 * keygen.h - the key types certs-tool generates.
 *
 * ec-p256 (default), ec-p384, rsa-2048, rsa-3072, rsa-4096, ed25519; all
 * through EVP_PKEY_Q_keygen.
 */
#ifndef CT_KEYGEN_H
#define CT_KEYGEN_H

#include <stddef.h>
#include <openssl/types.h>

#include "store.h"

#define CT_KEY_TYPE_DEFAULT "ec-p256"

enum ct_key_type {
    CT_KEY_EC_P256,
    CT_KEY_EC_P384,
    CT_KEY_RSA_2048,
    CT_KEY_RSA_3072,
    CT_KEY_RSA_4096,
    CT_KEY_ED25519,
};

/*
 * Parses a key type name. Returns 0, or -1 with err like
 * "unknown key type 'dsa' (ec-p256, ec-p384, rsa-2048, rsa-3072, rsa-4096, ed25519)".
 */
int ct_key_type_parse(const char *name, enum ct_key_type *out, char *err, size_t errlen) CT_MUSTCHECK;

/* The accepted names, comma-separated (for help texts). */
const char *ct_key_type_list(void);

/* The name of key type t ("ec-p256", ...). */
const char *ct_key_type_name(enum ct_key_type t);

/*
 * The key type of an existing key (e.g. the current intermediate's, which a
 * rollover keeps by default). Returns 0, or -1 with err when the key is not
 * one of the types certs-tool generates.
 */
int ct_key_type_of(EVP_PKEY *key, enum ct_key_type *out, char *err, size_t errlen) CT_MUSTCHECK;

/* Generates a new key of type t; NULL with err set on failure. Caller frees. */
EVP_PKEY *ct_keygen(enum ct_key_type t, char *err, size_t errlen) CT_MUSTCHECK;

/*
 * Checks that a public key (from a CSR) is one certs-tool is willing to
 * certify: RSA of at least 2048 bits, EC on P-256, P-384 or P-521, Ed25519
 * or Ed448. Returns 0, or -1 with err saying what the key is.
 */
int ct_key_acceptable(EVP_PKEY *key, char *err, size_t errlen) CT_MUSTCHECK;

#endif
