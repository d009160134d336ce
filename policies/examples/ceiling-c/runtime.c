// A freestanding runtime for a policy: no libc, no WASI, so the module imports nothing.
// runway gives every call a fresh instance, so a bump allocator that never frees is enough.
#include <stdint.h>
#include "libc/stdlib.h"
#include "libc/string.h"

extern unsigned char __heap_base;
static uintptr_t heap_top = 0;

void *malloc(size_t size) {
  if (heap_top == 0) heap_top = (uintptr_t)&__heap_base;
  uintptr_t start = (heap_top + 15) & ~(uintptr_t)15;
  uintptr_t end = start + size;
  uintptr_t limit = __builtin_wasm_memory_size(0) * 65536;
  if (end > limit) {
    size_t pages = (end - limit + 65535) / 65536;
    if (__builtin_wasm_memory_grow(0, pages) == (size_t)-1) return 0;
  }
  heap_top = end;
  return (void *)start;
}

void *realloc(void *ptr, size_t size) {
  void *fresh = malloc(size);
  // The old size is unknown; copying `size` bytes may read past the old block but stays
  // inside linear memory (the new block lies above it).
  if (fresh && ptr) memcpy(fresh, ptr, size);
  return fresh;
}

void free(void *ptr) { (void)ptr; }

_Noreturn void abort(void) { __builtin_trap(); }

void *memcpy(void *dst, const void *src, size_t n) {
  unsigned char *d = dst;
  const unsigned char *s = src;
  while (n--) *d++ = *s++;
  return dst;
}

void *memset(void *dst, int c, size_t n) {
  unsigned char *d = dst;
  while (n--) *d++ = (unsigned char)c;
  return dst;
}

int memcmp(const void *a, const void *b, size_t n) {
  const unsigned char *x = a, *y = b;
  for (; n; n--, x++, y++)
    if (*x != *y) return *x - *y;
  return 0;
}

size_t strlen(const char *s) {
  size_t n = 0;
  while (s[n]) n++;
  return n;
}
