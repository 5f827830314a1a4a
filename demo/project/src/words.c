/* Word frequencies: lower-cased words, counted, then ordered by count and byte order. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clyde_demo.h"

#define MAX_WORDS 256
#define MAX_LEN 32

struct entry {
    char word[MAX_LEN];
    unsigned count;
};

static int by_count_then_word(const void *pa, const void *pb) {
    const struct entry *a = pa, *b = pb;
    if (a->count != b->count) return a->count > b->count ? -1 : 1;
    return strcmp(a->word, b->word);
}

size_t cd_top_words(const char *text, unsigned top, char *out, size_t out_len) {
    static struct entry entries[MAX_WORDS];
    size_t used = 0, n = 0, i, len;
    char word[MAX_LEN];
    const char *p = text;
    while (*p) {
        while (*p && !isalpha((unsigned char)*p)) p++;
        len = 0;
        while (*p && isalpha((unsigned char)*p)) {
            if (len + 1 < MAX_LEN) word[len++] = (char)tolower((unsigned char)*p);
            p++;
        }
        if (len == 0) continue;
        word[len] = '\0';
        for (i = 0; i < n && strcmp(entries[i].word, word) != 0; i++) continue;
        if (i == n) {
            if (n == MAX_WORDS) continue;
            memcpy(entries[n].word, word, len + 1);
            entries[n++].count = 0;
        }
        entries[i].count++;
    }
    qsort(entries, n, sizeof entries[0], by_count_then_word);
    if (out_len) out[0] = '\0';
    for (i = 0; i < n && i < top; i++) {
        int w = snprintf(out + used, out_len - used, "%s%s:%u", i ? " " : "", entries[i].word,
                         entries[i].count);
        if (w < 0 || (size_t)w >= out_len - used) break;
        used += (size_t)w;
    }
    return used;
}
