#include "core.h"

unsigned core_checksum(const char *text) {
  unsigned sum = 2166136261u;
  for (; *text; text++) sum = (sum ^ (unsigned char)*text) * 16777619u;
  return sum;
}
