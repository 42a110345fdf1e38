#ifndef CLIPLAB_CZLIB_SHIM_H
#define CLIPLAB_CZLIB_SHIM_H
// zlib: gzip reading (the CLIP BPE merges file) and deflate + CRC-32 (PNG writing).
#include <zlib.h>
#endif
