/* Replays the file-format fuzz corpora (seeds and saved bad inputs) through the fuzz
 * targets' entry points on every test run, plus a deterministic stream of mutations of the
 * seeds, so fixed bugs stay fixed. Format readers only; tests/c/test_fuzz_replay.c has ops. */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define LLVMFuzzerTestOneInput fuzz_safetensors_one
#include "../fuzz/fuzz_safetensors.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_idx_one
#include "../fuzz/fuzz_idx.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_tfrecord_one
#include "../fuzz/fuzz_tfrecord.c"
#undef LLVMFuzzerTestOneInput

#define LLVMFuzzerTestOneInput fuzz_image_one
#include "../fuzz/fuzz_image.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_wav_one
#include "../fuzz/fuzz_wav.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_webdataset_one
#include "../fuzz/fuzz_webdataset.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_npy_one
#include "../fuzz/fuzz_npy.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_npz_one
#include "../fuzz/fuzz_npz.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_csv_one
#include "../fuzz/fuzz_csv.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_json_one
#include "../fuzz/fuzz_json.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_jsonl_one
#include "../fuzz/fuzz_jsonl.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_text_one
#include "../fuzz/fuzz_text.c"
#undef LLVMFuzzerTestOneInput

typedef int (*fuzz_fn)(const uint8_t *, size_t);

/* Runs fn on every file in dir (whole files, any size); mutates each seed `mutations`
 * times (byte flips, truncations, inserted bytes) from a fixed RNG. Returns the count. */
static int replay_dir(const char *dir, fuzz_fn fn, int mutations, uint64_t *rng) {
  DIR *d = opendir(dir);
  if (!d) return 0;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    FILE *f = fopen(path, "rb");
    if (!f) continue;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    if (len < 0 || len > (64 << 20)) {
      fclose(f);
      continue;
    }
    /* exact-size heap copies, so ASan sees any read past the end */
    uint8_t *buf = malloc((size_t)len + 1);
    size_t got = fread(buf, 1, (size_t)len, f);
    fclose(f);
    uint8_t *exact = malloc(got ? got : 1);
    memcpy(exact, buf, got);
    fn(exact, got);
    free(exact);
    for (int m = 0; m < mutations && got > 0; m++) {
      size_t at = (size_t)(th_rand_u64(rng) % got), cut = got;
      uint8_t *mut = malloc(got + 1);
      memcpy(mut, buf, got);
      switch (th_rand_u64(rng) % 4) {
      case 0: mut[at] ^= (uint8_t)(1u << (th_rand_u64(rng) % 8)); break;
      case 1: mut[at] = (uint8_t)th_rand_u64(rng); break;
      case 2: cut = at; break;
      default: mut[at] = "{}[]\",:0-9e\\ "[th_rand_u64(rng) % 14]; break;
      }
      uint8_t *ex = malloc(cut ? cut : 1);
      memcpy(ex, mut, cut);
      fn(ex, cut);
      free(ex);
      free(mut);
    }
    free(buf);
    n++;
  }
  closedir(d);
  return n;
}

Test(fuzz_replay_io, safetensors_corpus) {
  uint64_t rng = 7;
  int n = replay_dir(TFW_SOURCE_DIR "/tests/fuzz/corpus/fuzz_safetensors", fuzz_safetensors_one,
                     300, &rng);
  int bad = replay_dir(TFW_SOURCE_DIR "/tests/data/bad/safetensors", fuzz_safetensors_one, 0, &rng);
  cr_assert(n >= 10, "only %d corpus files found", n);
  cr_assert(bad >= 10, "only %d bad files found", bad);
  tfw_memory_set_limit(0);
  th_expect_no_leaks();
}

Test(fuzz_replay_io, idx_corpus) {
  uint64_t rng = 11;
  int n = replay_dir(TFW_SOURCE_DIR "/tests/fuzz/corpus/fuzz_idx", fuzz_idx_one, 300, &rng);
  cr_assert(n >= 10, "only %d corpus files found", n);
  tfw_memory_set_limit(0);
  th_expect_no_leaks();
}

Test(fuzz_replay_io, tfrecord_corpus) {
  uint64_t rng = 11;
  int n = replay_dir(TFW_SOURCE_DIR "/tests/fuzz/corpus/fuzz_tfrecord", fuzz_tfrecord_one, 300, &rng);
  cr_assert(n >= 10, "only %d corpus files found", n);
  th_expect_no_leaks();
}

Test(fuzz_replay_io, image_corpus) {
  uint64_t rng = 13;
  int n = replay_dir(TFW_SOURCE_DIR "/tests/fuzz/corpus/fuzz_image", fuzz_image_one, 150, &rng);
  cr_assert(n >= 20, "only %d corpus files found", n);
  tfw_memory_set_limit(0);
  th_expect_no_leaks();
}

Test(fuzz_replay_io, wav_corpus) {
  uint64_t rng = 17;
  int n = replay_dir(TFW_SOURCE_DIR "/tests/fuzz/corpus/fuzz_wav", fuzz_wav_one, 200, &rng);
  cr_assert(n >= 9, "only %d corpus files found", n);
  tfw_memory_set_limit(0);
  th_expect_no_leaks();
}

Test(fuzz_replay_io, webdataset_corpus) {
  uint64_t rng = 19;
  int n = replay_dir(TFW_SOURCE_DIR "/tests/fuzz/corpus/fuzz_webdataset", fuzz_webdataset_one, 100, &rng);
  cr_assert(n >= 10, "only %d corpus files found", n);
  tfw_memory_set_limit(0);
  th_expect_no_leaks();
}

Test(fuzz_replay_io, npy_corpus) {
  uint64_t rng = 31;
  int n = replay_dir(TFW_SOURCE_DIR "/tests/fuzz/corpus/fuzz_npy", fuzz_npy_one, 150, &rng);
  cr_assert(n >= 10, "only %d corpus files found", n);
  tfw_memory_set_limit(0);
  th_expect_no_leaks();
}

Test(fuzz_replay_io, npz_corpus) {
  uint64_t rng = 32;
  int n = replay_dir(TFW_SOURCE_DIR "/tests/fuzz/corpus/fuzz_npz", fuzz_npz_one, 150, &rng);
  cr_assert(n >= 10, "only %d corpus files found", n);
  tfw_memory_set_limit(0);
  th_expect_no_leaks();
}

Test(fuzz_replay_io, csv_corpus) {
  uint64_t rng = 33;
  int n = replay_dir(TFW_SOURCE_DIR "/tests/fuzz/corpus/fuzz_csv", fuzz_csv_one, 150, &rng);
  cr_assert(n >= 10, "only %d corpus files found", n);
  tfw_memory_set_limit(0);
  th_expect_no_leaks();
}

Test(fuzz_replay_io, json_corpus) {
  uint64_t rng = 34;
  int n = replay_dir(TFW_SOURCE_DIR "/tests/fuzz/corpus/fuzz_json", fuzz_json_one, 150, &rng);
  cr_assert(n >= 10, "only %d corpus files found", n);
  tfw_memory_set_limit(0);
  th_expect_no_leaks();
}

Test(fuzz_replay_io, jsonl_corpus) {
  uint64_t rng = 35;
  int n = replay_dir(TFW_SOURCE_DIR "/tests/fuzz/corpus/fuzz_jsonl", fuzz_jsonl_one, 150, &rng);
  cr_assert(n >= 10, "only %d corpus files found", n);
  tfw_memory_set_limit(0);
  th_expect_no_leaks();
}

Test(fuzz_replay_io, text_corpus) {
  uint64_t rng = 36;
  int n = replay_dir(TFW_SOURCE_DIR "/tests/fuzz/corpus/fuzz_text", fuzz_text_one, 150, &rng);
  cr_assert(n >= 10, "only %d corpus files found", n);
  tfw_memory_set_limit(0);
  th_expect_no_leaks();
}
