// OpenSSL's libcrypto (Debian: libssl-dev), for the SHA-256 that keys the OpenCL program cache.
#ifndef KILN_COPENSSL_SHIM_H
#define KILN_COPENSSL_SHIM_H
#include <openssl/evp.h>
#endif
