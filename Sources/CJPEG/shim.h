#ifndef CLIPLAB_CJPEG_SHIM_H
#define CLIPLAB_CJPEG_SHIM_H
// libjpeg-turbo: decoding users' JPEG images. jpeglib.h needs size_t and FILE declared first.
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <setjmp.h>
#include <jpeglib.h>

// libjpeg reports a fatal error by calling `err->error_exit`, whose default prints and calls
// exit(). The only clean recovery is a longjmp back to a setjmp in a frame that is still live,
// which Swift cannot provide, so the whole decode runs here, in C, and reports failure as a return
// code and a message. Swift sees one function: cliplab_jpeg_decode_rgb.

/// libjpeg's error manager extended with the jump target and the formatted message.
typedef struct cliplab_jpeg_error_manager {
    struct jpeg_error_mgr base;
    jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
} cliplab_jpeg_error_manager;

/// Fatal errors: format libjpeg's message and jump back to cliplab_jpeg_decode_rgb.
static inline void cliplab_jpeg_error_exit(j_common_ptr cinfo) {
    cliplab_jpeg_error_manager *manager = (cliplab_jpeg_error_manager *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, manager->message);
    longjmp(manager->jump, 1);
}

/// Warnings (e.g. "premature end of data segment") are not printed; the decoded image stands.
static inline void cliplab_jpeg_output_message(j_common_ptr cinfo) { (void)cinfo; }

/// Decodes the JPEG in data[0..<size] to 8-bit interleaved RGB.
///
/// On success returns 0 and sets *pixels to a malloc'd buffer of width·height·3 bytes (the caller
/// frees it with free()), *width and *height. Grey images are expanded to RGB; CMYK and YCCK images
/// are refused unless `allow_cmyk`, and then converted with R = C·K/255 on Adobe-inverted data (what Photoshop and ImageMagick write) and
/// R = (255−C)(255−K)/255 otherwise. On failure returns 1, leaves *pixels NULL and writes a
/// NUL-terminated message of at most message_capacity bytes.
static inline int cliplab_jpeg_decode_rgb(
    const unsigned char *data, unsigned long size, unsigned char **pixels,
    unsigned int *width, unsigned int *height, int allow_cmyk, char *message, size_t message_capacity)
{
    struct jpeg_decompress_struct cinfo;
    cliplab_jpeg_error_manager manager;
    // Written after setjmp and read after a longjmp: volatile, so their values survive the jump.
    unsigned char *volatile out = NULL;
    unsigned char *volatile row = NULL;

    *pixels = NULL;
    *width = 0;
    *height = 0;
    if (message_capacity > 0) message[0] = 0;
    memset(&cinfo, 0, sizeof cinfo);
    cinfo.err = jpeg_std_error(&manager.base);
    manager.base.error_exit = cliplab_jpeg_error_exit;
    manager.base.output_message = cliplab_jpeg_output_message;
    manager.message[0] = 0;

    if (setjmp(manager.jump)) {
        if (message_capacity > 0) {
            strncpy(message, manager.message, message_capacity - 1);
            message[message_capacity - 1] = 0;
        }
        jpeg_destroy_decompress(&cinfo);
        free(out);
        free(row);
        return 1;
    }

    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, data, size);
    jpeg_read_header(&cinfo, TRUE);
    // Before anything is allocated: Huffman-coded scans spend at least one bit on each 8x8 block
    // of a component, so a file of `size` bytes holds at most 512 pixels a byte; past twice that,
    // the header lies or the file is cut short, and libjpeg would pad the missing data with grey
    // after allocating the whole image. (Arithmetic coding has no such floor; those files are
    // bounded by the 2^28 pixels below only.)
    if (!cinfo.arith_code && (size_t)cinfo.image_width * cinfo.image_height > (size_t)size * 1024) {
        snprintf(manager.message, sizeof manager.message,
                 "its header declares %u x %u pixels, more than a Huffman-coded file of %lu bytes can hold",
                 (unsigned)cinfo.image_width, (unsigned)cinfo.image_height, size);
        longjmp(manager.jump, 1);
    }
    int cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
    if (cmyk && !allow_cmyk) {
        snprintf(manager.message, sizeof manager.message,
                 "a CMYK JPEG%s: its colours need the colour profile it was made for, so it is refused; convert it to RGB first",
                 cinfo.jpeg_color_space == JCS_CMYK ? "" : " (YCCK-coded)");
        longjmp(manager.jump, 1);
    }
    cinfo.out_color_space = cmyk ? JCS_CMYK : JCS_EXT_RGB;
    jpeg_start_decompress(&cinfo);

    size_t w = cinfo.output_width, h = cinfo.output_height;
    size_t components = (size_t)cinfo.output_components;
    if (w == 0 || h == 0 || w * h > ((size_t)1 << 28) || (components != 3 && components != 4)) {
        snprintf(manager.message, sizeof manager.message,
                 "unsupported JPEG (%zu x %zu, %zu components)", w, h, components);
        longjmp(manager.jump, 1);
    }
    out = (unsigned char *)malloc(w * h * 3);
    row = (unsigned char *)malloc(w * components);
    if (out == NULL || row == NULL) {
        snprintf(manager.message, sizeof manager.message, "out of memory for %zu x %zu pixels", w, h);
        longjmp(manager.jump, 1);
    }
    int inverted = cinfo.saw_Adobe_marker;
    while (cinfo.output_scanline < cinfo.output_height) {
        size_t y = cinfo.output_scanline;
        JSAMPROW rows[1];
        rows[0] = cmyk ? row : out + y * w * 3;
        jpeg_read_scanlines(&cinfo, rows, 1);
        if (cmyk) {
            unsigned char *dst = out + y * w * 3;
            for (size_t x = 0; x < w; x++) {
                unsigned int c = row[4 * x], m = row[4 * x + 1], yy = row[4 * x + 2], k = row[4 * x + 3];
                if (!inverted) { c = 255 - c; m = 255 - m; yy = 255 - yy; k = 255 - k; }
                dst[3 * x] = (unsigned char)((c * k + 127) / 255);
                dst[3 * x + 1] = (unsigned char)((m * k + 127) / 255);
                dst[3 * x + 2] = (unsigned char)((yy * k + 127) / 255);
            }
        }
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    free(row);
    *pixels = out;
    *width = (unsigned int)w;
    *height = (unsigned int)h;
    return 0;
}

/// Encodes width·height 8-bit interleaved RGB pixels as a baseline JPEG of `quality` (1…100, 4:2:0).
/// On success returns 0 and sets *out to a malloc'd buffer of *out_size bytes (the caller frees it
/// with free()); on failure returns 1 and writes a message.
static inline int cliplab_jpeg_encode_rgb(
    const unsigned char *pixels, unsigned int width, unsigned int height, int quality,
    unsigned char **out, unsigned long *out_size, char *message, size_t message_capacity)
{
    struct jpeg_compress_struct cinfo;
    cliplab_jpeg_error_manager manager;
    unsigned char *volatile buffer = NULL;
    unsigned long size = 0;

    *out = NULL;
    *out_size = 0;
    if (message_capacity > 0) message[0] = 0;
    memset(&cinfo, 0, sizeof cinfo);
    cinfo.err = jpeg_std_error(&manager.base);
    manager.base.error_exit = cliplab_jpeg_error_exit;
    manager.base.output_message = cliplab_jpeg_output_message;
    manager.message[0] = 0;
    if (setjmp(manager.jump)) {
        if (message_capacity > 0) {
            strncpy(message, manager.message, message_capacity - 1);
            message[message_capacity - 1] = 0;
        }
        jpeg_destroy_compress(&cinfo);
        free(buffer);
        return 1;
    }
    jpeg_create_compress(&cinfo);
    unsigned char *dest = NULL;
    jpeg_mem_dest(&cinfo, &dest, &size);
    cinfo.image_width = width;
    cinfo.image_height = height;
    cinfo.input_components = 3;
    cinfo.in_color_space = JCS_RGB;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, quality, TRUE);
    jpeg_start_compress(&cinfo, TRUE);
    while (cinfo.next_scanline < cinfo.image_height) {
        JSAMPROW rows[1];
        rows[0] = (JSAMPROW)(pixels + (size_t)cinfo.next_scanline * width * 3);
        jpeg_write_scanlines(&cinfo, rows, 1);
    }
    jpeg_finish_compress(&cinfo);
    buffer = dest;
    jpeg_destroy_compress(&cinfo);
    *out = buffer;
    *out_size = size;
    return 0;
}

#endif
