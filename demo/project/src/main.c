/* demo: prints a few digests, or with --self-test checks them against known answers. */
#include <stdio.h>
#include <string.h>

#include "clyde_demo.h"
#include "version.h"

static const char TEXT[] =
    "The cache keeps what the build made. The build makes what the cache lacks. "
    "A key names the sources; the store keeps the blobs; the runner keeps the store.";

static int check(const char *what, const char *got, const char *want) {
    if (strcmp(got, want) == 0) return 0;
    fprintf(stderr, "self-test: %s: got %s, want %s\n", what, got, want);
    return 1;
}

static int self_test(void) {
    unsigned char digest[32];
    char hex[65], b64[16], crc[9];
    int failures = 0;
    cd_sha256((const unsigned char *)"abc", 3, digest);
    cd_hex(digest, 32, hex);
    failures += check("sha256(abc)", hex,
                      "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    cd_base64((const unsigned char *)"foobar", 6, b64);
    failures += check("base64(foobar)", b64, "Zm9vYmFy");
    sprintf(crc, "%08lx", (unsigned long)cd_crc32((const unsigned char *)"123456789", 9));
    failures += check("crc32(123456789)", crc, "cbf43926");
    failures += check("version", cd_version(), CLYDE_DEMO_VERSION);
    printf("self-test: %s\n", failures ? "FAILED" : "ok");
    return failures ? 1 : 0;
}

int main(int argc, char **argv) {
    unsigned char digest[32];
    char hex[65], b64[64], words[256];
    if (argc > 1 && strcmp(argv[1], "--self-test") == 0) return self_test();
    if (argc > 1 && strcmp(argv[1], "--version") == 0) {
        printf("%s\n", cd_version());
        return 0;
    }
    printf("clyde-demo %s (%u translation units)\n", cd_version(), cd_units());
    cd_sha256((const unsigned char *)TEXT, sizeof TEXT - 1, digest);
    cd_hex(digest, 32, hex);
    printf("sha256(text)   %s\n", hex);
    printf("crc32(text)    %08lx\n", (unsigned long)cd_crc32((const unsigned char *)TEXT, sizeof TEXT - 1));
    cd_base64((const unsigned char *)"clyde-cache", 11, b64);
    printf("base64         %s\n", b64);
    printf("matrix         %llu\n", (unsigned long long)cd_matrix_checksum(48, 4));
    cd_top_words(TEXT, 4, words, sizeof words);
    printf("top words      %s\n", words);
    return 0;
}
