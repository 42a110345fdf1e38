#ifndef CLIPLAB_CPNG_SHIM_H
#define CLIPLAB_CPNG_SHIM_H
// libpng: decoding users' PNG images (WebDataset shards, CSV datasets, `clip embed`).
#include <png.h>
#endif
