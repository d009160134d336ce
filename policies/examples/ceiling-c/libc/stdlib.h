/* The few libc functions wit-bindgen's C bindings use; runtime.c implements them. */
#pragma once
#include <stddef.h>
void *malloc(size_t size);
void *realloc(void *ptr, size_t size);
void free(void *ptr);
_Noreturn void abort(void);
