/* pgm.h: reading and writing 8-bit PGM images (P5 binary, P2 ASCII) with bounded sizes. */
#ifndef IMAGE_CORNERS_PGM_H
#define IMAGE_CORNERS_PGM_H

#include <stddef.h>
#include <stdint.h>

/* the largest width and height accepted; larger images are refused */
#define PGM_MAX_SIDE 8192

/* what pgm_read returns */
enum {
    PGM_OK = 0,
    PGM_ERR_OPEN,      /* the file cannot be opened or read */
    PGM_ERR_MALFORMED, /* not a PGM this program reads */
    PGM_ERR_TOO_LARGE, /* wider or taller than PGM_MAX_SIDE */
    PGM_ERR_NOMEM      /* out of memory */
};

typedef struct {
    int width;
    int height;
    unsigned char *pixels; /* width * height bytes, row by row, 0..255 */
} pgm_image;

/* Reads PATH into IMG (pixels rescaled to 0..255 when maxval < 255). On failure returns one of
 * the PGM_ERR_* codes, leaves IMG empty and writes a one-line reason into ERR. */
int pgm_read(const char *path, pgm_image *img, char *err, size_t errlen);

/* Writes IMG to PATH as a binary P5 file (maxval 255) and folds every byte written into the
 * 64-bit FNV-1a hash *HASH. Returns 0, or -1 with a reason in ERR. */
int pgm_write(const char *path, const pgm_image *img, uint64_t *hash, char *err, size_t errlen);

void pgm_free(pgm_image *img);

/* 64-bit FNV-1a: the offset basis, and one step over N bytes */
#define FNV1A64_INIT UINT64_C(0xcbf29ce484222325)
uint64_t fnv1a64(uint64_t hash, const unsigned char *data, size_t n);

#endif
