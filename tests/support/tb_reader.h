/* Reading event files back (tests/support/tb_reader.c, the tfx_testing archive: the library
 * writes event files and never reads them). */
#ifndef TFX_TESTS_SUPPORT_TB_READER_H
#define TFX_TESTS_SUPPORT_TB_READER_H

#include "tensorboard/tensorboard_internal.h"

typedef struct tfx__tb_event {
    int has_wall_time;
    double wall_time;
    int64_t step;
    const char *file_version; /* points into the payload, not NUL-terminated; NULL if absent */
    size_t file_version_len;
    int has_summary;
    size_t n_values;          /* values in the summary; `value` describes the first */
    tfx__tb_value value;      /* pointers into the payload */
} tfx__tb_event;

/* Decode one serialized Event (unknown fields skipped). TFX_EFORMAT on malformed input. Besides the
 * legacy forms it reads TF2 float scalars (tensor{DT_FLOAT, rank 0}) as TFX__TB_TENSOR_FLOAT. */
int tfx__tb_event_decode(const uint8_t *p, size_t n, tfx__tb_event *ev);

/* Walk the TFRecords of data[0..n), checking every length and both CRCs. fn (may be NULL) sees
 * each whole record's payload; a non-zero return stops the walk and is returned.
 * *count = whole valid records, *end = offset just after the last one.
 * Returns TFX_OK when the records end exactly at n; TFX_EFORMAT (message with the offset)
 * when a CRC does not match or the data ends inside a record; *truncated (may be NULL) is
 * 1 in the second case, i.e. what a reader sees of a file that is still being written. */
int tfx__tfrecord_walk(const uint8_t *data, size_t n,
                       int (*fn)(void *user, const uint8_t *payload, size_t len), void *user,
                       size_t *count, size_t *end, int *truncated);

/* Read a whole event file: *buf (free with tfx__free) holds the file, *events (tfx__free)
 * the decoded whole records, pointing into *buf. A truncated tail is ignored (as TensorBoard
 * does); a CRC mismatch or an undecodable payload is TFX_EFORMAT. */
int tfx__tb_read_file(const char *path, uint8_t **buf, size_t *size, tfx__tb_event **events,
                      size_t *n_events);

#endif
