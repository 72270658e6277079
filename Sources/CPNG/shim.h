// libpng 1.6 simplified write API (png_image_write_to_file).
#include <png.h>
