// {{name}}: a runway throttle in C. It admits a job while the pool has fewer active runners
// (running or booting) than the pool setting `max-active` (default and ceiling: the pool's
// max-running); otherwise the job waits for a slot.
#include <stdbool.h>
#include <stdint.h>
#include "throttle.h"
#include "libc/stdlib.h"
#include "libc/string.h"

typedef exports_runway_policy_throttling_job_t job_t;
typedef exports_runway_policy_throttling_pool_t pool_t;
typedef exports_runway_policy_throttling_load_t load_t;
typedef exports_runway_policy_throttling_throttle_decision_t decision_t;

// Seconds after which a waiting job is asked about again, if no slot was released sooner.
#define RECHECK_SECONDS 30

// A growing reason string.
typedef struct {
  char buf[256];
  size_t len;
} text_t;

static void put(text_t *t, const char *s, size_t n) {
  while (n-- && t->len < sizeof t->buf) t->buf[t->len++] = *s++;
}
static void put_cstr(text_t *t, const char *s) { put(t, s, strlen(s)); }
static void put_str(text_t *t, const throttle_string_t *s) { put(t, (const char *)s->ptr, s->len); }
static void put_u32(text_t *t, uint32_t v) {
  char digits[10];
  size_t n = 0;
  do { digits[n++] = (char)('0' + v % 10); v /= 10; } while (v);
  while (n) put(t, &digits[--n], 1);
}
// The reason as a string the host takes ownership of.
static throttle_string_t finish(const text_t *t) {
  throttle_string_t s = {.ptr = malloc(t->len), .len = t->len};
  memcpy(s.ptr, t->buf, t->len);
  return s;
}

static bool equals(const throttle_string_t *s, const char *lit) {
  size_t n = strlen(lit);
  return s->len == n && memcmp(s->ptr, lit, n) == 0;
}

// The pool setting `key` as a number, or `fallback` when absent or not a number.
static uint32_t param_u32(const pool_t *pool, const char *key, uint32_t fallback) {
  for (size_t i = 0; i < pool->params.len; i++) {
    const throttle_tuple2_string_string_t *kv = &pool->params.ptr[i];
    if (!equals(&kv->f0, key)) continue;
    if (kv->f1.len == 0 || kv->f1.len > 9) return fallback;
    uint32_t v = 0;
    for (size_t j = 0; j < kv->f1.len; j++) {
      uint8_t c = kv->f1.ptr[j];
      if (c < '0' || c > '9') return fallback;
      v = v * 10 + (c - '0');
    }
    return v;
  }
  return fallback;
}

void exports_runway_policy_throttling_decide(job_t *job, pool_t *pool, load_t *load, decision_t *ret) {
  (void)job;
  uint32_t ceiling = param_u32(pool, "max-active", pool->max_running);
  if (ceiling > pool->max_running) ceiling = pool->max_running;
  uint32_t active = load->pool.running + load->pool.booting;
  text_t reason = {.len = 0};
  put_u32(&reason, active);
  put_cstr(&reason, " of ");
  put_u32(&reason, ceiling);
  put_cstr(&reason, " runners active in pool ");
  put_str(&reason, &pool->name);
  if (active < ceiling) {
    ret->tag = EXPORTS_RUNWAY_POLICY_THROTTLING_THROTTLE_DECISION_ADMIT;
    ret->val.admit = finish(&reason);
    return;
  }
  put_cstr(&reason, ": wait for a slot");
  ret->tag = EXPORTS_RUNWAY_POLICY_THROTTLING_THROTTLE_DECISION_WAIT;
  ret->val.wait.priority = 0;
  ret->val.wait.recheck_after_seconds = RECHECK_SECONDS;
  ret->val.wait.reason = finish(&reason);
}
