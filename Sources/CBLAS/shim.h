#ifndef CLIPLAB_CBLAS_SHIM_H
#define CLIPLAB_CBLAS_SHIM_H
// pkg-config `openblas` puts OpenBLAS's own include directory on the path, so this is OpenBLAS's
// cblas.h, which also declares openblas_set_num_threads / openblas_get_num_threads /
// openblas_get_config / openblas_get_corename.
#include <cblas.h>
#endif
