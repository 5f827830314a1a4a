#include <stdio.h>
#include "lib.h"

int main(void) {
  printf("fingerprint %08x\n", lib_fingerprint("clyde", 1));
  return 0;
}
