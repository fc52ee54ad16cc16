/* Shared helpers of the lib/data tests: a temporary directory, file writing, generated IDX and
 * CIFAR-10 buffers, gzip. */
#ifndef TFX_TEST_DATA_HELPERS_H
#define TFX_TEST_DATA_HELPERS_H

#include <stddef.h>
#include <stdint.h>

/* Create / remove (recursively) a fresh temporary directory; path() joins a name to it. */
int th_tmpdir_create(void **state);
int th_tmpdir_remove(void **state);
const char *th_path(const char *name);
void th_write(const char *name, const void *buf, size_t len);

/* Byte of IDX sample i at (r, c), and its label: fixed patterns the tests check against. */
unsigned char th_idx_byte(size_t i, int r, int c);
int th_idx_label(size_t i);
/* IDX images (n x h x w) and labels (n); freed with free(). */
unsigned char *th_idx_images(uint32_t n, uint32_t h, uint32_t w, size_t *len);
unsigned char *th_idx_labels(uint32_t n, size_t *len);
/* Channel c (0 R, 1 G, 2 B) of CIFAR record i at plane offset p, and the record's label. */
unsigned char th_cifar_byte(size_t i, int c, int p);
int th_cifar_label(size_t i);
/* n records, record i is the global record first + i. */
unsigned char *th_cifar(size_t first, size_t n, size_t *len);

/* gzip-compress (one member); freed with free(). */
unsigned char *th_gzip(const void *in, size_t len, size_t *out_len);

/* 1 under valgrind (RUNNING_VALGRIND set): shrink the work. */
int th_valgrind(void);

/* assert rc == code and that the thread's message contains each non-NULL substring. */
void th_expect(int rc, int code, const char *sub1, const char *sub2, const char *file, int line);
#define EXPECT(rc, code, s1, s2) th_expect((rc), (code), (s1), (s2), __FILE__, __LINE__)

#endif
