#include <stdio.h>
#include "core.h"
#include "lib.h"

unsigned lib_fingerprint(const char *name, unsigned version) {
  char buf[256];
  snprintf(buf, sizeof buf, "%s@%u", name, version);
  return core_checksum(buf);
}
