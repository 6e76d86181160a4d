/*
 * store.h - the PKI directory on disk: names, layout, atomic writes, the index.
 *
 * Layout under the PKI directory (default ./pki):
 *   root.crt client-ca.crt server-ca.crt client-chain.crt server-chain.crt
 *   client-ca.crl server-ca.crl root.crl index.tsv cas.tsv
 *   private/ (0700): root.key client-ca.key server-ca.key (0600)
 *   clients/NAME.{crt,key,pem,pk8,p12}   servers/NAME.{crt,key,bundle.crt}
 *   cas/KIND-ca.N.crt, private/KIND-ca.N.key: earlier generations of an
 *   intermediate (see "generations" below)
 *
 * Generations: each intermediate (client, server) has a generation number,
 * 1 from init. `rollover` makes generation N+1 and moves generation N's
 * certificate to cas/KIND-ca.N.crt and its key to private/KIND-ca.N.key;
 * KIND-ca.crt and private/KIND-ca.key are always the current generation
 * (what `issue` signs with). A previous generation stays trusted (in
 * KIND-chain.crt, with its own CRL in KIND-ca.crl) until `retire` marks it
 * retired; its files are kept. cas.tsv records every generation; a PKI
 * without cas.tsv (made before generations existed) is generation 1 of both.
 *
 * Every write goes through a transaction (struct ct_txn): each output is first
 * written in full to a temporary file in its target directory and fsync'ed;
 * only when every output of a command is staged are they renamed into place
 * and their directories fsync'ed. A command that fails before the commit
 * leaves every file as it was, and no temporary file behind; one whose
 * commit fails halfway (a rename refused) puts back what it had already
 * changed. The indexes (index.tsv, cas.tsv) are committed last, so that
 * even if putting back fails they still describe the old state and the
 * same command can be run again.
 *
 * All fallible calls return 0 / -1 (or NULL) and, on failure, put one line
 * naming the file and the cause into err.
 */
#ifndef CT_STORE_H
#define CT_STORE_H

#include <stddef.h>
#include <sys/types.h>
#include <time.h>
#include <openssl/types.h>

#define CT_MUSTCHECK __attribute__((warn_unused_result))

#define CT_NAME_MAX 64      /* longest certificate name (= CN, = file name stem) */
#define CT_SERIAL_HEX_MAX 40 /* 20-byte serials at most (RFC 5280) */
#define CT_PATH_MAX 4096
#define CT_ERR_MAX 512       /* size of the err buffers used across certs-tool */
#define CT_GEN_MAX 999999    /* highest generation number of an intermediate */

/* ---- names ------------------------------------------------------------ */

/*
 * Checks that name can be both a file name under clients/ or servers/ and a
 * clean CN: 1 to CT_NAME_MAX characters from [A-Za-z0-9._@-], not starting
 * with '.' or '-', without "..". On failure err says why, quoting the name
 * with control characters escaped (e.g. "name 'a/b' contains '/'").
 */
int ct_name_check(const char *name, char *err, size_t errlen) CT_MUSTCHECK;

/*
 * Copies s into buf for an error message: control and non-ASCII bytes as
 * \n, \t or \xNN, cut with "..." when too long. Returns buf (always
 * NUL-terminated when len > 0).
 */
const char *ct_quote(const char *s, char *buf, size_t len);

/*
 * Appends item to the ", "-separated list in buf (len bytes, NUL-terminated,
 * *used bytes long: start with buf[0] = '\0', *used = 0), for messages.
 * Once buf is full (*used >= len) the list is cut and further items are
 * dropped.
 */
void ct_list_append(char *buf, size_t len, size_t *used, const char *item);

/* ---- paths --------------------------------------------------------------- */

enum ct_kind { CT_KIND_CLIENT = 0, CT_KIND_SERVER = 1 };

/* "client" / "server" */
const char *ct_kind_name(enum ct_kind kind);

/* The inverse: "client" / "server" to *kind; 0, or -1 for anything else. */
int ct_kind_parse(const char *s, enum ct_kind *kind) CT_MUSTCHECK;

/*
 * snprintf(out, CT_PATH_MAX, "%s/%s", dir, rel) with a check that the result
 * fits. Returns 0, or -1 with err set.
 */
int ct_path(char out[CT_PATH_MAX], const char *dir, const char *rel,
            char *err, size_t errlen) CT_MUSTCHECK;

/* Same, for "DIR/clients/NAME.ext" or "DIR/servers/NAME.ext" by kind. */
int ct_leaf_path(char out[CT_PATH_MAX], const char *dir, enum ct_kind kind,
                 const char *name, const char *ext, char *err, size_t errlen) CT_MUSTCHECK;

/* 1 when path exists (as anything), 0 when it does not. */
int ct_exists(const char *path);

/* ---- transactions: all-or-nothing writes ---------------------------------- */

struct ct_txn;

/* A new empty transaction, or NULL when out of memory. */
struct ct_txn *ct_txn_new(void);

/*
 * Stages path with the given contents: creates a temporary file in the same
 * directory (O_EXCL, mode 0600), writes data, sets mode, fsyncs. The target
 * itself is not touched until ct_txn_commit. Staging the same path twice is
 * an error.
 */
int ct_txn_put(struct ct_txn *t, const char *path, const void *data, size_t len,
               mode_t mode, char *err, size_t errlen) CT_MUSTCHECK;

/* Stages the removal of path at commit (a missing path is fine then). */
int ct_txn_remove(struct ct_txn *t, const char *path, char *err, size_t errlen) CT_MUSTCHECK;

/*
 * Stages a directory: created now with mode (if missing) and removed again
 * by ct_txn_free when the transaction is never committed and the directory
 * is still empty. An existing directory gets its mode set at commit.
 */
int ct_txn_mkdir(struct ct_txn *t, const char *path, mode_t mode,
                 char *err, size_t errlen) CT_MUSTCHECK;

/*
 * Makes the staged changes visible: first checks that no target is a
 * directory (so that a rename cannot fail halfway for that reason) and
 * keeps each existing target aside (a hard link, else a copy, as a hidden
 * ".NAME.old-XXXXXX" beside it; readers still see the target). Then renames
 * every temporary file over its target and performs the staged removals,
 * in staging order except that the files staged by ct_index_stage and
 * ct_gens_stage come last; then drops the kept copies and fsyncs each
 * directory touched. When a rename or removal fails, the changes already
 * made are undone (the kept copies go back) and err says so: "...; nothing
 * was changed", or which file could not be put back (its old contents then
 * stay in its hidden copy).
 */
int ct_txn_commit(struct ct_txn *t, char *err, size_t errlen) CT_MUSTCHECK;

/*
 * Frees t. When t was not committed, deletes every temporary file and every
 * directory it created (if still empty). Accepts NULL.
 */
void ct_txn_free(struct ct_txn *t);

/* ---- reading small files ----------------------------------------------- */

/*
 * Reads a whole regular file of at most max bytes into a new NUL-terminated
 * buffer (*out, free()), length in *len (may be NULL).
 */
int ct_read_file(const char *path, size_t max, char **out, size_t *len,
                 char *err, size_t errlen) CT_MUSTCHECK;

/* ---- serialisation helpers ---------------------------------------------- */

/*
 * Copies a memory BIO's contents into a new NUL-terminated buffer (*out,
 * free()), its length in *len. On failure err says "WHAT: out of memory".
 */
int ct_bio_take(BIO *bio, char **out, size_t *len, const char *what,
                char *err, size_t errlen) CT_MUSTCHECK;

/*
 * Appends the PEM of each certificate in certs (in order) to a new buffer
 * (*out, free()). Also used with one certificate.
 */
int ct_pem_certs(X509 *const *certs, size_t n, char **out, size_t *len,
                 char *err, size_t errlen) CT_MUSTCHECK;

/* The PEM (PKCS#8, unencrypted) of a private key into a new buffer. */
int ct_pem_key(EVP_PKEY *key, char **out, size_t *len, char *err, size_t errlen) CT_MUSTCHECK;

/* The PEM of a CRL into a new buffer. */
int ct_pem_crl(X509_CRL *crl, char **out, size_t *len, char *err, size_t errlen) CT_MUSTCHECK;

/* Stages DIR/rel as the PEM of certs (mode 0644). */
int ct_stage_certs(struct ct_txn *t, const char *dir, const char *rel, X509 *const *certs,
                   size_t n, char *err, size_t errlen) CT_MUSTCHECK;

/* Stages DIR/rel as the PEM PKCS#8 of key, mode 0600; the buffer is wiped. */
int ct_stage_key(struct ct_txn *t, const char *dir, const char *rel, EVP_PKEY *key,
                 char *err, size_t errlen) CT_MUSTCHECK;

/* ---- the PKI directory --------------------------------------------------- */

/* One certificate authority of the PKI: its certificate and (maybe) its key. */
struct ct_ca {
    X509 *cert;
    EVP_PKEY *key; /* NULL unless asked for */
};

enum ct_gen_status {
    CT_GEN_CURRENT = 0,  /* KIND-ca.crt: issues new certificates */
    CT_GEN_PREVIOUS = 1, /* still trusted: in KIND-chain.crt and KIND-ca.crl */
    CT_GEN_RETIRED = 2,  /* no longer trusted; files kept for audit */
};

/* "current", "previous", "retired" */
const char *ct_gen_status_name(enum ct_gen_status s);

/* One generation of an intermediate, as recorded in cas.tsv. */
struct ct_gen {
    enum ct_kind kind;
    int gen;                            /* 1, 2, ... (unique per kind) */
    char serial[CT_SERIAL_HEX_MAX + 1];
    time_t not_after;
    enum ct_gen_status status;
    time_t retired_at;                  /* 0 unless retired */
    time_t revoked_at;                  /* 0 unless revoked (listed in root.crl) */
    int reason;                         /* CRL_REASON_* when revoked, else -1 */
    /*
     * Loaded by ct_pki_open for every generation but the current one (whose
     * certificate and key are struct ct_pki's client_ca / server_ca):
     * the certificate (NULL for a retired generation whose file is gone)
     * and, for a previous generation when its kind's key was asked for,
     * the key.
     */
    struct ct_ca ca;
};

/* The generation registry (cas.tsv). */
struct ct_gens {
    struct ct_gen *v;
    size_t n, cap;
};

/*
 * Parses cas.tsv text: a '#' header, then one tab-separated line per
 * generation: kind, generation, serial, not-after, status, retired-at,
 * revoked-at, reason ("-" when empty). Checks that each kind has exactly
 * one current generation, unique generation numbers, that a revoked
 * generation is retired and a current one is neither. path is for messages.
 */
int ct_gens_parse(const char *text, size_t len, const char *path, struct ct_gens *gens,
                  char *err, size_t errlen) CT_MUSTCHECK;

/* Formats gens as cas.tsv text into a new buffer (*out, free()). */
int ct_gens_format(const struct ct_gens *gens, char **out, size_t *len,
                   char *err, size_t errlen) CT_MUSTCHECK;

/* Appends a copy of g (its ca is moved: the caller's copy must not be freed). */
int ct_gens_add(struct ct_gens *gens, const struct ct_gen *g, char *err, size_t errlen) CT_MUSTCHECK;

/* The entry of kind with status CT_GEN_CURRENT, or NULL. */
struct ct_gen *ct_gens_current(struct ct_gens *gens, enum ct_kind kind);

/* The entry of kind and generation number gen, or NULL. */
struct ct_gen *ct_gens_find(struct ct_gens *gens, enum ct_kind kind, int gen);

/* Frees the entries and the certificates and keys they hold. Accepts NULL. */
void ct_gens_free(struct ct_gens *gens);

/*
 * Appends generation gen of kind as the current one, described by cert
 * (serial, notAfter; the entry does not take cert). The caller makes sure
 * no other entry of kind is current.
 */
int ct_gens_add_current(struct ct_gens *gens, enum ct_kind kind, int gen, X509 *cert,
                        char *err, size_t errlen) CT_MUSTCHECK;

/* Stages DIR/cas.tsv from gens. */
int ct_gens_stage(struct ct_txn *t, const char *dir, const struct ct_gens *gens,
                  char *err, size_t errlen) CT_MUSTCHECK;

/*
 * 1 when name is an earlier generation's file name, "client-ca.N" or
 * "server-ca.N" followed by ext (".crt", ".key"), with *kind and *gen set;
 * else 0.
 */
int ct_gen_file_name(const char *name, const char *ext, int *kind, int *gen);

/* What ct_pki_open loaded; free with ct_pki_close. */
struct ct_pki {
    char dir[CT_PATH_MAX];
    int lock_fd;           /* the directory, flock'ed (exclusive) while open */
    int locked;            /* lock_fd is open */
    struct ct_ca root;
    struct ct_ca client_ca; /* the current client generation */
    struct ct_ca server_ca; /* the current server generation */
    /*
     * Every generation of both intermediates (cas.tsv, or generation 1 of
     * each when there is none). Empty in a struct built by hand (tests):
     * then client_ca and server_ca are generation 1 and the only ones.
     */
    struct ct_gens gens;
};

/* Which private keys ct_pki_open loads besides the certificates. */
#define CT_PKI_KEY_ROOT 0x1
#define CT_PKI_KEY_CLIENT 0x2
#define CT_PKI_KEY_SERVER 0x4

/*
 * Opens an existing PKI directory: takes an exclusive lock on it (so two
 * certs-tool runs never interleave), loads root.crt, client-ca.crt,
 * server-ca.crt and the private keys in keys, and checks each key matches
 * its certificate. Then loads cas.tsv (when present) and the certificate of
 * every other generation from cas/ (each must be issued by the root and
 * carry the serial cas.tsv gives it; the current entry's serial must be
 * that of KIND-ca.crt), and with CT_PKI_KEY_CLIENT / CT_PKI_KEY_SERVER also
 * the key of every previous (still trusted) generation of that kind, which
 * signs its CRL. A missing directory is "DIR: no PKI directory (run
 * certs-tool init, or pass --dir)". On failure *pki is left closed.
 */
int ct_pki_open(struct ct_pki *pki, const char *dir, unsigned keys,
                char *err, size_t errlen) CT_MUSTCHECK;

/* Frees what ct_pki_open loaded and drops the lock. Accepts a zeroed pki. */
void ct_pki_close(struct ct_pki *pki);

/* The current generation number of kind's intermediate (1 without a registry). */
int ct_pki_current_gen(const struct ct_pki *pki, enum ct_kind kind);

/* One trusted (current or previous) intermediate. */
struct ct_live_ca {
    const struct ct_ca *ca; /* pki's current one, or a previous generation's */
    int gen;
    int current;            /* 1 for the current generation */
};

#define CT_LIVE_MAX 16 /* trusted generations of one kind at most (rollover refuses more) */

/*
 * Fills out (room for max) with the trusted intermediates of kind: the
 * current generation first, then the previous ones, newest first. Returns
 * how many (at least 1). Previous generations whose certificate was not
 * loaded cannot occur (ct_pki_open fails then).
 */
size_t ct_pki_live(const struct ct_pki *pki, enum ct_kind kind, struct ct_live_ca *out, size_t max);

#define CT_REL_MAX 64

/*
 * Where an earlier generation's files live, relative to the PKI directory:
 * "cas/client-ca.2.crt" and "private/client-ca.2.key". Returns buf.
 */
const char *ct_gen_cert_rel(char buf[CT_REL_MAX], enum ct_kind kind, int gen);
const char *ct_gen_key_rel(char buf[CT_REL_MAX], enum ct_kind kind, int gen);

/* "client-chain.crt" / "server-chain.crt" */
const char *ct_chain_file(enum ct_kind kind);

/*
 * Stages KIND-chain.crt: every trusted intermediate of kind (as
 * ct_pki_live orders them) followed by the root.
 */
int ct_chain_stage(struct ct_txn *t, const struct ct_pki *pki, enum ct_kind kind,
                   char *err, size_t errlen) CT_MUSTCHECK;

/*
 * Opens (creating it with mode 0755 when missing) and locks a directory for
 * init. *created is set to 1 when this call created it. Returns the locked
 * fd or -1.
 */
int ct_dir_lock(const char *dir, int create, int *created, char *err, size_t errlen) CT_MUSTCHECK;

/* ---- the index (index.tsv) ------------------------------------------------ */

enum ct_status { CT_STATUS_VALID = 0, CT_STATUS_REVOKED = 1 };

/* One certificate issued by this PKI. */
struct ct_index_entry {
    char serial[CT_SERIAL_HEX_MAX + 1]; /* uppercase hex, as tls_x509_serial_hex */
    char name[CT_NAME_MAX + 1];
    enum ct_kind kind;
    time_t not_after;
    enum ct_status status;
    time_t revoked_at;  /* 0 while valid */
    int reason;         /* CRL reason code (CRL_REASON_*); -1 while valid */
    int ca_gen;         /* generation of the intermediate that issued it (0 = 1) */
};

struct ct_index {
    struct ct_index_entry *v;
    size_t n, cap;
};

/*
 * Parses index text (see ct_index_format for the format). path is only used
 * in error messages ("pki/index.tsv:3: bad serial 'xyz'"). On success *idx
 * holds the entries (free with ct_index_free); on failure it is empty.
 */
int ct_index_parse(const char *text, size_t len, const char *path,
                   struct ct_index *idx, char *err, size_t errlen) CT_MUSTCHECK;

/* Reads and parses DIR/index.tsv. */
int ct_index_load(const char *dir, struct ct_index *idx, char *err, size_t errlen) CT_MUSTCHECK;

/* Stages DIR/index.tsv from idx (mode 0644). */
int ct_index_stage(struct ct_txn *t, const char *dir, const struct ct_index *idx,
                   char *err, size_t errlen) CT_MUSTCHECK;

/*
 * Formats idx as text: a '#' header line, then one tab-separated line per
 * entry: serial, name, kind, not-after, status, revoked-at, reason, ca-gen
 * (the issuing intermediate's generation), with times as
 * "YYYY-MM-DDTHH:MM:SSZ" and "-" for an empty field. The parser also takes
 * lines without ca-gen (index files from before generations): generation 1.
 * *out is a new buffer (free()).
 */
int ct_index_format(const struct ct_index *idx, char **out, size_t *len,
                    char *err, size_t errlen) CT_MUSTCHECK;

/* Appends a copy of e. */
int ct_index_add(struct ct_index *idx, const struct ct_index_entry *e,
                 char *err, size_t errlen) CT_MUSTCHECK;

/*
 * The newest (last added) entry with this name and kind that is still
 * valid, or NULL.
 */
struct ct_index_entry *ct_index_find_valid(struct ct_index *idx, const char *name,
                                           enum ct_kind kind);

/* Frees the entries and empties idx. Accepts an empty or zeroed index. */
void ct_index_free(struct ct_index *idx);

/* ---- revocation reasons ---------------------------------------------------- */

/*
 * RFC 5280 reason name ("keyCompromise", ...) to its CRL_REASON_* code, or
 * -1 when unknown. certificateHold and removeFromCRL are not offered.
 */
int ct_reason_code(const char *name);

/*
 * ct_reason_code for a command-line value: 0 with *code, or -1 with err
 * "unknown reason 'NAME' (ct_reason_list())".
 */
int ct_reason_parse(const char *name, int *code, char *err, size_t errlen) CT_MUSTCHECK;

/* Code to name, or NULL for an unknown code. */
const char *ct_reason_name(int code);

/* The accepted names, comma-separated, for help and error messages. */
const char *ct_reason_list(void);

#endif
