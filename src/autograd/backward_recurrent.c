/* Autograd for the selective scan (tfw_selective_scan): a custom graph node, as
 * tfw_checkpoint makes, whose backward runs the registered op selective_scan_backward (a
 * chunked reverse scan, src/ops/recurrent_scan.c) and unpacks its flat result into the six
 * input gradients.
 *
 * Why not a registry backward: every registry op with a backward owes the generated
 * gradgradcheck a second-order rule, and the second derivative of the scan would need a
 * scan of its own (the tangent of the reverse scan). Double backward (create_graph) through
 * the scan is therefore unsupported and fails with TFW_EUNSUPPORTED, never a silent zero.
 * Forward mode (JVP) through the scan is likewise not provided: tangents do not flow
 * through tfw_selective_scan's outputs. */
#include "autograd/autograd.h"
#include "tenflower/nn_recurrent.h"

static tfw_status scan_backward(const tfw__node *node, tfw_tensor *const *gout, tfw_tensor **gin);

static const tfw__op_def k_scan_node = {
    "selective_scan", TFW__OP_COUNT, 6, 2, TFW__OPF_DIFF, NULL, NULL, NULL, scan_backward,
    tfw__jvp_none, "selective scan node (tfw_selective_scan); its backward is selective_scan_backward"};

static tfw_status scan_backward(const tfw__node *node, tfw_tensor *const *gout, tfw_tensor **gin) {
  for (int i = 0; i < 6; i++) gin[i] = NULL;
  if (tfw_grad_enabled())
    return tfw__error(TFW_EUNSUPPORTED, "selective_scan: double backward (create_graph) through the "
                      "selective scan is not supported");
  tfw__call c;
  const tfw_tensor *in[8];
  for (int i = 0; i < 6; i++) in[i] = tfw__node_input(node, i);
  in[6] = gout[0], in[7] = gout[1];
  tfw__call_init(&c, TFW__OP_selective_scan_backward, 8, in);
  tfw_tensor *flat = tfw__op_run(&c);
  if (!flat) return tfw_last_status();
  int64_t off = 0;
  tfw_status st = TFW_OK;
  for (int i = 0; i < 6 && !st; i++) {
    const tfw_tensor *x = in[i];
    int64_t n = tfw_tensor_numel(x);
    if (tfw__needs_grad(node, i)) {
      tfw_tensor *piece = tfw_narrow(flat, 0, off, n);
      tfw_tensor *shaped = piece ? tfw_view(piece, tfw_tensor_ndim(x), tfw_tensor_shape(x)) : NULL;
      gin[i] = shaped && tfw_tensor_dtype(x) != tfw_tensor_dtype(shaped)
                   ? tfw_to_dtype(shaped, tfw_tensor_dtype(x))
                   : tfw_retain(shaped);
      tfw_release(piece), tfw_release(shaped);
      if (!gin[i]) st = tfw_last_status();
    }
    off += n;
  }
  tfw_release(flat);
  if (st)
    for (int i = 0; i < 6; i++) tfw_release(gin[i]), gin[i] = NULL;
  return st;
}

tfw_status tfw_selective_scan(const tfw_tensor *u, const tfw_tensor *delta, const tfw_tensor *A,
                              const tfw_tensor *B, const tfw_tensor *C, const tfw_tensor *D,
                              tfw_tensor **y, tfw_tensor **last_state) {
  if (!y) return tfw__error(TFW_EVALUE, "selective_scan: y (the output pointer) is NULL");
  *y = NULL;
  if (last_state) *last_state = NULL;
  tfw_tensor *dz = NULL;
  if (!D && u && A) { /* no skip: zeros, which need no gradient */
    if (tfw__check_tensor("selective_scan", "u", u)) return TFW_EVALUE;
    if (tfw_tensor_ndim(u) != 3)
      return tfw__error(TFW_ESHAPE, "selective_scan: u must be [batch, channels, length], got %d dims",
                        tfw_tensor_ndim(u));
    dz = tfw_zeros(tfw_tensor_dtype(u), 1, (int64_t[]){tfw_tensor_shape(u)[1]});
    if (!dz) return tfw_last_status();
    D = dz;
  }
  const tfw_tensor *in[6] = {u, delta, A, B, C, D};
  tfw__call c;
  tfw__call_init(&c, TFW__OP_selective_scan, 6, in);
  tfw_tensor *out[2];
  tfw_status st = tfw__op_run_multi(&c, out);
  if (!st && tfw_grad_enabled()) {
    bool any = false;
    for (int i = 0; i < 6; i++) any = any || tfw__requires_grad(in[i]);
    if (any) {
      c.op = &k_scan_node;
      st = tfw__autograd_record(&c, out);
      if (st) tfw_release(out[0]), tfw_release(out[1]);
    }
  }
  tfw_release(dz);
  if (st) return st;
  *y = out[0];
  if (last_state) *last_state = out[1];
  else tfw_release(out[1]);
  return TFW_OK;
}
