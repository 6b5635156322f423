// The whole of libpng's use by the Media module: decode any PNG to 8-bit RGB and encode 8-bit RGB,
// each as one C call. libpng reports errors by longjmp; every setjmp lives in png_shim.c and no
// longjmp ever crosses a Swift frame. This header deliberately does not include <png.h>.
#ifndef SD_PNG_SHIM_H
#define SD_PNG_SHIM_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    SDPNG_OK = 0,
    SDPNG_NOT_PNG = 1,      // the 8-byte PNG signature is missing
    SDPNG_CORRUPT = 2,      // libpng reported an error (message says which)
    SDPNG_NO_MEMORY = 3,
    SDPNG_BAD_ARGUMENT = 4, // e.g. the dimensions passed to decode do not match the file
} sdpng_status;

/// Reads the signature and every chunk up to the first IDAT; returns the image size. Allocates
/// nothing proportional to the image size, so it is safe on a header that lies about its size.
sdpng_status sdpng_read_size(const uint8_t *data, size_t size, uint32_t *width, uint32_t *height,
                             char *message, size_t message_capacity);

/// Decodes into `out` (width * height * 3 bytes, RGB interleaved, row-major), after checking that
/// the file has exactly `width` x `height` pixels. Conversions (as Pillow's convert("RGB")):
/// palette -> its colours (tRNS ignored); gray 1/2/4-bit -> scaled to 0...255; gray -> R=G=B;
/// alpha -> dropped (not composited); 16-bit -> the high byte of each sample; gAMA/sBIT/iCCP ignored.
sdpng_status sdpng_decode_rgb8(const uint8_t *data, size_t size, uint8_t *out, uint32_t width,
                               uint32_t height, char *message, size_t message_capacity);

/// Encodes 8-bit RGB pixels (width * height * 3 bytes) as a non-interlaced PNG with zlib level
/// `level` (0...9). On success `*out` is a buffer of `*out_size` bytes to release with sdpng_free.
sdpng_status sdpng_encode_rgb8(const uint8_t *pixels, uint32_t width, uint32_t height, int level,
                               uint8_t **out, size_t *out_size, char *message, size_t message_capacity);

void sdpng_free(void *buffer);

#endif
