/*
 * ysb.c: a careful single-threaded Yahoo Streaming Benchmark, the C
 * reference of issue 10. Map the NDJSON events; for each line find the three
 * members the query reads with memmem (glibc's is vectorized), keep the
 * events whose event_type is "view", map ad_id to its campaign through a
 * hash table loaded from the campaigns CSV, and count views per campaign and
 * 10 s tumbling window of event_time.
 *
 *   cc -O2 -o ysb ysb.c
 *   ./ysb EVENTS.ndjson CAMPAIGNS.csv
 *
 * Both spellings of an event are read: {"a":"b",...} and {"a": "b", ...}
 * (whitespace around the colon). A member name is a match only when a colon
 * follows it, so a value that happens to spell a name is not taken for one.
 * event_time is integer milliseconds, quoted or not.
 *
 * CAMPAIGNS.csv: a header line, then "ad_id,campaign_id" lines.
 *
 * stdout: what `engine run --input EVENTS --key-col ad_id --time-col
 * event_time --where event_type=view --lookup CAMPAIGNS --batch 10s
 * --output csv` writes: the header "window_end,key,count", then one line per
 * window and campaign with a view, by window end, then campaign (byte order).
 * stderr: "records R views V filtered F unmatched U malformed M seconds S":
 * lines read, views counted, lines that are not views (no event_type, or
 * another one), views whose ad is in no campaign, views without a readable
 * ad_id or event_time, and the time from opening the events to the sorted
 * counts (not loading the table, starting the process or printing).
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

#define WINDOW_MS 10000
#define FNV_OFFSET 14695981039346656037ULL
#define FNV_PRIME 1099511628211ULL

static void die(const char *what, const char *path) {
    fprintf(stderr, "ysb: %s: %s\n", path ? path : "", what);
    exit(1);
}

static void *alloc(size_t n) {
    void *p = calloc(n, 1);
    if (!p) die("out of memory", NULL);
    return p;
}

static uint64_t fnv(const char *s, size_t n) {
    uint64_t h = FNV_OFFSET;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * FNV_PRIME;
    return h;
}

/* ---- strings -> numbers: open addressing over the table file's bytes ---- */

struct entry {
    const char *s; /* NULL: empty */
    uint32_t len;
    uint32_t value;
};

struct table {
    struct entry *slots;
    size_t capacity; /* a power of two, at least twice the entries */
};

static struct entry *slot(const struct table *t, const char *s, size_t len) {
    size_t j = fnv(s, len) & (t->capacity - 1);
    while (t->slots[j].s && !(t->slots[j].len == len && memcmp(t->slots[j].s, s, len) == 0))
        j = (j + 1) & (t->capacity - 1);
    return &t->slots[j];
}

static struct table ads;       /* ad id -> campaign number */
static struct table campaign_ids; /* campaign id -> campaign number */
static const char **campaign_name;
static uint32_t *campaign_len;
static uint32_t campaigns;

static const char *map_file(const char *path, size_t *n) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) die("cannot open", path);
    struct stat st;
    if (fstat(fd, &st) != 0) die("cannot stat", path);
    *n = (size_t)st.st_size;
    if (*n == 0) return "";
    const char *p = mmap(NULL, *n, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) die("cannot map", path);
    close(fd);
    return p;
}

static void load_campaigns(const char *path) {
    size_t n;
    const char *p = map_file(path, &n), *end = p + n;
    size_t lines = 1;
    for (const char *q = p; (q = memchr(q, '\n', end - q)); q++) lines++;
    size_t capacity = 16;
    while (capacity < 2 * lines) capacity *= 2;
    ads = (struct table){alloc(capacity * sizeof(struct entry)), capacity};
    campaign_ids = (struct table){alloc(capacity * sizeof(struct entry)), capacity};
    campaign_name = alloc(lines * sizeof *campaign_name);
    campaign_len = alloc(lines * sizeof *campaign_len);
    const char *line = memchr(p, '\n', n); /* skip the header */
    line = line ? line + 1 : end;
    while (line < end) {
        const char *eol = memchr(line, '\n', end - line);
        if (!eol) eol = end;
        size_t width = (size_t)(eol - line);
        if (width > 0 && line[width - 1] == '\r') width--;
        const char *stop = line + width;
        const char *comma = memchr(line, ',', width);
        if (comma) {
            const char *name = comma + 1;
            uint32_t len = (uint32_t)(stop - name);
            struct entry *c = slot(&campaign_ids, name, len);
            if (!c->s) {
                *c = (struct entry){name, len, campaigns};
                campaign_name[campaigns] = name;
                campaign_len[campaigns++] = len;
            }
            struct entry *a = slot(&ads, line, comma - line);
            *a = (struct entry){line, (uint32_t)(comma - line), c->value};
        } else if (stop > line) {
            die("a line without a comma", path);
        }
        line = eol + 1;
    }
}

/* ---- counts per (window end, campaign) ---- */

struct count {
    int64_t end;
    uint32_t campaign; /* UINT32_MAX: empty */
    uint64_t count;
};

static struct count *counts;
static size_t count_capacity = 1 << 12, count_used;

static struct count *find(struct count *in, size_t capacity, int64_t end, uint32_t campaign) {
    uint64_t h = ((uint64_t)end * 0x9E3779B97F4A7C15ULL) ^ (campaign * 0xC2B2AE3D27D4EB4FULL);
    size_t j = (h ^ (h >> 29)) & (capacity - 1);
    while (in[j].campaign != UINT32_MAX && !(in[j].end == end && in[j].campaign == campaign))
        j = (j + 1) & (capacity - 1);
    return &in[j];
}

static struct count *empty_counts(size_t capacity) {
    struct count *c = alloc(capacity * sizeof *c);
    for (size_t i = 0; i < capacity; i++) c[i].campaign = UINT32_MAX;
    return c;
}

static void bump(int64_t end, uint32_t campaign) {
    struct count *c = find(counts, count_capacity, end, campaign);
    if (c->campaign != UINT32_MAX) {
        c->count++;
        return;
    }
    *c = (struct count){end, campaign, 1};
    if (++count_used * 2 > count_capacity) {
        struct count *old = counts;
        size_t old_capacity = count_capacity;
        count_capacity *= 2;
        counts = empty_counts(count_capacity);
        for (size_t i = 0; i < old_capacity; i++)
            if (old[i].campaign != UINT32_MAX)
                *find(counts, count_capacity, old[i].end, old[i].campaign) = old[i];
        free(old);
    }
}

static int by_end_then_campaign(const void *a, const void *b) {
    const struct count *x = a, *y = b;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    uint32_t lx = campaign_len[x->campaign], ly = campaign_len[y->campaign];
    int c = memcmp(campaign_name[x->campaign], campaign_name[y->campaign], lx < ly ? lx : ly);
    return c ? c : (lx > ly) - (lx < ly);
}

/* ---- the events ---- */

static int blank(char c) { return c == ' ' || c == '\t' || c == '\r'; }

/* The value of member `name` (quoted, e.g. "\"ad_id\"") in [line, end): a
 * pointer to its first byte after the colon and any whitespace, or NULL. */
static const char *member(const char *line, const char *end, const char *name, size_t len) {
    const char *from = line;
    while (from < end) {
        const char *at = memmem(from, end - from, name, len);
        if (!at) return NULL;
        const char *v = at + len;
        while (v < end && blank(*v)) v++;
        if (v < end && *v == ':') {
            v++;
            while (v < end && blank(*v)) v++;
            return v;
        }
        from = at + 1;
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: ysb EVENTS.ndjson CAMPAIGNS.csv\n");
        return 2;
    }
    load_campaigns(argv[2]);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    size_t n;
    const char *p = map_file(argv[1], &n), *end = p + n;
    if (n > 0) madvise((void *)p, n, MADV_SEQUENTIAL);
    counts = empty_counts(count_capacity);

    uint64_t records = 0, views = 0, filtered = 0, unmatched = 0, malformed = 0;
    for (const char *line = p; line < end;) {
        const char *eol = memchr(line, '\n', end - line);
        if (!eol) eol = end;
        records++;
        const char *type = member(line, eol, "\"event_type\"", 12);
        if (!type || eol - type < 6 || memcmp(type, "\"view\"", 6) != 0) {
            filtered++;
        } else {
            const char *ad = member(line, eol, "\"ad_id\"", 7);
            const char *time = member(line, eol, "\"event_time\"", 12);
            const char *ad_end = ad && ad < eol && *ad == '"' ? memchr(ad + 1, '"', eol - ad - 1) : NULL;
            int64_t t = 0;
            int digits = 0;
            if (time && time < eol && *time == '"') time++;
            for (; time && time < eol && *time >= '0' && *time <= '9' && digits < 18; time++, digits++)
                t = t * 10 + (*time - '0');
            if (!ad_end || digits == 0) {
                malformed++;
            } else {
                struct entry *a = slot(&ads, ad + 1, ad_end - ad - 1);
                if (!a->s) {
                    unmatched++;
                } else {
                    views++;
                    bump(t / WINDOW_MS * WINDOW_MS + WINDOW_MS, a->value);
                }
            }
        }
        line = eol + 1;
    }
    struct count *rows = alloc((count_used + 1) * sizeof *rows);
    size_t m = 0;
    for (size_t i = 0; i < count_capacity; i++)
        if (counts[i].campaign != UINT32_MAX) rows[m++] = counts[i];
    qsort(rows, m, sizeof *rows, by_end_then_campaign);
    clock_gettime(CLOCK_MONOTONIC, &t1);

    fputs("window_end,key,count\n", stdout);
    for (size_t i = 0; i < m; i++)
        printf("%lld,%.*s,%llu\n", (long long)rows[i].end, (int)campaign_len[rows[i].campaign],
               campaign_name[rows[i].campaign], (unsigned long long)rows[i].count);
    fprintf(stderr, "records %llu views %llu filtered %llu unmatched %llu malformed %llu seconds %.9f\n",
            (unsigned long long)records, (unsigned long long)views, (unsigned long long)filtered,
            (unsigned long long)unmatched, (unsigned long long)malformed,
            (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    return ferror(stdout) ? 1 : 0;
}
