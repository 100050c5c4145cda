/* The trainer (include/tenflower/train.h): it learns a synthetic task and writes its run
 * directory; gradient accumulation equals one big batch; a run killed with SIGKILL at
 * random moments (inside checkpoint writes too) and restarted until done produces the same
 * log and weights as an uninterrupted run, bit for bit; the newest complete checkpoint
 * always loads; truncated or corrupted checkpoints give TFW_EFORMAT; bad configs give
 * clear errors. */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

/* ---- a synthetic 4-class problem -------------------------------------------------------- */
typedef struct problem {
  tfw_tensor *x, *y;
  tfw_dataset *ds;
} problem;

static problem make_problem(int64_t n, uint64_t seed) {
  problem p;
  int64_t xs[2] = {n, 16}, ts[2] = {16, 4};
  p.x = tfw_randn_at(seed, 0, TFW_DTYPE_F32, 2, xs);
  tfw_tensor *teacher = tfw_randn_at(98, 0, TFW_DTYPE_F32, 2, ts);
  tfw_tensor *lg = tfw_matmul(p.x, teacher);
  p.y = tfw_argmax(lg, 1, false);
  tfw_release(teacher), tfw_release(lg);
  const char *names[2] = {"input", "target"};
  tfw_tensor *cols[2] = {p.x, p.y};
  p.ds = tfw_dataset_from_tensors(2, names, cols);
  cr_assert(p.ds, "%s", tfw_last_error());
  return p;
}

static void free_problem(problem *p) {
  tfw_dataset_release(p->ds);
  tfw_release(p->x), tfw_release(p->y);
}

static tfw_loader *loader(tfw_dataset *ds, int64_t bs, bool shuffle) {
  tfw_loader_options o = tfw_loader_options_default();
  o.batch_size = bs;
  o.shuffle = shuffle;
  o.seed = 3;
  tfw_loader *l = tfw_loader_new(ds, &o);
  cr_assert(l, "%s", tfw_last_error());
  return l;
}

static tfw_module *mlp(double dropout) {
  tfw_module *parts[5] = {tfw_linear_new(16, 64, true), tfw_activation_new("relu"),
                          tfw_dropout_new(dropout), tfw_linear_new(64, 4, true), NULL};
  tfw_module *m = tfw_sequential_new(4, parts);
  cr_assert(m);
  for (int i = 0; i < 4; i++) tfw_module_release(parts[i]);
  return m;
}

static void tmpdir(char *buf, size_t cap, const char *tag) {
  snprintf(buf, cap, "/tmp/tfw_trainer_%s_XXXXXX", tag);
  cr_assert(mkdtemp(buf), "mkdtemp");
}

static void rm_rf(const char *dir) {
  char cmd[4200];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  cr_assert_eq(system(cmd), 0);
}

static char *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *b = malloc((size_t)n + 1);
  size_t got = fread(b, 1, (size_t)n, f);
  fclose(f);
  b[got] = 0;
  if (len) *len = got;
  return b;
}

static int count_lines(const char *s) {
  int n = 0;
  for (; *s; s++) n += *s == '\n';
  return n;
}

/* The learning tests' set-up: train (1024, shuffled batches of 32) and test (512) loaders
 * over the synthetic problem, an MLP, and Adam (lr 1e-2) over its parameters. */
typedef struct fixture {
  problem tr, te;
  tfw_loader *ltr, *lte;
  tfw_module *m;
  tfw_optimizer *opt;
} fixture;

static fixture fixture_new(double dropout) {
  fixture f;
  tfw_manual_seed(5);
  f.tr = make_problem(1024, 1), f.te = make_problem(512, 2);
  f.ltr = loader(f.tr.ds, 32, true), f.lte = loader(f.te.ds, 128, false);
  f.m = mlp(dropout);
  tfw_optim_options oo = tfw_optim_defaults(TFW_OPTIM_ADAM);
  oo.lr = 1e-2;
  f.opt = tfw_optimizer_new(TFW_OPTIM_ADAM, &oo);
  cr_assert_eq(tfw_optimizer_add_module_params(f.opt, f.m, &oo, NULL, NULL), TFW_OK);
  return f;
}

static void fixture_free(fixture *f) {
  tfw_optimizer_release(f->opt);
  tfw_module_release(f->m);
  tfw_loader_free(f->ltr), tfw_loader_free(f->lte);
  free_problem(&f->tr), free_problem(&f->te);
}

/* ---- learning, and what the run directory holds ---------------------------------------- */
Test(trainer, learns_and_writes_run_dir) {
  fixture fx = fixture_new(0.1);
  tfw_module *m = fx.m;
  char base[256], dir[300];
  tmpdir(base, sizeof base, "learn");
  snprintf(dir, sizeof dir, "%s/runs/a", base); /* parents are created (mkdir -p) */
  tfw_trainer_config c = tfw_trainer_config_default();
  c.epochs = 4;
  c.run_dir = dir;
  c.progress = false;
  c.topk = 2;
  tfw_trainer *t = tfw_trainer_new(&c, m, fx.opt, NULL, fx.ltr, fx.lte);
  cr_assert(t, "%s", tfw_last_error());
  cr_assert_eq(tfw_trainer_fit(t), TFW_OK, "%s", tfw_last_error());
  cr_assert_eq(tfw_trainer_step(t), 4 * 32);
  tfw_eval_result ev = tfw_trainer_last_eval(t);
  cr_assert_gt(ev.accuracy, 0.9, "a linear teacher is learnable: accuracy %g", ev.accuracy);
  cr_assert_geq(ev.topk_accuracy, ev.accuracy);
  cr_assert_eq(ev.samples, 512);

  /* the evaluation agrees with a direct computation of the accuracy */
  tfw_module_train(m, false);
  tfw_tensor *lg = tfw_module_call(m, fx.te.x);
  tfw_tensor *am = tfw_argmax(lg, 1, false), *eq = tfw_eq(am, fx.te.y), *s = tfw_sum(eq, 0, NULL, false);
  double hits;
  tfw_item(s, &hits);
  cr_assert_float_eq(ev.accuracy, hits / 512, 1e-12);
  tfw_release(lg), tfw_release(am), tfw_release(eq), tfw_release(s);

  char path[512];
  snprintf(path, sizeof path, "%s/log.csv", dir);
  char *log = read_file(path, NULL);
  cr_assert(log, "log.csv written");
  /* header + one row per step + one eval row per epoch */
  cr_assert_eq(count_lines(log), 1 + 128 + 4, "log.csv has %d lines", count_lines(log));
  cr_assert(strncmp(log, "step,epoch,loss,accuracy,lr", 27) == 0);
  free(log);
  snprintf(path, sizeof path, "%s/report.html", dir);
  char *rep = read_file(path, NULL);
  cr_assert(rep && strstr(rep, "<svg"), "report.html with plots");
  free(rep);
  snprintf(path, sizeof path, "%s/checkpoints", dir);
  char ck[512];
  int64_t step;
  cr_assert_eq(tfw_ckpt_latest(path, ck, sizeof ck, &step), TFW_OK, "%s", tfw_last_error());
  cr_assert_eq(step, 128, "checkpoint at the end of the last epoch");
  bool tb = false;
  DIR *d = opendir(dir);
  for (struct dirent *e; (e = readdir(d));) tb = tb || strncmp(e->d_name, "events.out.tfevents.", 20) == 0;
  closedir(d);
  cr_assert(tb, "TensorBoard event file written");

  tfw_trainer_free(t);
  fixture_free(&fx);
  rm_rf(base);
  th_expect_no_leaks();
}

/* ---- accumulation: 4 x 8 == 1 x 32 (mean losses, no dropout) ---------------------------- */
static tfw_module *train_once(int64_t bs, int accum) {
  tfw_manual_seed(11);
  problem p = make_problem(256, 4);
  tfw_loader *l = loader(p.ds, bs, false);
  tfw_module *m = mlp(0.0);
  tfw_named_tensor *ps;
  int np;
  tfw_module_named_parameters(m, &ps, &np);
  tfw_tensor *pp[8];
  for (int i = 0; i < np; i++) pp[i] = ps[i].tensor;
  tfw_optimizer *opt = tfw_sgd_new(np, pp, 0.1, 0.9, 0.0, false);
  tfw_named_tensors_free(ps, np);
  tfw_trainer_config c = tfw_trainer_config_default();
  c.epochs = 2;
  c.accum_steps = accum;
  c.progress = false;
  tfw_trainer *t = tfw_trainer_new(&c, m, opt, NULL, l, NULL);
  cr_assert_eq(tfw_trainer_fit(t), TFW_OK, "%s", tfw_last_error());
  cr_assert_eq(tfw_trainer_step(t), 2 * 256 / (bs * accum));
  tfw_trainer_free(t);
  tfw_optimizer_release(opt);
  tfw_loader_free(l);
  free_problem(&p);
  return m;
}

Test(trainer, accumulation_equals_big_batch) {
  tfw_module *a = train_once(32, 1), *b = train_once(8, 4);
  const char *names[] = {"0.weight", "0.bias", "3.weight", "3.bias"};
  for (int i = 0; i < 4; i++) {
    tfw_tensor *pa = tfw_module_get_parameter(a, names[i]), *pb = tfw_module_get_parameter(b, names[i]);
    bool ok = false;
    cr_assert_eq(tfw_allclose(pb, pa, 1e-4, 1e-5, false, &ok), TFW_OK);
    cr_assert(ok, "%s differs between accumulation and a big batch", names[i]);
  }
  tfw_module_release(a), tfw_module_release(b);
  th_expect_no_leaks();
}

/* ---- SIGKILL at random moments, then resume -------------------------------------------- */
static int run_child(const char *dir, int kill_after_us) {
  pid_t pid = fork();
  cr_assert_neq(pid, -1);
  if (pid == 0) {
    int devnull = open("/dev/null", O_WRONLY);
    dup2(devnull, 2);
    setenv("TFW_NUM_THREADS", "1", 1); /* the point is resume, not speed; 1 thread is steady */
    execl(TFW_BUILD_DIR "/prog_train_run", "prog_train_run", dir, "2", "1", (char *)NULL);
    _exit(127);
  }
  if (kill_after_us > 0) {
    usleep((useconds_t)kill_after_us);
    kill(pid, SIGKILL);
  }
  int status;
  waitpid(pid, &status, 0);
  if (WIFSIGNALED(status)) return -WTERMSIG(status);
  return WEXITSTATUS(status);
}

/* step -> loss column, from log.csv ("step,epoch,loss,..."): the loss fields as written. */
static int losses(const char *dir, char out[][40], int cap) {
  char path[512];
  snprintf(path, sizeof path, "%s/log.csv", dir);
  char *log = read_file(path, NULL);
  cr_assert(log, "%s missing", path);
  int n = 0;
  char *save, *line = strtok_r(log, "\n", &save);
  for (line = strtok_r(NULL, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
    int step;
    char loss[40];
    cr_assert_eq(sscanf(line, "%d,%*[^,],%39[^,]", &step, loss), 2, "row '%s'", line);
    cr_assert_eq(step, n + 1, "log rows in order without gaps or repeats (row '%s')", line);
    cr_assert_lt(n, cap);
    snprintf(out[n++], 40, "%s", loss);
  }
  free(log);
  return n;
}

Test(trainer, sigkill_and_resume_is_bit_exact, .timeout = 600) {
  char ref[256], run[256];
  tmpdir(ref, sizeof ref, "ref");
  tmpdir(run, sizeof run, "kill");
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  cr_assert_eq(run_child(ref, 0), 0, "uninterrupted run");
  clock_gettime(CLOCK_MONOTONIC, &t1);
  /* the uninterrupted run's time T scales the kill delays, so that the number of kills does
   * not depend on the machine's speed or load */
  double total_us = 1e6 * (double)(t1.tv_sec - t0.tv_sec) + 1e-3 * (double)(t1.tv_nsec - t0.tv_nsec);

  uint64_t rng = 12345;
  int kills = 0, finished = 0;
  char ckdir[300], ck[512];
  snprintf(ckdir, sizeof ckdir, "%s/checkpoints", run);
  int64_t last_step = -1;
  for (int attempt = 0; attempt < 200 && !finished; attempt++) {
    /* most of a run's time is in the per-step checkpoint writes (fsync): kills after
     * 2 ms + 0.5%..5% of T land in start-up, in training steps and inside writes */
    int us = 2000 + (int)(th_rand_uniform(&rng, 0.005, 0.05) * total_us);
    int rc = run_child(run, kills < 60 ? us : 0);
    if (rc == 0) {
      finished = 1;
      break;
    }
    cr_assert_eq(rc, -SIGKILL, "child failed by itself with status %d", rc);
    kills++;
    /* the newest complete checkpoint always loads, and progress is never lost */
    int64_t step = -1;
    if (tfw_ckpt_latest(ckdir, ck, sizeof ck, &step) == TFW_OK) {
      cr_assert_geq(step, last_step, "checkpoint step went back from %lld to %lld",
                    (long long)last_step, (long long)step);
      last_step = step;
    }
  }
  cr_assert(finished, "the run finished after %d kills", kills);
  cr_assert_geq(kills, 20, "at least 20 kills happened (got %d)", kills);

  static char la[200][40], lb[200][40];
  int na = losses(ref, la, 200), nb = losses(run, lb, 200);
  cr_assert_eq(na, nb, "same number of steps logged: %d vs %d", na, nb);
  for (int i = 0; i < na; i++)
    cr_assert_str_eq(la[i], lb[i], "loss of step %d differs: %s vs %s", i + 1, la[i], lb[i]);

  char pa[512], pb[512];
  snprintf(pa, sizeof pa, "%s/final.safetensors", ref);
  snprintf(pb, sizeof pb, "%s/final.safetensors", run);
  tfw_safetensors *a = tfw_safetensors_open(pa), *b = tfw_safetensors_open(pb);
  cr_assert(a && b, "%s", tfw_last_error());
  cr_assert_eq(tfw_safetensors_count(a), tfw_safetensors_count(b));
  for (int i = 0; i < tfw_safetensors_count(a); i++) {
    const char *name = tfw_safetensors_name(a, i);
    tfw_tensor *x = tfw_safetensors_get(a, name), *y = tfw_safetensors_get(b, name);
    bool eq = false;
    cr_assert(x && y);
    cr_assert_eq(tfw_equal(x, y, &eq), TFW_OK);
    cr_assert(eq, "final %s differs after %d kills", name, kills);
    tfw_release(x), tfw_release(y);
  }
  tfw_safetensors_close(a), tfw_safetensors_close(b);
  /* temporaries orphaned by kills inside writes are cleaned up; the newest 2 are kept */
  DIR *d = opendir(ckdir);
  int files = 0;
  for (struct dirent *e; (e = readdir(d));) {
    if (e->d_name[0] == '.') continue;
    files++;
    cr_assert(strstr(e->d_name, ".tmp") == NULL, "orphaned temporary %s left", e->d_name);
  }
  closedir(d);
  cr_assert_eq(files, 2, "keep_checkpoints = 2, found %d files", files);
  rm_rf(ref), rm_rf(run);
  th_expect_no_leaks();
}

/* ---- corrupt checkpoints --------------------------------------------------------------- */
Test(trainer, corrupt_checkpoints_are_format_errors) {
  char dir[256], path[512], bad[512];
  tmpdir(dir, sizeof dir, "corrupt");
  snprintf(path, sizeof path, "%s/ckpt-000000000001.safetensors", dir);
  snprintf(bad, sizeof bad, "%s/ckpt-000000000002.safetensors", dir);
  int64_t s1[2] = {3, 5}, s2[1] = {7};
  tfw_named_tensor nt[2] = {{"a.weight", th_random(TFW_DTYPE_F32, 2, s1, -1, 1, 1)},
                            {"b", th_random(TFW_DTYPE_I64, 1, s2, 0, 100, 2)}};
  const char *mk[1] = {"step"}, *mv[1] = {"1"};
  cr_assert_eq(tfw_ckpt_save(path, 2, nt, 1, mk, mv), TFW_OK, "%s", tfw_last_error());
  tfw_named_tensor *got;
  int n;
  cr_assert_eq(tfw_ckpt_load(path, &got, &n), TFW_OK, "%s", tfw_last_error());
  cr_assert_eq(n, 2);
  for (int i = 0; i < 2; i++) {
    int k = strcmp(got[i].name, "b") == 0;
    bool eq = false;
    tfw_equal(got[i].tensor, nt[k].tensor, &eq);
    cr_assert(eq, "round trip of %s", got[i].name);
  }
  tfw_named_tensors_free(got, n);

  size_t len;
  char *bytes = read_file(path, &len);
  uint64_t rng = 9;
  int trials = 0;
  for (int kind = 0; kind < 2; kind++) {
    for (int r = 0; r < 60; r++) {
      size_t at = (size_t)th_rand_uniform(&rng, 0, (double)len);
      FILE *f = fopen(bad, "wb");
      if (kind == 0) { /* truncated */
        fwrite(bytes, 1, at, f);
      } else { /* one byte changed */
        char *copy = malloc(len);
        memcpy(copy, bytes, len);
        copy[at] ^= (char)(1 + (int)th_rand_uniform(&rng, 0, 255));
        fwrite(copy, 1, len, f);
        free(copy);
      }
      fclose(f);
      tfw_status st = tfw_ckpt_load(bad, &got, &n);
      if (st == TFW_OK) { /* only a change the format cannot see may load: none exist here */
        tfw_named_tensors_free(got, n);
        cr_assert_fail("corruption (%s at byte %zu of %zu) was not detected",
                       kind ? "byte flip" : "truncation", at, len);
      }
      cr_assert_eq(st, TFW_EFORMAT, "%s at %zu: got %s: %s", kind ? "flip" : "truncation", at,
                   tfw_status_name(st), tfw_last_error());
      /* the directory lookup skips the bad newest file and finds the good one */
      char found[512];
      int64_t step;
      cr_assert_eq(tfw_ckpt_latest(dir, found, sizeof found, &step), TFW_OK);
      cr_assert_eq(step, 1);
      trials++;
    }
  }
  cr_assert_eq(trials, 120);
  free(bytes);
  cr_assert_eq(tfw_ckpt_load("/nonexistent/ckpt.safetensors", &got, &n), TFW_EIO);
  /* a safetensors file that is not a checkpoint */
  const char *nm[1] = {"x"};
  tfw_tensor *tt[1] = {nt[0].tensor};
  cr_assert_eq(tfw_safetensors_save(bad, 1, nm, tt, 0, NULL, NULL), TFW_OK);
  th_expect_error(tfw_ckpt_load(bad, &got, &n), TFW_EFORMAT, "not a tenflower checkpoint", "foreign file");
  tfw_release(nt[0].tensor), tfw_release(nt[1].tensor);
  rm_rf(dir);
  th_expect_no_leaks();
}

/* ---- configuration errors -------------------------------------------------------------- */
Test(trainer, bad_config) {
  problem p = make_problem(64, 1);
  tfw_loader *l = loader(p.ds, 8, false);
  tfw_module *m = mlp(0);
  tfw_named_tensor *ps;
  int np;
  tfw_module_named_parameters(m, &ps, &np);
  tfw_tensor *pp[8];
  for (int i = 0; i < np; i++) pp[i] = ps[i].tensor;
  tfw_optimizer *opt = tfw_sgd_new(np, pp, 0.1, 0, 0, false);
  tfw_named_tensors_free(ps, np);
  tfw_trainer_config c = tfw_trainer_config_default();
  c.accum_steps = 0;
  cr_assert_null(tfw_trainer_new(&c, m, opt, NULL, l, NULL));
  cr_assert(strstr(tfw_last_error(), "accum_steps"), "%s", tfw_last_error());
  c = tfw_trainer_config_default();
  c.resume = true;
  cr_assert_null(tfw_trainer_new(&c, m, opt, NULL, l, NULL));
  cr_assert(strstr(tfw_last_error(), "run_dir"), "%s", tfw_last_error());
  c = tfw_trainer_config_default();
  cr_assert_null(tfw_trainer_new(&c, m, NULL, NULL, l, NULL));
  c.input_field = "pixels";
  c.progress = false;
  tfw_trainer *t = tfw_trainer_new(&c, m, opt, NULL, l, NULL);
  th_expect_error(tfw_trainer_fit(t), TFW_EVALUE, "no field 'pixels'", "missing input field");
  tfw_trainer_free(t);
  tfw_optimizer_release(opt);
  tfw_module_release(m);
  tfw_loader_free(l);
  free_problem(&p);
  th_expect_no_leaks();
}

/* ---- mixed precision: float16 autocast with dynamic loss scaling still learns ------------ */
static tfw_status count_skipped(void *ctx, tfw_trainer *t, const tfw_train_metrics *m) {
  (void)t;
  *(int *)ctx += m->skipped;
  return TFW_OK;
}

Test(trainer, autocast_f16_with_loss_scaler) {
  fixture fx = fixture_new(0.0);
  /* a huge initial scale overflows float16 gradients at first: those steps are skipped and
   * the scale backs off until they fit */
  tfw_grad_scaler *sc = tfw_grad_scaler_new(1e12, 2.0, 0.5, 50, true);
  int skipped = 0;
  tfw_trainer_config c = tfw_trainer_config_default();
  c.epochs = 3;
  c.progress = false;
  c.autocast = true;
  c.autocast_dtype = TFW_DTYPE_F16;
  c.scaler = sc;
  c.clip_grad_norm = 5.0;
  c.callbacks.ctx = &skipped;
  c.callbacks.on_step_end = count_skipped;
  tfw_trainer *t = tfw_trainer_new(&c, fx.m, fx.opt, NULL, fx.ltr, fx.lte);
  cr_assert_eq(tfw_trainer_fit(t), TFW_OK, "%s", tfw_last_error());
  tfw_eval_result ev = tfw_trainer_last_eval(t);
  cr_assert_gt(ev.accuracy, 0.85, "accuracy %g", ev.accuracy);
  cr_assert_lt(tfw_grad_scaler_get_scale(sc), 1e12, "the scale backed off");
  cr_assert_gt(skipped, 0, "overflowing steps were skipped");
  cr_assert_lt(skipped, 60, "%d of 96 steps skipped", skipped);
  cr_assert_gt(tfw_grad_scaler_get_scale(sc), 1.0);
  tfw_trainer_free(t);
  tfw_grad_scaler_release(sc);
  fixture_free(&fx);
  th_expect_no_leaks();
}
