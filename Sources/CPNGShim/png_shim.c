// libpng glue for the Media module (see include/png_shim.h). Error handling: libpng calls
// on_error, which records the message and longjmps back to the setjmp in the same public
// function below. Objects touched after setjmp are either not modified after it or live in
// memory reached through a pointer set before it, so nothing depends on indeterminate locals.
#include "png_shim.h"

#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *message;
    size_t capacity;
} error_sink;

typedef struct {
    const uint8_t *data;
    size_t size;
    size_t position;
} memory_reader;

typedef struct {
    uint8_t *data;
    size_t size;
    size_t capacity;
} memory_writer;

static void set_message(char *message, size_t capacity, const char *text) {
    if (message != NULL && capacity > 0) {
        snprintf(message, capacity, "%s", text);
    }
}

static void on_error(png_structp png, png_const_charp text) {
    error_sink *sink = (error_sink *)png_get_error_ptr(png);
    if (sink != NULL) {
        set_message(sink->message, sink->capacity, text);
    }
    png_longjmp(png, 1);
}

// Warnings (bad ancillary chunks, CRC errors in ancillary chunks, ...) are not failures; libpng
// would print them to stderr by default.
static void on_warning(png_structp png, png_const_charp text) {
    (void)png;
    (void)text;
}

static void read_from_memory(png_structp png, png_bytep out, size_t count) {
    memory_reader *reader = (memory_reader *)png_get_io_ptr(png);
    if (count > reader->size - reader->position) {
        png_error(png, "truncated PNG data (unexpected end of file)");
    }
    memcpy(out, reader->data + reader->position, count);
    reader->position += count;
}

static void write_to_memory(png_structp png, png_bytep bytes, size_t count) {
    memory_writer *writer = (memory_writer *)png_get_io_ptr(png);
    if (count > SIZE_MAX - writer->size) {
        png_error(png, "PNG output too large");
    }
    if (writer->size + count > writer->capacity) {
        size_t capacity = writer->capacity < 4096 ? 4096 : writer->capacity;
        while (capacity < writer->size + count) {
            capacity = capacity > SIZE_MAX / 2 ? SIZE_MAX : capacity * 2;
        }
        uint8_t *grown = (uint8_t *)realloc(writer->data, capacity);
        if (grown == NULL) {
            png_error(png, "out of memory while encoding PNG");
        }
        writer->data = grown;
        writer->capacity = capacity;
    }
    memcpy(writer->data + writer->size, bytes, count);
    writer->size += count;
}

static void flush_memory(png_structp png) { (void)png; }

static int has_signature(const uint8_t *data, size_t size) {
    return data != NULL && size >= 8 && png_sig_cmp((png_const_bytep)data, 0, 8) == 0;
}

// Limits applied to every read: ancillary chunks (text, ICC profiles, ...) are capped at 8 MB
// each and 1000 in number, so a small file cannot make libpng allocate without bound.
static void apply_read_limits(png_structp png) {
    png_set_user_limits(png, 0x7fffffff, 0x7fffffff);  // the caller caps the pixel count
    png_set_chunk_malloc_max(png, 8000000);
    png_set_chunk_cache_max(png, 1000);
}

sdpng_status sdpng_read_size(const uint8_t *data, size_t size, uint32_t *width, uint32_t *height,
                             char *message, size_t message_capacity) {
    if (!has_signature(data, size)) {
        set_message(message, message_capacity, "not a PNG file (bad signature)");
        return SDPNG_NOT_PNG;
    }
    error_sink sink = {message, message_capacity};
    memory_reader reader = {data, size, 0};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &sink, on_error, on_warning);
    if (png == NULL) {
        set_message(message, message_capacity, "out of memory");
        return SDPNG_NO_MEMORY;
    }
    png_infop info = png_create_info_struct(png);
    if (info == NULL) {
        png_destroy_read_struct(&png, NULL, NULL);
        set_message(message, message_capacity, "out of memory");
        return SDPNG_NO_MEMORY;
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, NULL);
        return SDPNG_CORRUPT;
    }
    apply_read_limits(png);
    png_set_read_fn(png, &reader, read_from_memory);
    png_read_info(png, info);
    *width = png_get_image_width(png, info);
    *height = png_get_image_height(png, info);
    png_destroy_read_struct(&png, &info, NULL);
    return SDPNG_OK;
}

sdpng_status sdpng_decode_rgb8(const uint8_t *data, size_t size, uint8_t *out, uint32_t width,
                               uint32_t height, char *message, size_t message_capacity) {
    if (!has_signature(data, size)) {
        set_message(message, message_capacity, "not a PNG file (bad signature)");
        return SDPNG_NOT_PNG;
    }
    if (out == NULL || width == 0 || height == 0) {
        set_message(message, message_capacity, "no output buffer");
        return SDPNG_BAD_ARGUMENT;
    }
    // Row pointers into the caller's buffer, made before setjmp (never reassigned after it).
    png_bytep *rows = (png_bytep *)malloc((size_t)height * sizeof(png_bytep));
    if (rows == NULL) {
        set_message(message, message_capacity, "out of memory");
        return SDPNG_NO_MEMORY;
    }
    for (uint32_t y = 0; y < height; y++) {
        rows[y] = out + (size_t)y * width * 3;
    }
    error_sink sink = {message, message_capacity};
    memory_reader reader = {data, size, 0};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &sink, on_error, on_warning);
    png_infop info = png == NULL ? NULL : png_create_info_struct(png);
    if (info == NULL) {
        png_destroy_read_struct(&png, NULL, NULL);
        free(rows);
        set_message(message, message_capacity, "out of memory");
        return SDPNG_NO_MEMORY;
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, NULL);
        free(rows);
        return SDPNG_CORRUPT;
    }
    apply_read_limits(png);
    png_set_read_fn(png, &reader, read_from_memory);
    png_read_info(png, info);

    png_uint_32 file_width = 0, file_height = 0;
    int bit_depth = 0, color_type = 0;
    png_get_IHDR(png, info, &file_width, &file_height, &bit_depth, &color_type, NULL, NULL, NULL);
    if (file_width != width || file_height != height) {
        png_error(png, "image size differs from the size read before decoding");
    }
    if (color_type == PNG_COLOR_TYPE_PALETTE) {
        png_set_palette_to_rgb(png);
        // A tRNS chunk makes palette expansion produce RGBA; Pillow's convert("RGB") ignores it.
        if (png_get_valid(png, info, PNG_INFO_tRNS)) {
            png_set_strip_alpha(png);
        }
    }
    if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8) {
        png_set_expand_gray_1_2_4_to_8(png);  // 2-bit 0..3 -> 0, 85, 170, 255 (as Pillow)
    }
    if (bit_depth == 16) {
        png_set_strip_16(png);  // keep the high byte: Pillow's "RGB;16B" unpacking does the same
    }
    if ((color_type & PNG_COLOR_MASK_ALPHA) != 0) {
        png_set_strip_alpha(png);  // drop alpha, as Pillow's RGBA -> RGB conversion does
    }
    if ((color_type & PNG_COLOR_MASK_COLOR) == 0) {
        png_set_gray_to_rgb(png);
    }
    (void)png_set_interlace_handling(png);
    png_read_update_info(png, info);
    if (png_get_bit_depth(png, info) != 8 || png_get_channels(png, info) != 3 ||
        png_get_rowbytes(png, info) != (size_t)width * 3) {
        png_error(png, "libpng did not produce 8-bit RGB rows");
    }
    png_read_image(png, rows);
    // png_read_end is not called: the pixels are complete once the last IDAT has been inflated
    // (and its CRC checked), so chunks after it, or a missing IEND, do not matter (as in Pillow).
    png_destroy_read_struct(&png, &info, NULL);
    free(rows);
    return SDPNG_OK;
}

sdpng_status sdpng_encode_rgb8(const uint8_t *pixels, uint32_t width, uint32_t height, int level,
                               uint8_t **out, size_t *out_size, char *message, size_t message_capacity) {
    *out = NULL;
    *out_size = 0;
    if (pixels == NULL || width == 0 || height == 0 || level < 0 || level > 9) {
        set_message(message, message_capacity, "bad arguments to PNG encoder");
        return SDPNG_BAD_ARGUMENT;
    }
    // Heap state made before setjmp: the growing output buffer and the row pointers.
    memory_writer *writer = (memory_writer *)calloc(1, sizeof(memory_writer));
    png_bytep *rows = (png_bytep *)malloc((size_t)height * sizeof(png_bytep));
    if (writer == NULL || rows == NULL) {
        free(writer);
        free(rows);
        set_message(message, message_capacity, "out of memory");
        return SDPNG_NO_MEMORY;
    }
    for (uint32_t y = 0; y < height; y++) {
        rows[y] = (png_bytep)(pixels + (size_t)y * width * 3);
    }
    error_sink sink = {message, message_capacity};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &sink, on_error, on_warning);
    png_infop info = png == NULL ? NULL : png_create_info_struct(png);
    if (info == NULL) {
        png_destroy_write_struct(&png, NULL);
        free(writer);
        free(rows);
        set_message(message, message_capacity, "out of memory");
        return SDPNG_NO_MEMORY;
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        free(writer->data);
        free(writer);
        free(rows);
        return SDPNG_CORRUPT;
    }
    png_set_write_fn(png, writer, write_to_memory, flush_memory);
    png_set_compression_level(png, level);
    png_set_IHDR(png, info, width, height, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    png_write_image(png, rows);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    *out = writer->data;
    *out_size = writer->size;
    free(writer);
    free(rows);
    return SDPNG_OK;
}

void sdpng_free(void *buffer) { free(buffer); }
