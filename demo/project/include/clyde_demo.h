/* clyde_demo: the small library behind the clyde-cache demo program. */
#ifndef CLYDE_DEMO_H
#define CLYDE_DEMO_H

#include <stddef.h>
#include <stdint.h>

/* sha256.c */
void cd_sha256(const unsigned char *data, size_t len, unsigned char out[32]);
void cd_hex(const unsigned char *data, size_t len, char *out);

/* crc32.c */
uint32_t cd_crc32(const unsigned char *data, size_t len);

/* base64.c: out must hold 4 * ((len + 2) / 3) + 1 bytes. */
size_t cd_base64(const unsigned char *data, size_t len, char *out);

/* matrix.c: a deterministic checksum of repeated n x n integer matrix products. */
uint64_t cd_matrix_checksum(unsigned n, unsigned rounds);

/* words.c: the most frequent words of a text, "word:count" joined by spaces. */
size_t cd_top_words(const char *text, unsigned top, char *out, size_t out_len);

/* version.c */
const char *cd_version(void);
unsigned cd_units(void);

#endif
