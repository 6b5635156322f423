// Long contexts (self-attention): 6 query rows x 64 keys per tile, 8 micro-tiles per task.
#define ROWS 6
#define KV 4
#define TILES 8
#define VARIANT 6x64
#include "flash_kernel.h"
