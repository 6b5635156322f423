// libpng 1.6 from Debian's libpng-dev. Swift code never calls libpng directly: libpng reports
// errors by longjmp, which must not cross Swift frames, so every call goes through CPNGShim.
#include <png.h>
