/*
 * issue.h - writing a leaf certificate into the PKI (shared by `issue` and
 * `sign-csr`, which differ only in where the key comes from).
 */
#ifndef CT_ISSUE_H
#define CT_ISSUE_H

#include <stddef.h>
#include <time.h>
#include <openssl/types.h>

#include "opts.h"
#include "profile.h"
#include "store.h"

/* A freshly signed leaf and what goes with it. */
struct ct_leaf {
    enum ct_kind kind;
    const char *name;     /* validated with ct_name_check */
    X509 *cert;
    EVP_PKEY *key;        /* NULL for sign-csr: the key stays with its owner */
    const char *p12_pass; /* client certificates with a key: the .p12 password */
    const char *p12_alias; /* the .p12 friendly name (Java alias); NULL = name */
    time_t now;           /* time recorded for superseded entries; 0 = now */
};

/* A server's certificate + intermediate: servers/NAME.bundle.crt. */
#define CT_BUNDLE_STEM "bundle"
#define CT_BUNDLE_EXT CT_BUNDLE_STEM ".crt"

/*
 * The extensions (after NAME.) of every file ct_issue_stage may write or
 * remove for a leaf of kind, NULL-terminated: crt, pem, key, pk8, p12 for a
 * client; crt, bundle.crt, key for a server.
 */
const char *const *ct_issue_exts(enum ct_kind kind);

/*
 * Refuses (-1, err set) when NAME already has a certificate of this kind:
 * one of its files (ct_issue_exts) exists or the index lists a valid one;
 * unless force. A server NAME is refused even with force when its files
 * would overwrite another server's: server "NAME.bundle" (whose .crt is
 * NAME's bundle) exists, or NAME is "X.bundle" and server X exists (in the
 * index, any status, or by its files). Client names cannot meet that way:
 * their extensions hold no '.'.
 */
int ct_issue_check_free(const char *dir, struct ct_index *idx, enum ct_kind kind,
                        const char *name, int force, char *err, size_t errlen) CT_MUSTCHECK;

/*
 * The subjectAltNames of a server certificate NAME: name itself
 * (ct_san_add_name), then every --san value in extra (ct_san_parse),
 * appended to sans.
 */
int ct_issue_sans(const char *name, const struct ct_strlist *extra, struct ct_san_list *sans,
                  char *err, size_t errlen) CT_MUSTCHECK;

/*
 * Once the checks that need no disk are done: opens and locks the PKI in
 * dir with the key of kind's current intermediate, loads its index into
 * idx and refuses NAME when taken (ct_issue_check_free). The caller closes
 * pki and frees idx, also on failure.
 */
int ct_issue_open(struct ct_pki *pki, struct ct_index *idx, const char *dir, enum ct_kind kind,
                  const char *name, int force, char *err, size_t errlen) CT_MUSTCHECK;

/*
 * Certifies subject_key as leaf->name with the profile of leaf->kind,
 * signed by pki's current intermediate of that kind, for days, with sans
 * (server certificates; ignored for a client); O= is the intermediate's.
 * Sets leaf->cert (the caller frees it). *clamped as for ct_profile_make.
 */
int ct_issue_certify(const struct ct_pki *pki, struct ct_leaf *leaf, EVP_PKEY *subject_key,
                     int days, const struct ct_san_list *sans, int *clamped,
                     char *err, size_t errlen) CT_MUSTCHECK;

/*
 * Stages leaf with ct_issue_stage in a transaction of its own, commits it
 * and prints ct_issue_report.
 */
int ct_issue_commit(const struct ct_pki *pki, struct ct_index *idx, const struct ct_leaf *leaf,
                    int clamped, char *err, size_t errlen) CT_MUSTCHECK;

/*
 * Stages everything a new leaf changes, without committing:
 *  - clients/NAME.crt, clients/NAME.pem (cert + client intermediate) and,
 *    with a key, NAME.key (PEM PKCS#8, 0600), NAME.pk8 (DER PKCS#8, 0600),
 *    NAME.p12 (0600, AES-256-CBC + PBKDF2, HMAC-SHA256 MAC);
 *  - or servers/NAME.crt, servers/NAME.bundle.crt (cert + server
 *    intermediate) and, with a key, NAME.key (0600);
 *  - without a key, the removal of a previous NAME's key files, which would
 *    no longer match the certificate;
 *  - index.tsv with the new entry (issued by the current generation of the
 *    intermediate, which signs leaf->cert); earlier valid entries of NAME (a
 *    --force re-issue) become revoked with reason superseded, and then the
 *    CRLs of that kind are staged too (so pki needs the keys of every
 *    trusted generation of that intermediate).
 * *superseded (may be NULL) counts the entries revoked that way.
 */
int ct_issue_stage(struct ct_txn *t, const struct ct_pki *pki, struct ct_index *idx,
                   const struct ct_leaf *leaf, int *superseded, char *err, size_t errlen) CT_MUSTCHECK;

/*
 * Prints what was written for leaf (after the commit) on stdout: subject,
 * serial, validity and the files.
 */
void ct_issue_report(const char *dir, const struct ct_leaf *leaf, int superseded, int clamped);

/*
 * Reads a PKCS#12 password from the first line of path (without its line
 * ending) into a new string (*out, free with OPENSSL_clear_free-like care:
 * ct_issue_pass_free). An empty file is the empty password.
 */
int ct_issue_read_pass(const char *path, char **out, char *err, size_t errlen) CT_MUSTCHECK;

/* Wipes and frees a password from ct_issue_read_pass. Accepts NULL. */
void ct_issue_pass_free(char *pass);

#endif
