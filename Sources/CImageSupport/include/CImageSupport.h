// setjmp-protected PNG (libpng) and JPEG (libjpeg-turbo) decoders for the Images module.
//
// Both libraries report fatal errors by longjmp-ing out of the failing call, which Swift cannot
// survive; these C functions own the jmp_buf, turn every failure into an `rp_status` with the
// library's message, and write samples straight into a planar Float32 [3, H, W] buffer in [0, 1].
#ifndef RUNPIPE_CIMAGESUPPORT_H
#define RUNPIPE_CIMAGESUPPORT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    RP_OK = 0,
    RP_TRUNCATED = 1,        // the data ends before the image does
    RP_CORRUPT = 2,          // the library rejected the data; `message` says why
    RP_UNSUPPORTED = 3,      // valid but not decodable here (e.g. 2-channel JPEG)
    RP_SIZE_MISMATCH = 4,    // the library read other dimensions than the caller expected
    RP_OUT_OF_MEMORY = 5,
} rp_status;

typedef struct {
    int status;              // an rp_status
    char message[200];       // the library's message when status != RP_OK
} rp_result;

/// Where source pixel (x, y) lands in each output plane: `base + x * step_x + y * step_y`.
/// (base 0, step_x 1, step_y width) is the identity; the others apply EXIF orientations.
typedef struct {
    long base;
    long step_x;
    long step_y;
} rp_placement;

/// Decodes a PNG of `width`×`height` (as probed from its IHDR) into `out`, which holds
/// 3·width·height floats (planes of width·height each). Alpha is dropped, tRNS ignored, no gamma
/// correction is applied; 16-bit samples become v/65535, the others v/(2^depth − 1).
void rp_decode_png(const uint8_t *data, size_t size, int width, int height,
                   float *out, rp_placement placement, rp_result *result);

/// Decodes a baseline/progressive JPEG of `width`×`height` (as probed from its SOF) into `out`
/// with libjpeg's defaults (JDCT_ISLOW, fancy upsampling), as Pillow does. Gray is replicated;
/// 4-channel (CMYK/YCCK) data is read with Adobe polarity and converted as Pillow's
/// `convert("RGB")` does.
void rp_decode_jpeg(const uint8_t *data, size_t size, int width, int height,
                    float *out, rp_placement placement, rp_result *result);

#ifdef __cplusplus
}
#endif

#endif
