#ifndef CORE_H
#define CORE_H
unsigned core_checksum(const char *text);
#endif
