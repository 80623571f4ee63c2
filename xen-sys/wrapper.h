/* The public headers that xen-sys binds, seen the way the toolstack sees
 * them (__XEN_TOOLS__ gives the domctl interface and the latest guest ABI). */
#define __XEN_TOOLS__ 1
#include <stdint.h>
#include "xen.h"
#include "features.h"
#include "version.h"
#include "memory.h"
#include "domctl.h"
#include "elfnote.h"
