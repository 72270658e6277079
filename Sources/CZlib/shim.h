// zlib: gzip reading for .nii.gz files.
#include <zlib.h>
