/* A character-level GPT trained from C on a public-domain book (Melville's "Moby-Dick"),
 * printing the loss as it trains, the held-out loss, and a sample of generated text.
 *
 *   model:  GPT-2 style, pre-norm (src/nn/gpt.c, include/tenflower/nn_gpt.h): token +
 *           learned position embeddings, N blocks of causal self-attention + GELU MLP with
 *           pre-LayerNorm, residuals and dropout, final LayerNorm, LM head tied to the token
 *           embedding. Defaults: 4 layers, 4 heads, width 256, context 128.
 *   data:   the text's characters (Unicode code points when the file is valid UTF-8, else
 *           bytes); the vocabulary is the sorted set of characters in the text. The first 90%
 *           trains, the last 10% is held out. Training sample i is a random window
 *           (input = chars [s, s + T), target = chars [s + 1, s + T + 1)) whose start s is a
 *           hash of (seed, i): a map-style dataset, so the loader batches it and a resumed
 *           run sees the same windows.
 *   recipe: AdamW (betas 0.9 / 0.95, weight decay 0.1 on matrices, none on biases, norms
 *           and embeddings), linear warmup then cosine decay to lr / 10, gradient clipping
 *           at norm 1.0, batch 16, cross-entropy over [B * T, V].
 *   output: the run directory gets log.csv, TensorBoard events, checkpoints (--resume
 *           continues from them), report.html and model.safetensors (weights with the
 *           configuration and vocabulary in the metadata).
 *
 *   example_char_gpt [--text FILE] [--run-dir DIR] [--steps N] [--batch N] [--context N]
 *                    [--layers N] [--heads N] [--width N] [--dropout X] [--lr X]
 *                    [--warmup N] [--weight-decay X] [--untied] [--eval-windows N]
 *                    [--checkpoint-every N] [--resume] [--seed N] [--prompt TEXT]
 *                    [--sample N] [--temperature X] [--top-k N] [--no-cache]
 * FILE defaults to $TFW_TEXT_FILE, else ~/.cache/tenflower/moby-dick/moby-dick.txt
 * (scripts/fetch_text.sh fills it; `make gpt` runs it first). docs/examples.md. */
#define _POSIX_C_SOURCE 200809L
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tenflower/tenflower.h"

#define EXAMPLE_NAME "char_gpt"
#include "example_util.h"

/* ---- text -> ids ---------------------------------------------------------------------------- */

/* Decodes UTF-8 (s[0 .. n)) into code points; false at the first invalid sequence. */
static bool utf8_decode(const unsigned char *s, size_t n, uint32_t *cp, size_t *n_cp) {
  size_t k = 0;
  for (size_t i = 0; i < n;) {
    uint32_t c = s[i];
    int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (!len || i + (size_t)len > n) return false;
    if (len > 1) c &= 0x3Fu >> (len - 1);
    for (int j = 1; j < len; j++) {
      if ((s[i + j] & 0xC0) != 0x80) return false;
      c = (c << 6) | (s[i + j] & 0x3F);
    }
    static const uint32_t min_of[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (c < min_of[len] || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return false;
    cp[k++] = c;
    i += (size_t)len;
  }
  *n_cp = k;
  return true;
}

static int utf8_encode(uint32_t c, char *o) {
  if (c < 0x80) return o[0] = (char)c, 1;
  if (c < 0x800) return o[0] = (char)(0xC0 | c >> 6), o[1] = (char)(0x80 | (c & 0x3F)), 2;
  if (c < 0x10000)
    return o[0] = (char)(0xE0 | c >> 12), o[1] = (char)(0x80 | ((c >> 6) & 0x3F)),
           o[2] = (char)(0x80 | (c & 0x3F)), 3;
  return o[0] = (char)(0xF0 | c >> 18), o[1] = (char)(0x80 | ((c >> 12) & 0x3F)),
         o[2] = (char)(0x80 | ((c >> 6) & 0x3F)), o[3] = (char)(0x80 | (c & 0x3F)), 4;
}

typedef struct {
  uint32_t *chars; /* the vocabulary: sorted distinct characters, id = index */
  int64_t V;
  bool bytes;      /* byte-level (the file is not valid UTF-8) */
} vocab;

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return (x > y) - (x < y);
}

static int64_t vocab_id(const vocab *v, uint32_t c) {
  const uint32_t *p = bsearch(&c, v->chars, (size_t)v->V, sizeof c, cmp_u32);
  return p ? p - v->chars : -1;
}

/* Reads path, builds the vocabulary and the ids (malloc'd, *n of them). */
static int64_t *load_text(const char *path, vocab *voc, int64_t *n) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "char_gpt: cannot open the text %s.\nRun scripts/fetch_text.sh (or `make gpt`), "
            "or pass --text FILE / set TFW_TEXT_FILE.\n", path);
    exit(1);
  }
  fseek(f, 0, SEEK_END);
  long size = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *buf = malloc(size > 0 ? (size_t)size : 1);
  uint32_t *cp = malloc((size > 0 ? (size_t)size : 1) * sizeof *cp);
  CHECK(buf && cp && fread(buf, 1, (size_t)size, f) == (size_t)size);
  fclose(f);
  size_t n_cp;
  voc->bytes = !utf8_decode(buf, (size_t)size, cp, &n_cp);
  if (voc->bytes) /* not UTF-8: one id per byte */
    for (n_cp = 0; n_cp < (size_t)size; n_cp++) cp[n_cp] = buf[n_cp];
  free(buf);
  uint32_t *sorted = malloc(n_cp * sizeof *sorted + 1);
  CHECK(sorted);
  memcpy(sorted, cp, n_cp * sizeof *cp);
  qsort(sorted, n_cp, sizeof *sorted, cmp_u32);
  size_t V = 0;
  for (size_t i = 0; i < n_cp; i++)
    if (!V || sorted[i] != sorted[V - 1]) sorted[V++] = sorted[i];
  voc->chars = sorted, voc->V = (int64_t)V;
  int64_t *ids = malloc(n_cp * sizeof *ids + 1);
  CHECK(ids);
  for (size_t i = 0; i < n_cp; i++) ids[i] = vocab_id(voc, cp[i]);
  free(cp);
  *n = (int64_t)n_cp;
  return ids;
}

/* ---- datasets ------------------------------------------------------------------------------- */

typedef struct {
  const int64_t *ids; /* the split's ids */
  int64_t n, T;       /* split length, window */
  int64_t len;        /* samples */
  uint64_t seed;
  bool random;        /* sample i: a random window (train) or window i at stride T (eval) */
} windows;

static uint64_t mix64(uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static int64_t win_len(void *ctx) { return ((windows *)ctx)->len; }

static tfw_status win_get(void *ctx, int64_t i, tfw_sample *out) {
  const windows *w = ctx;
  int64_t s = w->random ? (int64_t)(mix64(w->seed * 0x100000001B3ull ^ (uint64_t)i) %
                                    (uint64_t)(w->n - w->T))
                        : i * w->T;
  tfw_tensor *x = tfw_from_data(TFW_DTYPE_I64, 1, &w->T, w->ids + s);
  tfw_tensor *y = tfw_from_data(TFW_DTYPE_I64, 1, &w->T, w->ids + s + 1);
  tfw_status st = x && y ? tfw_sample_add(out, "input", x) : tfw_last_status();
  if (!st) st = tfw_sample_add(out, "target", y);
  tfw_release(x), tfw_release(y);
  return st;
}

static tfw_dataset *windows_new(const int64_t *ids, int64_t n, int64_t T, int64_t len,
                                uint64_t seed, bool random) {
  windows *w = malloc(sizeof *w);
  CHECK(w);
  *w = (windows){ids, n, T, len, seed, random};
  static const tfw_dataset_vtable vt = {.len = win_len, .get = win_get, .destroy = free};
  tfw_dataset *ds = tfw_dataset_new(&vt, w);
  CHECK(ds);
  return ds;
}

/* Collated batch: target [B, T] -> [B * T], so that the loss function can hand it to the
 * trainer as the (borrowed) class targets of the [B * T, V] logits. */
static tfw_status flatten_target(void *ctx, tfw_sample *b) {
  (void)ctx;
  for (int k = 0; k < b->n; k++)
    if (!strcmp(b->names[k], "target")) {
      tfw_tensor *flat = tfw_reshape(b->tensors[k], 1, (int64_t[]){-1});
      if (!flat) return tfw_last_status();
      tfw_release(b->tensors[k]);
      b->tensors[k] = flat;
    }
  return TFW_OK;
}

/* loss = cross_entropy(logits [B * T, V], target [B * T]) */
static tfw_status lm_loss(void *ctx, tfw_module *model, const tfw_sample *batch, tfw_tensor **loss,
                          tfw_tensor **logits, const tfw_tensor **targets) {
  (void)ctx;
  tfw_tensor *x = tfw_sample_get(batch, "input"), *y = tfw_sample_get(batch, "target");
  tfw_tensor *lg = tfw_gpt_forward(model, x);
  if (!lg) return tfw_last_status();
  int64_t V = tfw_tensor_shape(lg)[2];
  tfw_tensor *flat = tfw_reshape(lg, 2, (int64_t[]){-1, V});
  tfw_release(lg);
  *loss = flat ? tfw_cross_entropy(flat, y, NULL, "mean", -100, 0.0) : NULL;
  if (!*loss) {
    tfw_release(flat);
    return tfw_last_status();
  }
  *logits = flat;
  *targets = y;
  return TFW_OK;
}

static void usage(const char *argv0) {
  fprintf(stderr,
          "usage: %s [--text FILE] [--run-dir DIR] [--steps N] [--batch N] [--context N]\n"
          "          [--layers N] [--heads N] [--width N] [--dropout X] [--lr X] [--warmup N]\n"
          "          [--weight-decay X] [--untied] [--eval-windows N] [--checkpoint-every N]\n"
          "          [--resume] [--seed N] [--prompt TEXT] [--sample N] [--temperature X]\n"
          "          [--top-k N] [--no-cache]\n", argv0);
  exit(2);
}

int main(int argc, char **argv) {
  const char *text = getenv("TFW_TEXT_FILE"), *run_dir = "runs/char_gpt";
  const char *prompt = "The whale";
  int64_t steps = 200, batch = 16, warmup = 20, eval_windows = 256, ckpt_every = 100,
          n_sample = 300, top_k = 20;
  double lr = 1e-3, wd = 0.1, temperature = 0.8;
  uint64_t seed = 1;
  bool resume = false, use_cache = true;
  tfw_gpt_config gc = tfw_gpt_config_default(1);
  char cache[4096];
  if (!text || !*text) text = example_cache_path(cache, sizeof cache, "moby-dick/moby-dick.txt");
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    bool has = v != NULL;
#define OPT(name) (!strcmp(a, name) && has && (i++, 1))
    if (OPT("--text")) text = v;
    else if (OPT("--run-dir")) run_dir = v;
    else if (OPT("--steps")) steps = atoll(v);
    else if (OPT("--batch")) batch = atoll(v);
    else if (OPT("--context")) gc.context = atoll(v);
    else if (OPT("--layers")) gc.n_layer = atoll(v);
    else if (OPT("--heads")) gc.n_head = atoll(v);
    else if (OPT("--width")) gc.n_embd = atoll(v);
    else if (OPT("--dropout")) gc.dropout = atof(v);
    else if (OPT("--lr")) lr = atof(v);
    else if (OPT("--warmup")) warmup = atoll(v);
    else if (OPT("--weight-decay")) wd = atof(v);
    else if (OPT("--eval-windows")) eval_windows = atoll(v);
    else if (OPT("--checkpoint-every")) ckpt_every = atoll(v);
    else if (OPT("--seed")) seed = strtoull(v, NULL, 10);
    else if (OPT("--prompt")) prompt = v;
    else if (OPT("--sample")) n_sample = atoll(v);
    else if (OPT("--temperature")) temperature = atof(v);
    else if (OPT("--top-k")) top_k = atoll(v);
    else if (!strcmp(a, "--untied")) gc.tie_weights = false;
    else if (!strcmp(a, "--resume")) resume = true;
    else if (!strcmp(a, "--no-cache")) use_cache = false;
    else usage(argv[0]);
#undef OPT
  }
  if (steps < 1 || batch < 1 || gc.context < 2 || warmup < 0 || warmup >= steps || n_sample < 0) {
    fprintf(stderr, "char_gpt: need --steps >= 1, --batch >= 1, --context >= 2, "
            "0 <= --warmup < --steps, --sample >= 0\n");
    return 2;
  }
  double t0 = now_s();
  tfw_manual_seed(seed);

  /* data */
  vocab voc;
  int64_t n_ids;
  int64_t *ids = load_text(text, &voc, &n_ids);
  const int64_t T = gc.context, n_train = n_ids * 9 / 10, n_val = n_ids - n_train;
  if (n_train < T + 2 || n_val < T + 1) {
    fprintf(stderr, "char_gpt: %s has %" PRId64 " characters, too few for a context of %" PRId64
            " (need > %" PRId64 ")\n", text, n_ids, T, 10 * (T + 2));
    return 1;
  }
  gc.vocab_size = voc.V;
  int64_t n_eval = (n_val - 1) / T;
  if (eval_windows > 0 && eval_windows < n_eval) n_eval = eval_windows;
  tfw_dataset *train = windows_new(ids, n_train, T, steps * batch, seed, true);
  tfw_dataset *val = windows_new(ids + n_train, n_val, T, n_eval, 0, false);
  printf("tenflower %s: %s, %" PRId64 " %s (vocabulary %" PRId64 "), %" PRId64 " train / %" PRId64
         " held out; %d threads\n", tfw_version(), text, n_ids, voc.bytes ? "bytes" : "characters",
         voc.V, n_train, n_val, tfw_get_num_threads());

  tfw_loader_options lo = tfw_loader_options_default();
  lo.batch_size = batch;
  lo.batch_map = flatten_target;
  tfw_loader *ltrain = tfw_loader_new(train, &lo);
  tfw_loader *lval = tfw_loader_new(val, &lo);
  CHECK(ltrain && lval);

  /* model, optimizer, schedule */
  tfw_module *model = tfw_gpt_new(&gc);
  CHECK(model);
  printf("model: GPT, %" PRId64 " layers, %" PRId64 " heads, width %" PRId64 ", context %" PRId64
         ", %s head: %" PRId64 " parameters\n", gc.n_layer, gc.n_head, gc.n_embd, gc.context,
         gc.tie_weights ? "tied" : "untied", tfw_module_num_parameters(model));
  tfw_optim_options oo = tfw_optim_defaults(TFW_OPTIM_ADAMW);
  oo.lr = lr;
  oo.weight_decay = wd;
  oo.beta1 = 0.9, oo.beta2 = 0.95;
  tfw_optimizer *opt = tfw_optimizer_new(TFW_OPTIM_ADAMW, &oo);
  CHECK(opt);
  CHECK(tfw_optimizer_add_module_params(opt, model, &oo, NULL, NULL) == TFW_OK);
  tfw_lr_scheduler *cosine = tfw_cosine_lr_new(opt, steps - warmup, lr / 10);
  CHECK(cosine);
  tfw_lr_scheduler *sched = tfw_warmup_lr_new(opt, cosine, warmup, warmup ? 1.0 / (double)warmup : 1.0);
  CHECK(sched);

  /* train */
  tfw_trainer_config cfg = tfw_trainer_config_default();
  cfg.epochs = 1; /* the train set is exactly steps * batch random windows */
  cfg.max_steps = steps;
  cfg.clip_grad_norm = 1.0;
  cfg.eval_every = steps; /* once, at the end */
  cfg.checkpoint_every = ckpt_every > 0 ? ckpt_every : -1;
  cfg.run_dir = run_dir;
  cfg.resume = resume;
  cfg.loss_fn = lm_loss;
  tfw_trainer *t = tfw_trainer_new(&cfg, model, opt, sched, ltrain, lval);
  CHECK(t);
  double t1 = now_s();
  CHECK(tfw_trainer_fit(t) == TFW_OK);
  double t2 = now_s();
  tfw_eval_result ev = tfw_trainer_last_eval(t);
  if (isnan(ev.loss)) CHECK(tfw_trainer_evaluate(t, lval, &ev) == TFW_OK); /* a finished run resumed */
  printf("step %" PRId64 ": held-out loss %.4f nats/char (%.3f bits/char, perplexity %.2f), "
         "next-char accuracy %.1f%% on %" PRId64 " windows; training %.1f s\n",
         tfw_trainer_step(t), ev.loss, ev.loss / log(2.0), exp(ev.loss), 100 * ev.accuracy,
         ev.samples, t2 - t1);

  /* sample */
  size_t n_pc = 0, plen = strlen(prompt);
  uint32_t *pcs = malloc((plen + 1) * sizeof *pcs);
  int64_t *pids = malloc((plen + 1) * sizeof *pids), *gen = malloc(((size_t)n_sample + 1) * sizeof *gen);
  CHECK(pcs && pids && gen);
  if (voc.bytes || !utf8_decode((const unsigned char *)prompt, plen, pcs, &n_pc))
    for (n_pc = 0; n_pc < plen; n_pc++) pcs[n_pc] = (unsigned char)prompt[n_pc];
  int64_t n_p = 0;
  for (size_t i = 0; i < n_pc; i++) {
    int64_t id = vocab_id(&voc, pcs[i]);
    if (id < 0) fprintf(stderr, "char_gpt: prompt character U+%04X is not in the text's "
                        "vocabulary; skipped\n", (unsigned)pcs[i]);
    else pids[n_p++] = id;
  }
  if (!n_p) pids[n_p++] = vocab_id(&voc, voc.chars[0]); /* an empty prompt: the first char */
  tfw_gpt_sampling sp = tfw_gpt_sampling_default();
  sp.temperature = temperature, sp.top_k = top_k, sp.seed = seed, sp.use_cache = use_cache;
  double t3 = now_s();
  CHECK(tfw_gpt_generate(model, n_p, pids, n_sample, &sp, gen) == TFW_OK);
  double t4 = now_s();
  printf("sample (%" PRId64 " characters, temperature %.2f, top-k %" PRId64 ", %s, %.0f chars/s):\n"
         "----\n", n_sample, temperature, top_k, use_cache ? "KV cache" : "no cache",
         (double)n_sample / (t4 - t3 + 1e-9));
  char u[4];
  for (int64_t i = 0; i < n_p; i++) fwrite(u, 1, (size_t)utf8_encode(voc.chars[pids[i]], u), stdout);
  for (int64_t i = 0; i < n_sample; i++)
    if (voc.bytes) putchar((int)voc.chars[gen[i]]);
    else fwrite(u, 1, (size_t)utf8_encode(voc.chars[gen[i]], u), stdout);
  printf("\n----\n");

  /* save: weights, with the configuration and vocabulary as metadata */
  tfw_named_tensor *sd;
  int n_sd;
  CHECK(tfw_module_state_dict(model, &sd, &n_sd) == TFW_OK);
  const char **names = malloc((size_t)n_sd * sizeof *names);
  tfw_tensor **ts = malloc((size_t)n_sd * sizeof *ts);
  char *vtext = malloc((size_t)voc.V * 4 + 1), cfgtext[256], path[4096];
  CHECK(names && ts && vtext);
  for (int i = 0; i < n_sd; i++) names[i] = sd[i].name, ts[i] = sd[i].tensor;
  size_t vl = 0;
  for (int64_t i = 0; i < voc.V; i++) vl += (size_t)utf8_encode(voc.chars[i], vtext + vl);
  vtext[vl] = 0;
  snprintf(cfgtext, sizeof cfgtext, "{\"vocab_size\": %" PRId64 ", \"context\": %" PRId64
           ", \"n_layer\": %" PRId64 ", \"n_head\": %" PRId64 ", \"n_embd\": %" PRId64
           ", \"tie_weights\": %s, \"vocab\": \"%s\"}", gc.vocab_size, gc.context, gc.n_layer,
           gc.n_head, gc.n_embd, gc.tie_weights ? "true" : "false", voc.bytes ? "bytes" : "utf-8");
  const char *mk[2] = {"config", "vocab"}, *mv[2] = {cfgtext, vtext};
  snprintf(path, sizeof path, "%s/model.safetensors", run_dir);
  /* the vocabulary as metadata only when it is text (byte vocabularies hold NULs and
   * invalid UTF-8): then it is the "bytes" flag in config */
  CHECK(tfw_safetensors_save(path, n_sd, names, ts, voc.bytes ? 1 : 2, mk, mv) == TFW_OK);
  printf("saved %s (%d tensors); run directory %s (log.csv, TensorBoard events, checkpoints, "
         "report.html); total %.1f s\n", path, n_sd, run_dir, now_s() - t0);

  free(names), free(ts), free(vtext), free(pcs), free(pids), free(gen);
  tfw_named_tensors_free(sd, n_sd);
  tfw_trainer_free(t);
  tfw_lr_scheduler_release(sched);
  tfw_optimizer_release(opt);
  tfw_module_release(model);
  tfw_loader_free(ltrain), tfw_loader_free(lval);
  tfw_dataset_release(train), tfw_dataset_release(val);
  free(ids), free(voc.chars);
  return 0;
}
