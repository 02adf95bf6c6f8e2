/* corners: FAST-9 corners ranked by a fixed-point Harris response, over a folder of PGM images.
 *
 *   corners [--blur] [--score=harris|fast] INPUT_DIR OUTPUT_DIR [THRESHOLD]
 *
 * See README.md. Integer arithmetic only, so that the output is the same bytes whatever the
 * compiler, its flags or the machine. */
#define _POSIX_C_SOURCE 200809L

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "pgm.h"

#define PROG "corners"
#define DEFAULT_THRESHOLD 40
#define BORDER 4 /* no corner within this many pixels of an edge: Sobel (1) + the 7x7 window (3) */
#define WIN 3    /* half-size of the 7x7 binomial window that weighs the structure tensor */
#define NMS 2    /* half-size of the 5x5 non-maximum suppression */
#define ARM 3    /* half-length of the cross that marks a corner */

/* exit codes */
#define EXIT_INPUT 2 /* usage, a missing input folder, a malformed or too large image */
#define EXIT_SYSTEM 1 /* the output cannot be written, out of memory */

static const int weight[2 * WIN + 1] = {1, 6, 15, 20, 15, 6, 1}; /* binomial, sum 64 */

/* the Bresenham circle of radius 3 used by FAST, clockwise from the top */
static const int circle_dx[16] = {0, 1, 2, 3, 3, 3, 2, 1, 0, -1, -2, -3, -3, -3, -2, -1};
static const int circle_dy[16] = {-3, -3, -2, -1, 0, 1, 2, 3, 3, 3, 2, 1, 0, -1, -2, -3};

typedef struct {
    int blur;    /* smooth with a 3x3 binomial filter before detecting */
    int harris;  /* rank by the Harris response (else by the FAST score: cheaper) */
    int threshold;
} options;

typedef struct {
    int x, y;
} point;

typedef struct {
    point *p;
    size_t n, cap;
} points;

static void die_nomem(void)
{
    fprintf(stderr, PROG ": error: out of memory\n");
    exit(EXIT_SYSTEM);
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL)
        die_nomem();
    return p;
}

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (p == NULL)
        die_nomem();
    return p;
}

static void push(points *ps, int x, int y)
{
    if (ps->n == ps->cap) {
        size_t cap = ps->cap ? ps->cap * 2 : 256;
        point *p = realloc(ps->p, cap * sizeof *p);
        if (p == NULL)
            die_nomem();
        ps->p = p;
        ps->cap = cap;
    }
    ps->p[ps->n].x = x;
    ps->p[ps->n].y = y;
    ps->n++;
}

static char *join(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    char *s = xmalloc(a + b + 2);
    memcpy(s, dir, a);
    s[a] = '/';
    memcpy(s + a + 1, name, b + 1);
    return s;
}

/* ---- image operations ------------------------------------------------------------------- */

/* 3x3 binomial smoothing ([1 2 1] x [1 2 1] / 16, rounded), edges replicated */
static void blur3(const unsigned char *src, unsigned char *dst, int w, int h)
{
    int x, y;
    for (y = 0; y < h; y++) {
        const unsigned char *a = src + (size_t)(y > 0 ? y - 1 : 0) * w;
        const unsigned char *b = src + (size_t)y * w;
        const unsigned char *c = src + (size_t)(y < h - 1 ? y + 1 : y) * w;
        unsigned char *o = dst + (size_t)y * w;
        for (x = 0; x < w; x++) {
            int l = x > 0 ? x - 1 : 0, r = x < w - 1 ? x + 1 : x;
            int s = (a[l] + 2 * a[x] + a[r]) + 2 * (b[l] + 2 * b[x] + b[r]) + (c[l] + 2 * c[x] + c[r]);
            o[x] = (unsigned char)((s + 8) / 16);
        }
    }
}

/* a run of at least 9 set bits, circularly, in the 16-bit mask M */
static int has_arc9(unsigned m)
{
    uint32_t d = (uint32_t)m | ((uint32_t)m << 16), r = d;
    int i;
    for (i = 1; i < 9; i++)
        r &= d >> i;
    return r != 0;
}

/* The FAST-9 segment test at P: 9 contiguous pixels of the circle all brighter than P + T or
 * all darker than P - T. Returns 0 when it fails, else the FAST score (at least 1): the sum of
 * how far those pixels of the circle exceed the threshold. */
static long fast9(const unsigned char *p, const ptrdiff_t *off, int t)
{
    int c = p[0], hi = c + t, lo = c - t, k, nb = 0, nd = 0;
    unsigned bright = 0, dark = 0;
    long sb = 0, sd = 0;
    for (k = 0; k < 16; k += 4) {
        int v = p[off[k]];
        nb += v > hi;
        nd += v < lo;
    }
    if (nb < 2 && nd < 2) /* an arc of 9 holds at least 2 of the 4 compass points */
        return 0;
    for (k = 0; k < 16; k++) {
        int v = p[off[k]];
        if (v > hi) {
            bright |= 1u << k;
            sb += v - hi;
        } else if (v < lo) {
            dark |= 1u << k;
            sd += lo - v;
        }
    }
    if (has_arc9(bright))
        return sb;
    if (has_arc9(dark))
        return sd;
    return 0;
}

/* Working rows of one image, kept as rings so that memory grows with the width only. */
typedef struct {
    int w, h;
    int32_t *gxx, *gyy, *gxy;      /* one row of gradient products */
    int32_t *hxx[2 * WIN + 1];     /* ring: gradient products summed along x, per row */
    int32_t *hyy[2 * WIN + 1];
    int32_t *hxy[2 * WIN + 1];
    int64_t *resp;                 /* one row of the Harris response */
    int64_t *score[2 * NMS + 1];   /* ring: a candidate's score, or NONE */
} work;

#define NONE INT64_MIN

static void work_init(work *wk, int w, int h, int harris)
{
    int i;
    memset(wk, 0, sizeof *wk);
    wk->w = w;
    wk->h = h;
    if (harris) {
        wk->gxx = xcalloc((size_t)w, sizeof(int32_t));
        wk->gyy = xcalloc((size_t)w, sizeof(int32_t));
        wk->gxy = xcalloc((size_t)w, sizeof(int32_t));
        for (i = 0; i < 2 * WIN + 1; i++) {
            wk->hxx[i] = xcalloc((size_t)w, sizeof(int32_t));
            wk->hyy[i] = xcalloc((size_t)w, sizeof(int32_t));
            wk->hxy[i] = xcalloc((size_t)w, sizeof(int32_t));
        }
        wk->resp = xcalloc((size_t)w, sizeof(int64_t));
    }
    for (i = 0; i < 2 * NMS + 1; i++)
        wk->score[i] = xcalloc((size_t)w, sizeof(int64_t));
}

static void work_free(work *wk)
{
    int i;
    free(wk->gxx);
    free(wk->gyy);
    free(wk->gxy);
    free(wk->resp);
    for (i = 0; i < 2 * WIN + 1; i++) {
        free(wk->hxx[i]);
        free(wk->hyy[i]);
        free(wk->hxy[i]);
    }
    for (i = 0; i < 2 * NMS + 1; i++)
        free(wk->score[i]);
}

/* Row R (1 <= R <= h-2) of the gradient products, summed along x over the 7-tap window, into
 * its ring slot. Sobel gradients are divided by 4 (to -255..255) so that every sum fits in 32
 * bits: 255^2 * 64 * 64 < 2^31. */
static void fill_row(work *wk, const unsigned char *img, int r)
{
    int w = wk->w, x, k, slot = r % (2 * WIN + 1);
    const unsigned char *a = img + (size_t)(r - 1) * w;
    const unsigned char *b = img + (size_t)r * w;
    const unsigned char *c = img + (size_t)(r + 1) * w;
    int32_t *pxx = wk->gxx, *pyy = wk->gyy, *pxy = wk->gxy;
    int32_t *hxx = wk->hxx[slot], *hyy = wk->hyy[slot], *hxy = wk->hxy[slot];
    for (x = 1; x < w - 1; x++) {
        int gx = (a[x + 1] - a[x - 1]) + 2 * (b[x + 1] - b[x - 1]) + (c[x + 1] - c[x - 1]);
        int gy = (c[x - 1] + 2 * c[x] + c[x + 1]) - (a[x - 1] + 2 * a[x] + a[x + 1]);
        gx /= 4; /* C99: division truncates toward zero */
        gy /= 4;
        pxx[x] = gx * gx;
        pyy[x] = gy * gy;
        pxy[x] = gx * gy;
    }
    for (x = BORDER; x < w - BORDER; x++) {
        int32_t sxx = 0, syy = 0, sxy = 0;
        for (k = 0; k < 2 * WIN + 1; k++) {
            sxx += weight[k] * pxx[x - WIN + k];
            syy += weight[k] * pyy[x - WIN + k];
            sxy += weight[k] * pxy[x - WIN + k];
        }
        hxx[x] = sxx;
        hyy[x] = syy;
        hxy[x] = sxy;
    }
}

/* Row Y of the Harris response from the ring: det(M) - trace(M)^2 / 25 (k = 0.04), M the
 * structure tensor weighted by the 7x7 binomial window. The sums fit in 32 bits (see
 * fill_row); their products need 64. */
static void harris_row(work *wk, int y)
{
    const int32_t *xx[2 * WIN + 1], *yy[2 * WIN + 1], *xy[2 * WIN + 1];
    int64_t *out = wk->resp;
    int k, x;
    for (k = 0; k < 2 * WIN + 1; k++) {
        int slot = (y - WIN + k) % (2 * WIN + 1);
        xx[k] = wk->hxx[slot];
        yy[k] = wk->hyy[slot];
        xy[k] = wk->hxy[slot];
    }
    for (x = BORDER; x < wk->w - BORDER; x++) {
        int32_t sxx = 0, syy = 0, sxy = 0;
        int64_t tr;
        for (k = 0; k < 2 * WIN + 1; k++) {
            sxx += weight[k] * xx[k][x];
            syy += weight[k] * yy[k][x];
            sxy += weight[k] * xy[k][x];
        }
        tr = (int64_t)sxx + syy;
        out[x] = (int64_t)sxx * syy - (int64_t)sxy * sxy - tr * tr / 25;
    }
}

/* Scores of row Y (BORDER <= Y < h - BORDER) into its ring slot: NONE where the FAST test
 * fails or (with Harris) the response is not positive. */
static void score_row(work *wk, const unsigned char *img, const ptrdiff_t *off, const options *o, int y)
{
    int w = wk->w, x;
    int64_t *s = wk->score[y % (2 * NMS + 1)];
    const unsigned char *row = img + (size_t)y * w;
    for (x = 0; x < w; x++)
        s[x] = NONE;
    if (o->harris)
        harris_row(wk, y);
    for (x = BORDER; x < w - BORDER; x++) {
        long f = fast9(row + x, off, o->threshold);
        if (f == 0)
            continue;
        if (o->harris) {
            if (wk->resp[x] > 0)
                s[x] = wk->resp[x];
        } else {
            s[x] = f;
        }
    }
}

/* Row Y's corners: candidates with no better candidate within the 5x5 window (a tie goes to the
 * one first in raster order). Rows Y-2..Y+2 are in the ring, those outside [lo, hi] count as
 * empty. */
static void suppress_row(const work *wk, int y, int lo, int hi, points *out)
{
    int w = wk->w, x, dx, dy;
    const int64_t *s = wk->score[y % (2 * NMS + 1)];
    for (x = BORDER; x < w - BORDER; x++) {
        int64_t v = s[x];
        int best = 1;
        if (v == NONE)
            continue;
        for (dy = -NMS; dy <= NMS && best; dy++) {
            const int64_t *t;
            if (y + dy < lo || y + dy > hi)
                continue;
            t = wk->score[(y + dy) % (2 * NMS + 1)];
            for (dx = -NMS; dx <= NMS; dx++) {
                int64_t q = t[x + dx];
                if (dx == 0 && dy == 0)
                    continue;
                if (q > v || (q == v && (dy < 0 || (dy == 0 && dx < 0)))) {
                    best = 0;
                    break;
                }
            }
        }
        if (best)
            push(out, x, y);
    }
}

/* The corners of an image (in raster order) into OUT. */
static void detect(const unsigned char *img, int w, int h, const options *o, points *out)
{
    ptrdiff_t off[16];
    work wk;
    int k, r, lo = BORDER, hi = h - BORDER - 1;
    if (w < 2 * BORDER + 1 || h < 2 * BORDER + 1)
        return; /* too small for a corner */
    for (k = 0; k < 16; k++)
        off[k] = (ptrdiff_t)circle_dy[k] * w + circle_dx[k];
    work_init(&wk, w, h, o->harris);
    if (o->harris)
        for (r = BORDER - WIN; r < BORDER + WIN; r++)
            fill_row(&wk, img, r);
    /* the score of row r is known once the window's rows are summed; row r - NMS is decided
     * once the scores of the rows around it are known */
    for (r = lo; r <= hi + NMS; r++) {
        if (r <= hi) {
            if (o->harris)
                fill_row(&wk, img, r + WIN);
            score_row(&wk, img, off, o, r);
        }
        if (r - NMS >= lo)
            suppress_row(&wk, r - NMS, lo, r < hi ? r : hi, out);
    }
    work_free(&wk);
}

/* a small white cross on each corner */
static void mark(unsigned char *img, int w, int h, const points *ps)
{
    size_t i;
    int d;
    for (i = 0; i < ps->n; i++) {
        int x = ps->p[i].x, y = ps->p[i].y;
        for (d = -ARM; d <= ARM; d++) {
            if (x + d >= 0 && x + d < w)
                img[(size_t)y * w + x + d] = 255;
            if (y + d >= 0 && y + d < h)
                img[(size_t)(y + d) * w + x] = 255;
        }
    }
}

/* ---- files and folders ------------------------------------------------------------------ */

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* the *.pgm names in DIR (not hidden), sorted bytewise; NULL when DIR cannot be read */
static char **list_pgm(const char *dir, size_t *count)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char **names = NULL;
    size_t n = 0, cap = 0;
    if (d == NULL)
        return NULL;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len <= 4 || e->d_name[0] == '.' || strcmp(e->d_name + len - 4, ".pgm") != 0)
            continue;
        if (n == cap) {
            char **p;
            cap = cap ? cap * 2 : 16;
            p = realloc(names, cap * sizeof *p);
            if (p == NULL)
                die_nomem();
            names = p;
        }
        names[n] = xmalloc(len + 1);
        memcpy(names[n], e->d_name, len + 1);
        n++;
    }
    closedir(d);
    if (names == NULL)
        names = xmalloc(sizeof *names);
    qsort(names, n, sizeof *names, cmp_names);
    *count = n;
    return names;
}

/* mkdir -p */
static int make_dirs(const char *path)
{
    char *p = xmalloc(strlen(path) + 1), *s;
    struct stat st;
    strcpy(p, path);
    for (s = p + 1; ; s++) {
        if (*s == '/' || *s == '\0') {
            char c = *s;
            *s = '\0';
            if (mkdir(p, 0777) != 0 && errno != EEXIST) {
                free(p);
                return -1;
            }
            *s = c;
            if (c == '\0')
                break;
        }
    }
    free(p);
    if (stat(path, &st) != 0)
        return -1;
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: " PROG " [--blur] [--score=harris|fast] INPUT_DIR OUTPUT_DIR [THRESHOLD]\n"
            "\n"
            "Detects corners in every *.pgm image of INPUT_DIR (sorted by name): FAST-9 at THRESHOLD\n"
            "(1..254, default %d), ranked by a fixed-point Harris response, one corner kept per 5x5\n"
            "neighbourhood. Writes OUTPUT_DIR/NAME.pgm (each corner marked by a white cross) and\n"
            "OUTPUT_DIR/metrics.json, and prints one line per image and the totals.\n"
            "\n"
            "  --blur          smooth each image with a 3x3 binomial filter first\n"
            "  --score=fast    rank candidates by the FAST score instead of Harris (cheaper)\n"
            "\n"
            "Exit status: 0 done, 2 bad usage or input (missing folder, malformed or too large\n"
            "image), 1 the output cannot be written.\n",
            DEFAULT_THRESHOLD);
}

static int bad_usage(const char *msg, const char *arg)
{
    fprintf(stderr, PROG ": error: %s%s%s%s\n", msg, arg ? " '" : "", arg ? arg : "", arg ? "'" : "");
    usage(stderr);
    return EXIT_INPUT;
}

int main(int argc, char **argv)
{
    options o;
    const char *pos[3];
    int npos = 0, i, only_pos = 0;
    const char *in_dir, *out_dir;
    char **names, err[512];
    size_t count, k;
    struct stat st_in, st_out;
    uint64_t hash = FNV1A64_INIT;
    long total = 0;
    char *path;
    FILE *f;

    o.blur = 0;
    o.harris = 1;
    o.threshold = DEFAULT_THRESHOLD;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!only_pos && a[0] == '-' && a[1] == '-') {
            if (strcmp(a, "--") == 0)
                only_pos = 1;
            else if (strcmp(a, "--help") == 0) {
                usage(stdout);
                return 0;
            } else if (strcmp(a, "--blur") == 0)
                o.blur = 1;
            else if (strcmp(a, "--score=harris") == 0)
                o.harris = 1;
            else if (strcmp(a, "--score=fast") == 0)
                o.harris = 0;
            else
                return bad_usage("unknown option", a);
        } else if (npos < 3) {
            pos[npos++] = a;
        } else {
            return bad_usage("too many arguments: from", a);
        }
    }
    if (npos < 2)
        return bad_usage("INPUT_DIR and OUTPUT_DIR are required", NULL);
    in_dir = pos[0];
    out_dir = pos[1];
    if (npos == 3) {
        char *end;
        long t;
        errno = 0;
        t = strtol(pos[2], &end, 10);
        if (errno != 0 || end == pos[2] || *end != '\0' || t < 1 || t > 254)
            return bad_usage("THRESHOLD must be a whole number from 1 to 254, not", pos[2]);
        o.threshold = (int)t;
    }

    if (stat(in_dir, &st_in) != 0) {
        fprintf(stderr, PROG ": error: %s: the input folder cannot be read: %s\n", in_dir, strerror(errno));
        return EXIT_INPUT;
    }
    if (!S_ISDIR(st_in.st_mode)) {
        fprintf(stderr, PROG ": error: %s: the input is not a folder\n", in_dir);
        return EXIT_INPUT;
    }
    names = list_pgm(in_dir, &count);
    if (names == NULL) {
        fprintf(stderr, PROG ": error: %s: cannot read the folder: %s\n", in_dir, strerror(errno));
        return EXIT_INPUT;
    }
    if (make_dirs(out_dir) != 0) {
        fprintf(stderr, PROG ": error: %s: cannot create the output folder: %s\n", out_dir, strerror(errno));
        return EXIT_SYSTEM;
    }
    if (stat(out_dir, &st_out) == 0 && st_out.st_dev == st_in.st_dev && st_out.st_ino == st_in.st_ino) {
        fprintf(stderr, PROG ": error: %s: the output folder is the input folder (its images would be overwritten)\n",
                out_dir);
        return EXIT_INPUT;
    }

    for (k = 0; k < count; k++) {
        pgm_image img;
        points ps = {NULL, 0, 0};
        unsigned char *src;
        size_t len = strlen(names[k]);
        int rc;
        path = join(in_dir, names[k]);
        rc = pgm_read(path, &img, err, sizeof err);
        if (rc != PGM_OK) {
            fprintf(stderr, PROG ": error: %s: %s\n", path, err);
            return rc == PGM_ERR_NOMEM ? EXIT_SYSTEM : EXIT_INPUT;
        }
        free(path);
        src = img.pixels;
        if (o.blur) {
            src = xmalloc((size_t)img.width * (size_t)img.height);
            blur3(img.pixels, src, img.width, img.height);
        }
        detect(src, img.width, img.height, &o, &ps);
        if (src != img.pixels)
            free(src);
        mark(img.pixels, img.width, img.height, &ps);
        path = join(out_dir, names[k]);
        if (pgm_write(path, &img, &hash, err, sizeof err) != 0) {
            fprintf(stderr, PROG ": error: %s: %s\n", path, err);
            return EXIT_SYSTEM;
        }
        free(path);
        names[k][len - 4] = '\0'; /* the name without ".pgm" */
        printf("image %s: %lu corners\n", names[k], (unsigned long)ps.n);
        total += (long)ps.n;
        free(ps.p);
        pgm_free(&img);
        free(names[k]);
    }
    free(names);
    printf("corners: %ld\n", total);
    printf("images: %lu\n", (unsigned long)count);

    path = join(out_dir, "metrics.json");
    f = fopen(path, "wb");
    if (f != NULL && fprintf(f, "{\"corners\": %ld, \"images\": %lu, \"checksum\": \"%016" PRIx64 "\"}\n", total,
                             (unsigned long)count, hash) < 0) {
        fclose(f);
        f = NULL;
    }
    if (f == NULL || fclose(f) != 0) {
        fprintf(stderr, PROG ": error: %s: cannot write: %s\n", path, strerror(errno));
        return EXIT_SYSTEM;
    }
    free(path);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, PROG ": error: cannot write to the standard output\n");
        return EXIT_SYSTEM;
    }
    return 0;
}
