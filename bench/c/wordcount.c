/*
 * wordcount.c: the naive single-threaded word count that issue 10 uses as
 * its yardstick. No windows, no threads, no SIMD: map the file, walk it one
 * byte at a time, split on ASCII whitespace (space, \t, \n, \r, \f: what
 * Rust's split_ascii_whitespace and the engine split on), hash each word
 * with FNV-1a while walking it, and count it in an open-addressing table
 * (linear probing, doubled at half full) whose slots point into the mapping.
 *
 *   cc -O2 -o wordcount wordcount.c
 *   ./wordcount FILE
 *
 * stdout, deterministic for a given file:
 *   words N        every word counted
 *   distinct N     distinct words
 *   lines N        lines (a last line without a newline counts)
 *   bytes N        bytes of the file
 *   top WORD N     the ten most frequent words, most frequent first, ties
 *                  by byte order of the word
 * stderr: "seconds S", the time from opening the file to the top ten
 * (mapping, counting, ranking; not the process start nor the printing).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define FNV_OFFSET 14695981039346656037ULL
#define FNV_PRIME 1099511628211ULL
#define TOP 10

struct slot {
    const unsigned char *word; /* into the mapping; NULL: empty */
    uint64_t hash;
    uint64_t count;
    uint32_t len;
};

static struct slot *table;
static size_t capacity = 1 << 16; /* a power of two */
static size_t used;

static unsigned char space[256];

static void die(const char *what, const char *path) {
    fprintf(stderr, "wordcount: %s: %s\n", path ? path : "", what);
    exit(1);
}

static void grow(void) {
    size_t old = capacity;
    struct slot *from = table;
    capacity *= 2;
    table = calloc(capacity, sizeof *table);
    if (!table) die("out of memory", NULL);
    for (size_t i = 0; i < old; i++) {
        if (!from[i].word) continue;
        size_t j = from[i].hash & (capacity - 1);
        while (table[j].word) j = (j + 1) & (capacity - 1);
        table[j] = from[i];
    }
    free(from);
}

static void add(const unsigned char *word, uint32_t len, uint64_t hash) {
    size_t j = hash & (capacity - 1);
    for (;;) {
        struct slot *s = &table[j];
        if (!s->word) break;
        if (s->hash == hash && s->len == len && memcmp(s->word, word, len) == 0) {
            s->count++;
            return;
        }
        j = (j + 1) & (capacity - 1);
    }
    table[j] = (struct slot){word, hash, 1, len};
    if (++used * 2 > capacity) grow();
}

/* a ranks before b: a larger count, or the same count and a smaller word. */
static int before(const struct slot *a, const struct slot *b) {
    if (a->count != b->count) return a->count > b->count;
    uint32_t n = a->len < b->len ? a->len : b->len;
    int c = memcmp(a->word, b->word, n);
    return c < 0 || (c == 0 && a->len < b->len);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: wordcount FILE\n");
        return 2;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int fd = open(argv[1], O_RDONLY);
    if (fd < 0) die("cannot open", argv[1]);
    struct stat st;
    if (fstat(fd, &st) != 0) die("cannot stat", argv[1]);
    size_t n = (size_t)st.st_size;
    const unsigned char *p = NULL;
    if (n > 0) {
        p = mmap(NULL, n, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) die("cannot map", argv[1]);
        madvise((void *)p, n, MADV_SEQUENTIAL);
    }
    table = calloc(capacity, sizeof *table);
    if (!table) die("out of memory", NULL);
    space[' '] = space['\t'] = space['\n'] = space['\r'] = space['\f'] = 1;

    uint64_t words = 0, lines = 0, hash = FNV_OFFSET;
    size_t start = 0;
    int in_word = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = p[i];
        if (space[c]) {
            if (in_word) {
                add(p + start, (uint32_t)(i - start), hash);
                words++;
                in_word = 0;
            }
            lines += c == '\n';
        } else {
            if (!in_word) {
                in_word = 1;
                start = i;
                hash = FNV_OFFSET;
            }
            hash = (hash ^ c) * FNV_PRIME;
        }
    }
    if (in_word) {
        add(p + start, (uint32_t)(n - start), hash);
        words++;
    }
    if (n > 0 && p[n - 1] != '\n') lines++;

    struct slot *top[TOP];
    int ranked = 0;
    for (size_t i = 0; i < capacity; i++) {
        struct slot *s = &table[i];
        if (!s->word) continue;
        if (ranked == TOP && !before(s, top[TOP - 1])) continue;
        int k = ranked < TOP ? ranked++ : TOP - 1;
        while (k > 0 && before(s, top[k - 1])) {
            top[k] = top[k - 1];
            k--;
        }
        top[k] = s;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);

    printf("words %llu\ndistinct %llu\nlines %llu\nbytes %llu\n", (unsigned long long)words,
           (unsigned long long)used, (unsigned long long)lines, (unsigned long long)n);
    for (int k = 0; k < ranked; k++)
        printf("top %.*s %llu\n", (int)top[k]->len, (const char *)top[k]->word,
               (unsigned long long)top[k]->count);
    fprintf(stderr, "seconds %.9f\n",
            (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    return ferror(stdout) ? 1 : 0;
}
