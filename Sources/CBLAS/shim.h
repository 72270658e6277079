// OpenBLAS's cblas.h (found through pkg-config's include path) also declares
// openblas_set_num_threads, openblas_get_config and openblas_get_corename.
#include <cblas.h>
