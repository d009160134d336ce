// {{name}}: a runway router in C. It runs a self-hosted job in the first pool whose runners
// offer every label the job asks for, and leaves every other job alone.
#include <stdbool.h>
#include <stddef.h>
#include "router.h"
#include "libc/stdlib.h"
#include "libc/string.h"

typedef exports_runway_policy_routing_job_t job_t;
typedef exports_runway_policy_routing_pool_t pool_t;
typedef exports_runway_policy_routing_list_pool_t pools_t;
typedef exports_runway_policy_routing_route_decision_t decision_t;

// A string the host takes ownership of (the runtime's bump allocator never frees).
static router_string_t text(const char *s) {
  size_t n = strlen(s);
  router_string_t out = {.ptr = malloc(n), .len = n};
  memcpy(out.ptr, s, n);
  return out;
}

// `prefix` + `s` + `suffix`.
static router_string_t text3(const char *prefix, const router_string_t *s, const char *suffix) {
  size_t a = strlen(prefix), c = strlen(suffix);
  router_string_t out = {.ptr = malloc(a + s->len + c), .len = a + s->len + c};
  memcpy(out.ptr, prefix, a);
  memcpy(out.ptr + a, s->ptr, s->len);
  memcpy(out.ptr + a + s->len, suffix, c);
  return out;
}

static unsigned char lower(unsigned char c) { return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c; }

// ASCII case-insensitive equality, as GitHub compares labels.
static bool same_label(const router_string_t *a, const router_string_t *b) {
  if (a->len != b->len) return false;
  for (size_t i = 0; i < a->len; i++)
    if (lower(a->ptr[i]) != lower(b->ptr[i])) return false;
  return true;
}

static bool is_self_hosted(const router_string_t *label) {
  const char *self_hosted = "self-hosted";
  router_string_t s = {.ptr = (uint8_t *)self_hosted, .len = strlen(self_hosted)};
  return same_label(label, &s);
}

static bool offers_all(const pool_t *pool, const job_t *job) {
  for (size_t i = 0; i < job->labels.len; i++) {
    const router_string_t *label = &job->labels.ptr[i];
    if (is_self_hosted(label)) continue;
    bool offered = false;
    for (size_t j = 0; j < pool->labels.len && !offered; j++)
      offered = same_label(label, &pool->labels.ptr[j]);
    if (!offered) return false;
  }
  return true;
}

static void ignore(decision_t *ret, const char *reason) {
  ret->tag = EXPORTS_RUNWAY_POLICY_ROUTING_ROUTE_DECISION_IGNORE;
  ret->val.ignore = text(reason);
}

void exports_runway_policy_routing_route(job_t *job, pools_t *pools, decision_t *ret) {
  bool self_hosted = false;
  for (size_t i = 0; i < job->labels.len; i++) self_hosted |= is_self_hosted(&job->labels.ptr[i]);
  if (!self_hosted) {
    ignore(ret, "not a self-hosted job");
    return;
  }
  for (size_t i = 0; i < pools->len; i++) {
    const pool_t *pool = &pools->ptr[i];
    if (!offers_all(pool, job)) continue;
    ret->tag = EXPORTS_RUNWAY_POLICY_ROUTING_ROUTE_DECISION_RUN;
    // Zeroed overrides: keep every pool default.
    memset(&ret->val.run, 0, sizeof ret->val.run);
    ret->val.run.pool = text3("", &pool->name, "");
    ret->val.run.reason = text3("pool ", &pool->name, " offers every label of the job");
    return;
  }
  ignore(ret, "no pool offers every label of the job");
}
