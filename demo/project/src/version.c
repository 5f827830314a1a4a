/* Version information, from the header the Makefile generates into out/include. */
#include "clyde_demo.h"
#include "version.h"

const char *cd_version(void) { return CLYDE_DEMO_VERSION; }

unsigned cd_units(void) { return CLYDE_DEMO_UNITS; }
