/* Op-local random seeds: explicit (seed, offset) draws are reproducible and leave the global
 * generator alone; global draws equal explicit draws at the reserved position. */
#include "harness.h"

Test(random_local, explicit_seed_offset) {
  tfw_manual_seed(1234);
  uint64_t s0, o0, s1, o1;
  tfw_rng_get_state(&s0, &o0);
  tfw_tensor *a = tfw_rand(TFW_DTYPE_F32, 2, (int64_t[]){5, 7});   /* reserves 9 blocks */
  tfw_tensor *b = tfw_randn(TFW_DTYPE_F64, 1, (int64_t[]){9});     /* 5 blocks */
  tfw_rng_get_state(&s1, &o1);
  cr_assert(s1 == s0 && o1 == o0 + 9 + 5, "offset advanced by %llu", (unsigned long long)(o1 - o0));
  tfw_tensor *a2 = tfw_rand_at(1234, o0, TFW_DTYPE_F32, 2, (int64_t[]){5, 7});
  tfw_tensor *b2 = tfw_randn_at(1234, o0 + 9, TFW_DTYPE_F64, 1, (int64_t[]){9});
  uint64_t s2, o2;
  tfw_rng_get_state(&s2, &o2);
  cr_assert(s2 == s1 && o2 == o1, "explicit draws must not touch the global generator");
  bool eq;
  cr_assert(tfw_equal(a, a2, &eq) == TFW_OK && eq, "rand at the reserved offset differs");
  cr_assert(tfw_equal(b, b2, &eq) == TFW_OK && eq, "randn at the reserved offset differs");
  tfw_tensor *p = tfw_full(TFW_DTYPE_F32, 1, (int64_t[]){100}, 0.5);
  tfw_tensor *m1 = tfw_bernoulli_at(7, 3, p), *m2 = tfw_bernoulli_at(7, 3, p), *m3 = tfw_bernoulli_at(7, 4, p);
  cr_assert(tfw_equal(m1, m2, &eq) == TFW_OK && eq);
  cr_assert(tfw_equal(m1, m3, &eq) == TFW_OK && !eq, "a different offset gives a different mask");
  tfw_release(a), tfw_release(b), tfw_release(a2), tfw_release(b2), tfw_release(p);
  tfw_release(m1), tfw_release(m2), tfw_release(m3);
  th_expect_no_leaks();
}
