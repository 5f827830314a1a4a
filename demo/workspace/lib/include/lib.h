#ifndef LIB_H
#define LIB_H
unsigned lib_fingerprint(const char *name, unsigned version);
#endif
