/*
 * qsort and bsearch. qsort is an introsort: quicksort with a median-of-three
 * pivot, insertion sort for short runs, and heapsort when the recursion gets
 * too deep, so no input takes more than O(n log n) comparisons.
 */
#include <stdlib.h>

#include "vmlet.h"

typedef struct {
  size_t size;
  int (*cmp)(const void *, const void *, void *);
  void *arg;
} sorter;

#define NO_PATTERNS __attribute__((optimize("no-tree-loop-distribute-patterns")))

NO_PATTERNS static void swap(char *a, char *b, size_t size) {
  for (; size >= 8; size -= 8, a += 8, b += 8) {
    uint64_t t;
    memcpy(&t, a, 8);
    memcpy(a, b, 8);
    memcpy(b, &t, 8);
  }
  for (; size; size--, a++, b++) {
    char t = *a;
    *a = *b;
    *b = t;
  }
}

static int less(const sorter *s, const char *a, const char *b) { return s->cmp(a, b, s->arg) < 0; }

static void insertion_sort(const sorter *s, char *base, size_t n) {
  for (size_t i = 1; i < n; i++)
    for (char *p = base + i * s->size; p > base && less(s, p, p - s->size); p -= s->size) swap(p, p - s->size, s->size);
}

static void sift_down(const sorter *s, char *base, size_t root, size_t n) {
  for (size_t child; (child = 2 * root + 1) < n; root = child) {
    if (child + 1 < n && less(s, base + child * s->size, base + (child + 1) * s->size)) child++;
    if (!less(s, base + root * s->size, base + child * s->size)) return;
    swap(base + root * s->size, base + child * s->size, s->size);
  }
}

static void heap_sort(const sorter *s, char *base, size_t n) {
  for (size_t i = n / 2; i-- > 0;) sift_down(s, base, i, n);
  for (size_t end = n; end-- > 1;) {
    swap(base, base + end * s->size, s->size);
    sift_down(s, base, 0, end);
  }
}

/* Moves the median of first, middle and last to the first position. */
static void median_to_front(const sorter *s, char *base, size_t n) {
  char *a = base + s->size, *b = base + (n / 2) * s->size, *c = base + (n - 1) * s->size;
  if (less(s, b, a)) swap(a, b, s->size);
  if (less(s, c, b)) swap(b, c, s->size);
  if (less(s, b, a)) swap(a, b, s->size);
  swap(base, b, s->size);
}

static void intro_sort(const sorter *s, char *base, size_t n, int depth) {
  while (n > 16) {
    if (depth-- == 0) {
      heap_sort(s, base, n);
      return;
    }
    median_to_front(s, base, n);
    /* Hoare partition around the pivot at base[0]. */
    size_t i = 0, j = n;
    for (;;) {
      while (less(s, base + (++i) * s->size, base) && i < n - 1) {
      }
      while (less(s, base, base + (--j) * s->size)) {
      }
      if (i >= j) break;
      swap(base + i * s->size, base + j * s->size, s->size);
    }
    swap(base, base + j * s->size, s->size);
    /* Recurse into the smaller side, loop on the larger: O(log n) stack. */
    if (j < n - j - 1) {
      intro_sort(s, base, j, depth);
      base += (j + 1) * s->size, n -= j + 1;
    } else {
      intro_sort(s, base + (j + 1) * s->size, n - j - 1, depth);
      n = j;
    }
  }
  insertion_sort(s, base, n);
}

void qsort_r(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *, void *), void *arg) {
  if (n < 2 || size == 0) return;
  sorter s = {size, cmp, arg};
  int depth = 2 * (64 - __builtin_clzll(n));
  intro_sort(&s, base, n, depth);
}

static int call_plain(const void *a, const void *b, void *cmp) {
  return ((int (*)(const void *, const void *))cmp)(a, b);
}

void qsort(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *)) {
  qsort_r(base, n, size, call_plain, (void *)cmp);
}

void *bsearch(const void *key, const void *base, size_t n, size_t size, int (*cmp)(const void *, const void *)) {
  const char *lo = base;
  while (n > 0) {
    const char *mid = lo + (n / 2) * size;
    int c = cmp(key, mid);
    if (c == 0) return (void *)mid;
    if (c > 0) lo = mid + size, n -= n / 2 + 1;
    else n /= 2;
  }
  return NULL;
}
