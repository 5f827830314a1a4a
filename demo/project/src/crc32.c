/* CRC-32 (IEEE 802.3, reflected), with the table built on first use. */
#include "clyde_demo.h"

static uint32_t table[256];
static int table_ready;

static void build_table(void) {
    uint32_t n, c;
    int k;
    for (n = 0; n < 256; n++) {
        c = n;
        for (k = 0; k < 8; k++) c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
        table[n] = c;
    }
    table_ready = 1;
}

uint32_t cd_crc32(const unsigned char *data, size_t len) {
    uint32_t c = 0xffffffffu;
    size_t i;
    if (!table_ready) build_table();
    for (i = 0; i < len; i++) c = table[(c ^ data[i]) & 0xff] ^ (c >> 8);
    return c ^ 0xffffffffu;
}
