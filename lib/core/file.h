/* File plumbing shared by saving, datasets, images and TensorBoard: whole-file reads under a
 * cap, atomic replacement of a file, and mkdir -p. Errors are set with tfx__error; fn (may be
 * NULL) names the public function at the start of each message. */
#ifndef TFX_CORE_FILE_H
#define TFX_CORE_FILE_H

#include <stddef.h>

/* Read the whole file into a new buffer (*out, freed with tfx__free; non-NULL even for an empty
 * file). The buffer grows with the bytes actually read, so no size the file or the file system
 * reports decides how much memory is taken. Only regular files are read: the open never blocks
 * (a FIFO without a writer) and a FIFO, socket or device (/dev/zero) is refused at once.
 * TFX_EIO: cannot open or stat, a directory or another non-regular file, a read error;
 * TFX_EFORMAT: more than max_bytes; TFX_ENOMEM. *out is NULL and *len 0 on failure. */
int tfx__file_read(const char *fn, const char *path, size_t max_bytes, unsigned char **out, size_t *len);

/* Grow *buf (tfx__realloc) so that at least `need` bytes fit: the first time exactly `need`,
 * then doubling, never above `hard` bytes. -1: `need` passes `hard`; -2: out of memory (*buf
 * is kept). For readers whose buffers follow the bytes actually produced. */
int tfx__buf_grow(unsigned char **buf, size_t *cap, size_t need, size_t hard);

/* Replace path with n bytes atomically: a new temporary file next to it (with the permissions
 * of the file it replaces), every byte written, fsync, close, rename over path, then fsync of
 * the directory (best effort). On failure path is unchanged and the temporary file removed
 * (TFX_EIO, the message says so; TFX_ENOMEM). A symbolic link is followed to the file it ends
 * at, which is replaced (created, for a dangling link) and the link stays a link; a loop is
 * TFX_EIO. Temporary files are "<target>.tfx-tmp-<pid>-<8 hex>"; those of the same target whose
 * process no longer exists (an interrupted save) are removed first. */
int tfx__file_write_atomic(const char *fn, const char *path, const void *data, size_t n);

/* mkdir -p: create dir and each missing parent (mode 0777 before umask). An existing
 * directory is fine; an existing non-directory is TFX_EIO ("Not a directory"). */
int tfx__file_mkdirs(const char *fn, const char *dir);

/* Open path for reading if it is a regular file (blocking reads), with its stat in *st:
 * opened with O_NONBLOCK so a FIFO without a writer cannot hang the call, and anything but a
 * regular file (a directory, a FIFO, /dev/zero) refused with TFX_EIO naming the path. The
 * readers that need the descriptor itself (the dataset streams) use it; tfx__file_read too. */
struct stat;
int tfx__file_open_regular(const char *fn, const char *path, int *fd, struct stat *st);

/* "a FIFO", "a character device", ... for messages about a file of this st_mode. */
const char *tfx__file_kind(unsigned mode);



#endif
