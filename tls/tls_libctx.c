#include "tls_libctx.h"

#include <string.h>

#include <openssl/core_dispatch.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/provider.h>

/*
 * Two contexts: `inner` holds the default provider, `outer` (the one handed
 * out) holds "mtlsgate-tls", a provider that answers every query with the
 * default provider's own algorithm tables, the decoders' filtered. Its
 * provider context is the default provider's, so the implementations it
 * lends run exactly as they do in the default provider. The default
 * provider cannot be loaded into `outer` itself: its 42 decoders would be
 * found there too.
 */
#define FILTER_NAME "mtlsgate-tls"
#define MAX_DECODERS 16

/* Key types a TLS peer can sign with (DSA: TLS 1.2 only); the first name
 * of each algorithm. */
static const char *const signing_types[] = {"RSA", "RSA-PSS", "EC", "ED25519", "ED448", "DSA"};

static CRYPTO_ONCE once = CRYPTO_ONCE_STATIC_INIT;
static OSSL_LIB_CTX *inner, *outer;
static OSSL_PROVIDER *deflt, *filter;
static OSSL_ALGORITHM decoders[MAX_DECODERS + 1]; /* NULL-terminated */
static const char *fallback;                      /* why outer is NULL */

/* The first name in an algorithm's "NAME:ALIAS:OID" list equals name. */
static int first_name_is(const char *names, const char *name)
{
    size_t n = strlen(name);

    return strncmp(names, name, n) == 0 && (names[n] == '\0' || names[n] == ':');
}

static int is_kept_decoder(const OSSL_ALGORITHM *a)
{
    size_t i;

    if (a->property_definition == NULL ||
        strstr(a->property_definition, "input=der") == NULL ||
        strstr(a->property_definition, "structure=SubjectPublicKeyInfo") == NULL)
        return 0;
    for (i = 0; i < sizeof(signing_types) / sizeof(signing_types[0]); i++)
        if (first_name_is(a->algorithm_names, signing_types[i]))
            return 1;
    return 0;
}

/* Copies the kept decoders into `decoders`; -1 when none (nothing to gain). */
static int pick_decoders(void)
{
    const OSSL_ALGORITHM *all, *a;
    int no_cache = 0;
    size_t n = 0;

    all = OSSL_PROVIDER_query_operation(deflt, OSSL_OP_DECODER, &no_cache);
    if (all == NULL)
        return -1;
    for (a = all; a->algorithm_names != NULL && n < MAX_DECODERS; a++)
        if (is_kept_decoder(a))
            decoders[n++] = *a;
    OSSL_PROVIDER_unquery_operation(deflt, OSSL_OP_DECODER, all);
    memset(&decoders[n], 0, sizeof(decoders[n]));
    return n > 0 ? 0 : -1;
}

static const OSSL_ALGORITHM *filter_query(void *provctx, int operation_id, int *no_cache)
{
    (void)provctx;
    if (operation_id == OSSL_OP_DECODER) {
        *no_cache = 0;
        return decoders;
    }
    return OSSL_PROVIDER_query_operation(deflt, operation_id, no_cache);
}

static void filter_unquery(void *provctx, int operation_id, const OSSL_ALGORITHM *algs)
{
    (void)provctx;
    if (algs != decoders)
        OSSL_PROVIDER_unquery_operation(deflt, operation_id, algs);
}

static const OSSL_PARAM *filter_gettable_params(void *provctx)
{
    (void)provctx;
    return OSSL_PROVIDER_gettable_params(deflt);
}

static int filter_get_params(void *provctx, OSSL_PARAM params[])
{
    (void)provctx;
    return OSSL_PROVIDER_get_params(deflt, params);
}

/* "TLS-GROUP": libssl learns the groups it may offer from here. */
static int filter_get_capabilities(void *provctx, const char *capability, OSSL_CALLBACK *cb,
                                   void *arg)
{
    (void)provctx;
    return OSSL_PROVIDER_get_capabilities(deflt, capability, cb, arg);
}

static const OSSL_DISPATCH filter_dispatch[] = {
    {OSSL_FUNC_PROVIDER_GETTABLE_PARAMS, (void (*)(void))filter_gettable_params},
    {OSSL_FUNC_PROVIDER_GET_PARAMS, (void (*)(void))filter_get_params},
    {OSSL_FUNC_PROVIDER_QUERY_OPERATION, (void (*)(void))filter_query},
    {OSSL_FUNC_PROVIDER_UNQUERY_OPERATION, (void (*)(void))filter_unquery},
    {OSSL_FUNC_PROVIDER_GET_CAPABILITIES, (void (*)(void))filter_get_capabilities},
    {0, NULL},
};

static int filter_init(const OSSL_CORE_HANDLE *handle, const OSSL_DISPATCH *in,
                       const OSSL_DISPATCH **out, void **provctx)
{
    (void)handle;
    (void)in;
    *provctx = OSSL_PROVIDER_get0_provider_ctx(deflt);
    *out = filter_dispatch;
    return *provctx != NULL;
}

static void release(void)
{
    OSSL_PROVIDER_unload(filter);
    OSSL_LIB_CTX_free(outer);
    OSSL_PROVIDER_unload(deflt);
    OSSL_LIB_CTX_free(inner);
    filter = NULL;
    outer = NULL;
    deflt = NULL;
    inner = NULL;
}

static int count_others(OSSL_PROVIDER *prov, void *arg)
{
    if (strcmp(OSSL_PROVIDER_get0_name(prov), "default") != 0)
        ++*(int *)arg;
    return 1;
}

/* The default context runs on the default provider alone, not in FIPS mode:
 * what `inner` reproduces. OSSL_PROVIDER_do_all() first: it loads OpenSSL's
 * configuration into the default context if nothing did yet. */
static int default_is_plain(void)
{
    int others = 0;

    return OSSL_PROVIDER_do_all(NULL, count_others, &others) && others == 0 &&
           !EVP_default_properties_is_fips_enabled(NULL);
}

static void make(void)
{
    ERR_set_mark();
    if (!default_is_plain()) {
        fallback = "OpenSSL's configuration loads other providers than \"default\" or "
                   "enables FIPS mode";
    } else if ((inner = OSSL_LIB_CTX_new()) == NULL ||
               (deflt = OSSL_PROVIDER_load(inner, "default")) == NULL ||
               pick_decoders() != 0 || (outer = OSSL_LIB_CTX_new()) == NULL ||
               !OSSL_PROVIDER_add_builtin(outer, FILTER_NAME, filter_init) ||
               (filter = OSSL_PROVIDER_load(outer, FILTER_NAME)) == NULL) {
        release();
        fallback = "the library context could not be made (out of memory)";
    }
    ERR_pop_to_mark();
}

OSSL_LIB_CTX *tls_libctx(void)
{
    if (!CRYPTO_THREAD_run_once(&once, make))
        return NULL;
    return outer;
}

const char *tls_libctx_fallback(void)
{
    if (!CRYPTO_THREAD_run_once(&once, make))
        return "the library context could not be made (CRYPTO_THREAD_run_once failed)";
    return fallback;
}

void tls_libctx_free(void)
{
    release();
}

/* The calling thread's default before tls_libctx_ticket_begin(), while a
 * ticket is being parsed; NULL otherwise. */
static _Thread_local OSSL_LIB_CTX *ticket_prev;

void tls_libctx_ticket_begin(void)
{
    OSSL_LIB_CTX *c = tls_libctx();

    if (c == NULL || ticket_prev != NULL)
        return;
    /* the previous default: the thread's own, or the global one (which,
       set back, clears the thread's own) */
    ticket_prev = OSSL_LIB_CTX_set0_default(c);
}

void tls_libctx_ticket_end(void)
{
    if (ticket_prev == NULL)
        return;
    (void)OSSL_LIB_CTX_set0_default(ticket_prev);
    ticket_prev = NULL;
}
