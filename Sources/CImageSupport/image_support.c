// setjmp-protected PNG and JPEG decoding into planar Float32 buffers (see CImageSupport.h).
//
// Everything that may longjmp (libpng's and libjpeg's error handlers) happens inside the one C
// function that called setjmp; heap buffers that must be freed after a jump are `volatile`.
#include "CImageSupport.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <png.h>
#include <jpeglib.h>
#include <jerror.h>

// MARK: - Shared

static float lut8[256];
static pthread_once_t lut8_once = PTHREAD_ONCE_INIT;

static void fill_lut8(void) {
    for (int i = 0; i < 256; i++) lut8[i] = (float)i / 255.0f;  // exactly torchvision's v / 255
}

/// 8-bit sample → Float32 in [0, 1].
static const float *unit_lut(void) {
    pthread_once(&lut8_once, fill_lut8);
    return lut8;
}

static void set_result(rp_result *result, int status, const char *message) {
    result->status = status;
    snprintf(result->message, sizeof result->message, "%s", message ? message : "");
}

/// Writes one row of interleaved 8-bit RGB (or gray when `channels` is 1) to the three planes.
static void put_row8(const uint8_t *row, int channels, int width, int y, float *out,
                     long plane, rp_placement p, const float *lut) {
    long origin = p.base + (long)y * p.step_y;
    float *r = out + origin, *g = out + plane + origin, *b = out + 2 * plane + origin;
    if (p.step_x == 1) {
        if (channels == 1) {
            for (int x = 0; x < width; x++) { float v = lut[row[x]]; r[x] = v; g[x] = v; b[x] = v; }
        } else {
            for (int x = 0; x < width; x++) {
                r[x] = lut[row[3 * x]]; g[x] = lut[row[3 * x + 1]]; b[x] = lut[row[3 * x + 2]];
            }
        }
    } else {
        long s = p.step_x;
        for (int x = 0; x < width; x++) {
            long o = (long)x * s;
            if (channels == 1) { float v = lut[row[x]]; r[o] = v; g[o] = v; b[o] = v; }
            else { r[o] = lut[row[3 * x]]; g[o] = lut[row[3 * x + 1]]; b[o] = lut[row[3 * x + 2]]; }
        }
    }
}

// MARK: - PNG

typedef struct {
    const uint8_t *data;
    size_t size;
    size_t position;
    int truncated;
    char message[200];
} png_source;

static void png_read_callback(png_structp png, png_bytep out, size_t count) {
    png_source *source = (png_source *)png_get_io_ptr(png);
    if (count > source->size - source->position) {
        source->truncated = 1;
        png_error(png, "unexpected end of data");
    }
    memcpy(out, source->data + source->position, count);
    source->position += count;
}

static void png_error_callback(png_structp png, png_const_charp message) {
    png_source *source = (png_source *)png_get_error_ptr(png);
    snprintf(source->message, sizeof source->message, "%s", message);
    png_longjmp(png, 1);
}

static void png_warning_callback(png_structp png, png_const_charp message) {
    (void)png; (void)message;  // Pillow ignores what libpng only warns about (e.g. bad iCCP).
}

/// Converts one raw (unexpanded) PNG row to RGB floats.
static void png_put_row(const uint8_t *row, int color_type, int depth, int width, int y,
                        const png_color *palette, int palette_size, float *out, long plane,
                        rp_placement p, const float *lut) {
    long origin = p.base + (long)y * p.step_y;
    float *r = out + origin, *g = out + plane + origin, *b = out + 2 * plane + origin;
    if (depth == 16) {
        int channels = color_type == PNG_COLOR_TYPE_GRAY ? 1
                     : color_type == PNG_COLOR_TYPE_GRAY_ALPHA ? 2
                     : color_type == PNG_COLOR_TYPE_RGB ? 3 : 4;
        for (int x = 0; x < width; x++) {
            const uint8_t *s = row + (size_t)x * channels * 2;
            long o = (long)x * p.step_x;
            if (channels <= 2) {
                float v = (float)((s[0] << 8) | s[1]) / 65535.0f;
                r[o] = v; g[o] = v; b[o] = v;
            } else {
                r[o] = (float)((s[0] << 8) | s[1]) / 65535.0f;
                g[o] = (float)((s[2] << 8) | s[3]) / 65535.0f;
                b[o] = (float)((s[4] << 8) | s[5]) / 65535.0f;
            }
        }
        return;
    }
    switch (color_type) {
    case PNG_COLOR_TYPE_GRAY:
        if (depth == 8) { put_row8(row, 1, width, y, out, plane, p, lut); return; }
        {
            int mask = (1 << depth) - 1, scale = 255 / mask;
            for (int x = 0; x < width; x++) {
                int bit = x * depth;
                int v = (row[bit >> 3] >> (8 - depth - (bit & 7))) & mask;
                float f = lut[v * scale];
                long o = (long)x * p.step_x;
                r[o] = f; g[o] = f; b[o] = f;
            }
        }
        return;
    case PNG_COLOR_TYPE_PALETTE: {
        int mask = (1 << depth) - 1;
        for (int x = 0; x < width; x++) {
            int bit = x * depth;
            int index = (row[bit >> 3] >> (8 - depth - (bit & 7))) & mask;
            long o = (long)x * p.step_x;
            if (index < palette_size) {
                r[o] = lut[palette[index].red]; g[o] = lut[palette[index].green]; b[o] = lut[palette[index].blue];
            } else {
                r[o] = 0; g[o] = 0; b[o] = 0;  // Pillow's palette pads unused entries with black.
            }
        }
        return;
    }
    case PNG_COLOR_TYPE_RGB:
        put_row8(row, 3, width, y, out, plane, p, lut);
        return;
    case PNG_COLOR_TYPE_GRAY_ALPHA:
    case PNG_COLOR_TYPE_RGB_ALPHA: {
        int channels = color_type == PNG_COLOR_TYPE_GRAY_ALPHA ? 2 : 4;
        for (int x = 0; x < width; x++) {
            const uint8_t *s = row + (size_t)x * channels;
            long o = (long)x * p.step_x;
            if (channels == 2) { float v = lut[s[0]]; r[o] = v; g[o] = v; b[o] = v; }
            else { r[o] = lut[s[0]]; g[o] = lut[s[1]]; b[o] = lut[s[2]]; }
        }
        return;
    }
    default:
        return;
    }
}

void rp_decode_png(const uint8_t *data, size_t size, int width, int height,
                   float *out, rp_placement placement, rp_result *result) {
    const float *lut = unit_lut();
    png_source source = { data, size, 0, 0, "" };
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &source,
                                             png_error_callback, png_warning_callback);
    if (!png) { set_result(result, RP_OUT_OF_MEMORY, "png_create_read_struct failed"); return; }
    png_infop info = png_create_info_struct(png);
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        set_result(result, RP_OUT_OF_MEMORY, "png_create_info_struct failed");
        return;
    }
    uint8_t *volatile pixels = NULL;
    png_bytep *volatile rows = NULL;

    if (setjmp(png_jmpbuf(png))) {
        free(pixels);
        free(rows);
        png_destroy_read_struct(&png, &info, NULL);
        set_result(result, source.truncated ? RP_TRUNCATED : RP_CORRUPT, source.message);
        return;
    }
    png_set_read_fn(png, &source, png_read_callback);
    png_read_info(png, info);

    png_uint_32 w = 0, h = 0;
    int depth = 0, color_type = 0, interlace = 0;
    png_get_IHDR(png, info, &w, &h, &depth, &color_type, &interlace, NULL, NULL);
    if ((int)w != width || (int)h != height) {
        png_destroy_read_struct(&png, &info, NULL);
        set_result(result, RP_SIZE_MISMATCH, "IHDR dimensions differ from the probed ones");
        return;
    }
    png_colorp palette = NULL;
    int palette_size = 0;
    if (color_type == PNG_COLOR_TYPE_PALETTE && !png_get_PLTE(png, info, &palette, &palette_size)) {
        png_destroy_read_struct(&png, &info, NULL);
        set_result(result, RP_CORRUPT, "palette image without a PLTE chunk");
        return;
    }
    int passes = png_set_interlace_handling(png);
    png_read_update_info(png, info);
    size_t row_bytes = png_get_rowbytes(png, info);
    long plane = (long)width * height;

    if (passes > 1) {
        pixels = malloc(row_bytes * (size_t)height);
        rows = malloc(sizeof(png_bytep) * (size_t)height);
        if (!pixels || !rows) png_error(png, "out of memory for the interlaced image");
        for (int y = 0; y < height; y++) rows[y] = pixels + row_bytes * (size_t)y;
        png_read_image(png, rows);
        for (int y = 0; y < height; y++)
            png_put_row(rows[y], color_type, depth, width, y, palette, palette_size, out, plane, placement, lut);
    } else {
        pixels = malloc(row_bytes);
        if (!pixels) png_error(png, "out of memory for a row");
        for (int y = 0; y < height; y++) {
            png_read_row(png, pixels, NULL);
            png_put_row(pixels, color_type, depth, width, y, palette, palette_size, out, plane, placement, lut);
        }
    }
    free(pixels);
    free(rows);
    png_destroy_read_struct(&png, &info, NULL);
    set_result(result, RP_OK, NULL);
}

// MARK: - JPEG

typedef struct {
    struct jpeg_error_mgr manager;
    jmp_buf jump;
    int truncated;
    char message[JMSG_LENGTH_MAX];
} jpeg_errors;

static void jpeg_error_exit(j_common_ptr cinfo) {
    jpeg_errors *errors = (jpeg_errors *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, errors->message);
    longjmp(errors->jump, 1);
}

static void jpeg_emit_message(j_common_ptr cinfo, int level) {
    jpeg_errors *errors = (jpeg_errors *)cinfo->err;
    // Warnings (level −1) are ignored as Pillow does, except the end of data arriving early,
    // which Pillow reports as "image file is truncated" instead of showing gray rows.
    if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF) errors->truncated = 1;
}

static void jpeg_output_message(j_common_ptr cinfo) { (void)cinfo; }

static inline uint8_t clip8(int v) { return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v); }

/// Pillow's CMYK → RGB after reading with Adobe polarity ("CMYK;I" raw mode inverts).
static void cmyk_row_to_rgb(const uint8_t *cmyk, uint8_t *rgb, int width) {
    for (int x = 0; x < width; x++) {
        const uint8_t *s = cmyk + 4 * x;
        int nk = s[3];  // 255 − (255 − k_raw)
        for (int c = 0; c < 3; c++) {
            int value = 255 - s[c];
            int t = value * nk + 128;
            rgb[3 * x + c] = clip8(nk - (((t >> 8) + t) >> 8));
        }
    }
}

void rp_decode_jpeg(const uint8_t *data, size_t size, int width, int height,
                    float *out, rp_placement placement, rp_result *result) {
    const float *lut = unit_lut();
    struct jpeg_decompress_struct cinfo;
    jpeg_errors errors;
    memset(&errors, 0, sizeof errors);
    cinfo.err = jpeg_std_error(&errors.manager);
    errors.manager.error_exit = jpeg_error_exit;
    errors.manager.emit_message = jpeg_emit_message;
    errors.manager.output_message = jpeg_output_message;
    uint8_t *volatile row = NULL;
    uint8_t *volatile rgb = NULL;

    if (setjmp(errors.jump)) {
        free(row);
        free(rgb);
        jpeg_destroy_decompress(&cinfo);
        set_result(result, errors.truncated ? RP_TRUNCATED : RP_CORRUPT, errors.message);
        return;
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, data, (unsigned long)size);
    jpeg_read_header(&cinfo, TRUE);
    if ((int)cinfo.image_width != width || (int)cinfo.image_height != height) {
        jpeg_destroy_decompress(&cinfo);
        set_result(result, RP_SIZE_MISMATCH, "SOF dimensions differ from the probed ones");
        return;
    }
    int cmyk = 0;
    switch (cinfo.jpeg_color_space) {
    case JCS_GRAYSCALE: cinfo.out_color_space = JCS_GRAYSCALE; break;
    case JCS_CMYK:
    case JCS_YCCK: cinfo.out_color_space = JCS_CMYK; cmyk = 1; break;
    case JCS_YCbCr:
    case JCS_RGB: cinfo.out_color_space = JCS_RGB; break;
    default: {
        char message[80];
        snprintf(message, sizeof message, "%d-component JPEG with an unknown color space", cinfo.num_components);
        jpeg_destroy_decompress(&cinfo);
        set_result(result, RP_UNSUPPORTED, message);
        return;
    }
    }
    cinfo.dct_method = JDCT_ISLOW;
    cinfo.do_fancy_upsampling = TRUE;
    jpeg_start_decompress(&cinfo);
    int components = cinfo.output_components;
    row = malloc((size_t)width * (size_t)components);
    if (cmyk) rgb = malloc((size_t)width * 3);
    if (!row || (cmyk && !rgb)) {
        errors.manager.msg_code = 0;
        snprintf(errors.message, sizeof errors.message, "out of memory for a row");
        longjmp(errors.jump, 1);
    }
    long plane = (long)width * height;
    while (cinfo.output_scanline < cinfo.output_height) {
        int y = (int)cinfo.output_scanline;
        JSAMPROW rows[1] = { row };
        if (jpeg_read_scanlines(&cinfo, rows, 1) != 1) break;
        if (cmyk) {
            cmyk_row_to_rgb(row, rgb, width);
            put_row8(rgb, 3, width, y, out, plane, placement, lut);
        } else {
            put_row8(row, components == 1 ? 1 : 3, width, y, out, plane, placement, lut);
        }
    }
    int truncated = errors.truncated || cinfo.output_scanline < cinfo.output_height;
    free(row);
    free(rgb);
    jpeg_destroy_decompress(&cinfo);
    if (truncated) set_result(result, RP_TRUNCATED, "Premature end of JPEG file");
    else set_result(result, RP_OK, NULL);
}
