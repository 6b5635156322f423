// libjpeg-turbo's TurboJPEG API (2.1 in Debian 12's libturbojpeg0-dev). It reports errors as
// return codes (tjGetErrorStr2/tjGetErrorCode), so Swift calls it directly: no setjmp needed.
#include <turbojpeg.h>
