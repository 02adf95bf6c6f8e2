/* pgm.c: reading and writing 8-bit PGM images (P5 binary, P2 ASCII) with bounded sizes.
 *
 * The header is "P5" or "P2", then width, height and maxval as decimal numbers separated by
 * whitespace, with "#" comments to the end of a line; in a P5 file one whitespace character
 * follows maxval, then width*height bytes. A P2 raster is width*height decimal numbers.
 * maxval must be 1..255 (16-bit files are refused); samples above maxval are an error; with
 * maxval < 255 the samples are rescaled to 0..255 with rounding. Bytes after the raster are
 * ignored. */
#include "pgm.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* numbers larger than this are clamped to it while reading (no overflow; refused later) */
#define BIG 1000000000L

uint64_t fnv1a64(uint64_t hash, const unsigned char *data, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) {
        hash ^= data[i];
        hash *= UINT64_C(0x100000001b3);
    }
    return hash;
}

static int is_space(int c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* Skips whitespace and comments, then reads one unsigned decimal number into *out.
 * Returns 0; -1 at the end of the file; -2 when something else than a digit comes. The
 * character after the number is read: *after receives it (EOF at the end of the file). */
static int read_number(FILE *f, long *out, int *after)
{
    int c = getc(f);
    long v = 0;
    for (;;) {
        while (c != EOF && is_space(c))
            c = getc(f);
        if (c != '#')
            break;
        while (c != EOF && c != '\n' && c != '\r')
            c = getc(f);
    }
    if (c == EOF)
        return -1;
    if (c < '0' || c > '9')
        return -2;
    while (c >= '0' && c <= '9') {
        if (v < BIG)
            v = v * 10 + (c - '0');
        if (v > BIG)
            v = BIG;
        c = getc(f);
    }
    *out = v;
    *after = c;
    return 0;
}

static const char *header_field[3] = {"width", "height", "maxval"};

int pgm_read(const char *path, pgm_image *img, char *err, size_t errlen)
{
    FILE *f;
    int c0, c1, after = 0, ascii, i, rc = PGM_OK;
    long dims[3];
    size_t n, got, k;
    unsigned char *px = NULL;

    img->width = img->height = 0;
    img->pixels = NULL;
    f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(err, errlen, "cannot open: %s", strerror(errno));
        return PGM_ERR_OPEN;
    }
    c0 = getc(f);
    c1 = getc(f);
    if (c0 != 'P' || (c1 != '5' && c1 != '2')) {
        snprintf(err, errlen, "malformed PGM: it does not start with \"P5\" or \"P2\"");
        rc = PGM_ERR_MALFORMED;
        goto done;
    }
    ascii = (c1 == '2');
    after = getc(f);
    if (!is_space(after) && after != '#') {
        snprintf(err, errlen, "malformed PGM: no whitespace after the magic number \"P%c\"", c1);
        rc = PGM_ERR_MALFORMED;
        goto done;
    }
    ungetc(after, f);
    for (i = 0; i < 3; i++) {
        int r = read_number(f, &dims[i], &after);
        if (r != 0) {
            snprintf(err, errlen, "malformed PGM: the header has no %s (%s)", header_field[i],
                     r == -1 ? "the file ends" : "a character that is not a digit");
            rc = PGM_ERR_MALFORMED;
            goto done;
        }
        if (after == '#' && i < 2) {
            ungetc(after, f);
        } else if (after == EOF && !(ascii && i == 2)) {
            snprintf(err, errlen, "malformed PGM: the file ends in the header");
            rc = PGM_ERR_MALFORMED;
            goto done;
        } else if (after != EOF && !is_space(after)) {
            snprintf(err, errlen, "malformed PGM: the header's %s is followed by a character that is not whitespace",
                     header_field[i]);
            rc = PGM_ERR_MALFORMED;
            goto done;
        }
    }
    if (dims[0] < 1 || dims[1] < 1) {
        snprintf(err, errlen, "malformed PGM: the size is %ldx%ld (width and height must be at least 1)", dims[0], dims[1]);
        rc = PGM_ERR_MALFORMED;
        goto done;
    }
    if (dims[0] > PGM_MAX_SIDE || dims[1] > PGM_MAX_SIDE) {
        snprintf(err, errlen, "the image is too large: %ld%sx%ld%s (at most %dx%d)", dims[0],
                 dims[0] >= BIG ? "+" : "", dims[1], dims[1] >= BIG ? "+" : "", PGM_MAX_SIDE, PGM_MAX_SIDE);
        rc = PGM_ERR_TOO_LARGE;
        goto done;
    }
    if (dims[2] < 1 || dims[2] > 255) {
        if (dims[2] > 255)
            snprintf(err, errlen, "malformed PGM: maxval %ld%s is not supported (only 8-bit images: maxval 1..255)",
                     dims[2], dims[2] >= BIG ? "+" : "");
        else
            snprintf(err, errlen, "malformed PGM: maxval is 0 (it must be 1..255)");
        rc = PGM_ERR_MALFORMED;
        goto done;
    }
    n = (size_t)dims[0] * (size_t)dims[1];
    px = malloc(n);
    if (px == NULL) {
        snprintf(err, errlen, "out of memory for a %ldx%ld image", dims[0], dims[1]);
        rc = PGM_ERR_NOMEM;
        goto done;
    }
    if (!ascii) {
        got = fread(px, 1, n, f);
        if (got != n) {
            snprintf(err, errlen, "malformed PGM: truncated: %lu of %lu pixel bytes", (unsigned long)got, (unsigned long)n);
            rc = PGM_ERR_MALFORMED;
            goto done;
        }
        if (dims[2] < 255) {
            for (k = 0; k < n; k++) {
                if (px[k] > dims[2]) {
                    snprintf(err, errlen, "malformed PGM: pixel %lu is %d, above maxval %ld", (unsigned long)k, px[k], dims[2]);
                    rc = PGM_ERR_MALFORMED;
                    goto done;
                }
            }
        }
    } else {
        if (after == EOF) {
            snprintf(err, errlen, "malformed PGM: truncated: 0 of %lu pixel values", (unsigned long)n);
            rc = PGM_ERR_MALFORMED;
            goto done;
        }
        for (k = 0; k < n; k++) {
            long v;
            int r = read_number(f, &v, &after);
            if (r != 0 || (after != EOF && !is_space(after) && after != '#')) {
                if (r == -1)
                    snprintf(err, errlen, "malformed PGM: truncated: %lu of %lu pixel values", (unsigned long)k, (unsigned long)n);
                else
                    snprintf(err, errlen, "malformed PGM: pixel value %lu is not a decimal number", (unsigned long)k);
                rc = PGM_ERR_MALFORMED;
                goto done;
            }
            if (after == '#')
                ungetc(after, f);
            if (v > dims[2]) {
                snprintf(err, errlen, "malformed PGM: pixel %lu is %ld%s, above maxval %ld", (unsigned long)k, v,
                         v >= BIG ? "+" : "", dims[2]);
                rc = PGM_ERR_MALFORMED;
                goto done;
            }
            if (after == EOF && k + 1 < n) {
                snprintf(err, errlen, "malformed PGM: truncated: %lu of %lu pixel values", (unsigned long)(k + 1), (unsigned long)n);
                rc = PGM_ERR_MALFORMED;
                goto done;
            }
            px[k] = (unsigned char)v;
        }
    }
    if (ferror(f)) {
        snprintf(err, errlen, "cannot read: %s", strerror(errno));
        rc = PGM_ERR_OPEN;
        goto done;
    }
    if (dims[2] < 255) {
        long m = dims[2];
        for (k = 0; k < n; k++)
            px[k] = (unsigned char)((px[k] * 255L + m / 2) / m);
    }
    img->width = (int)dims[0];
    img->height = (int)dims[1];
    img->pixels = px;
    px = NULL;
done:
    free(px);
    fclose(f);
    return rc;
}

int pgm_write(const char *path, const pgm_image *img, uint64_t *hash, char *err, size_t errlen)
{
    char header[64];
    int hn;
    size_t n = (size_t)img->width * (size_t)img->height;
    FILE *f = fopen(path, "wb");
    if (f == NULL) {
        snprintf(err, errlen, "cannot create: %s", strerror(errno));
        return -1;
    }
    hn = snprintf(header, sizeof header, "P5\n%d %d\n255\n", img->width, img->height);
    if (fwrite(header, 1, (size_t)hn, f) != (size_t)hn || fwrite(img->pixels, 1, n, f) != n) {
        snprintf(err, errlen, "cannot write: %s", strerror(errno));
        fclose(f);
        return -1;
    }
    if (fclose(f) != 0) {
        snprintf(err, errlen, "cannot write: %s", strerror(errno));
        return -1;
    }
    *hash = fnv1a64(*hash, (const unsigned char *)header, (size_t)hn);
    *hash = fnv1a64(*hash, img->pixels, n);
    return 0;
}

void pgm_free(pgm_image *img)
{
    free(img->pixels);
    img->pixels = NULL;
    img->width = img->height = 0;
}
