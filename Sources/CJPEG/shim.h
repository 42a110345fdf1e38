#ifndef CLIPLAB_CJPEG_SHIM_H
#define CLIPLAB_CJPEG_SHIM_H
// libjpeg-turbo: decoding users' JPEG images. jpeglib.h needs size_t and FILE declared first.
#include <stddef.h>
#include <stdio.h>
#include <jpeglib.h>
#endif
