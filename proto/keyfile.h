/*
 * CURVE key files, as written by `relais keygen NAME`:
 *   NAME.pub  (mode 0644)  the public key
 *   NAME.key  (mode 0600)  the secret key
 * Each holds comment lines ("# " then text: '#' alone is a Z85 digit) and
 * one line with the 40 characters of the Z85-encoded key.
 */
#ifndef RELAIS_KEYFILE_H
#define RELAIS_KEYFILE_H

#include <stddef.h>

/* Write a fresh key pair to base.pub and base.key.  0, or -1 with errbuf. */
int keyfile_generate(const char *base, char *errbuf, size_t errlen);

/* Read the Z85 key of a .pub or .key file into out (NUL-terminated). */
int keyfile_read(const char *path, char out[41], char *errbuf, size_t errlen);

/* The key's fingerprint for logs: first 8 bytes of its BLAKE2b hash, hex. */
void keyfile_fingerprint(const unsigned char key[32], char out[17]);

#endif
