/* tenflower — recurrent layers: LSTM, GRU (torch.nn.LSTM / torch.nn.GRU), and the Mamba
 * block with its selective state-space scan (Gu & Dao 2023, mamba_simple.py).
 *
 * Parameter names and layouts are PyTorch's / mamba's, so state_dicts move between the two:
 * LSTM/GRU: weight_ih_l{k}[_reverse] [G*H, I_k], weight_hh_l{k}[_reverse] [G*H, H],
 * bias_ih_l{k}[_reverse], bias_hh_l{k}[_reverse] [G*H], G = 4 (gates i, f, g, o) for LSTM and
 * 3 (r, z, n) for GRU; Mamba: in_proj.weight, conv1d.weight, conv1d.bias, x_proj.weight,
 * dt_proj.weight, dt_proj.bias, A_log, D, out_proj.weight. */
#ifndef TENFLOWER_NN_RECURRENT_H
#define TENFLOWER_NN_RECURRENT_H

#include "nn.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- LSTM / GRU ----------------------------------------------------------------------------- */
/* A multi-layer LSTM (torch.nn.LSTM): c' = f*c + i*g, h' = o*tanh(c'), with dropout p on the
 * outputs of every layer but the last (training mode only). Parameters are initialised
 * U(-1/sqrt(H), 1/sqrt(H)). Forward through tfw_module_forward:
 *   inputs  {x, h0, c0}: x [T, N, I] ([N, T, I] if batch_first; [T, I] unbatched); h0, c0
 *           [layers*dirs, N, H] ([layers*dirs, H] unbatched), optional: n_in 1, or NULL
 *           entries, mean zeros;
 *   outputs {output, h_n, c_n} (n_out 1 to 3): output [T, N, dirs*H] (batch_first:
 *           [N, T, dirs*H]), h_n and c_n like h0.
 * The input projections of all time steps are one matmul per layer and direction; the
 * recurrence is built from registered ops, so autograd (and double backward) works.
 * Returns NULL (TFW_EVALUE) on sizes < 1 (hidden, layers) or < 0 (input) or p outside [0, 1]. */
TFW_API tfw_module *tfw_lstm_new(int64_t input_size, int64_t hidden_size, int num_layers, bool bias,
                                 bool batch_first, double dropout, bool bidirectional);
/* A multi-layer GRU (torch.nn.GRU): r = s(W_ir x + b_ir + W_hr h + b_hr), z likewise,
 * n = tanh(W_in x + b_in + r * (W_hn h + b_hn)), h' = (1 - z) n + z h. Inputs {x, h0},
 * outputs {output, h_n}, shapes as for the LSTM. */
TFW_API tfw_module *tfw_gru_new(int64_t input_size, int64_t hidden_size, int num_layers, bool bias,
                                bool batch_first, double dropout, bool bidirectional);

/* ---- the selective scan ---------------------------------------------------------------------- */
/* y_t = C_t . h_t + D u_t with h_t = exp(delta_t A) h_{t-1} + delta_t B_t u_t, h_{-1} = 0, per
 * batch b and channel d (mamba's selective_scan_fn without delta_bias/softplus/z):
 *   u, delta [B, D, L]; A [D, N]; B, C [B, N, L]; D [D] (NULL: no skip term);
 *   y [B, D, L] (new reference); last_state (may be NULL) [B, D, N], h_{L-1}.
 * Any strides and floating dtypes; outputs in u's dtype. A chunked parallel scan working with
 * sums of delta*A (log decays): stable for long sequences (tested at L = 32768).
 * Differentiable w.r.t. all six inputs (a fused chunked reverse scan). Double backward
 * (create_graph) and forward-mode tangents work too, through a composite of registered ops
 * that materialises the [B, D, N, L] states and runs L small steps: fine for second-order
 * work on modest sizes, not a training fast path.
 * Errors: TFW_EVALUE (NULL), TFW_EDTYPE (non-floating), TFW_ESHAPE (shapes disagree). */
TFW_API tfw_status tfw_selective_scan(const tfw_tensor *u, const tfw_tensor *delta, const tfw_tensor *A,
                                      const tfw_tensor *B, const tfw_tensor *C, const tfw_tensor *D,
                                      tfw_tensor **y, tfw_tensor **last_state);
/* One step of the same recurrence, O(1) per token (generation): state [B, D, N], x and dt
 * [B, D], A [D, N], B and C [B, N], D [D] or NULL. Writes y [B, D] and new_state [B, D, N]
 * (new references). Built from registered ops: differentiable. */
TFW_API tfw_status tfw_selective_state_update(const tfw_tensor *state, const tfw_tensor *x,
                                              const tfw_tensor *dt, const tfw_tensor *A,
                                              const tfw_tensor *B, const tfw_tensor *C,
                                              const tfw_tensor *D, tfw_tensor **y,
                                              tfw_tensor **new_state);

/* ---- Mamba ------------------------------------------------------------------------------------ */
/* The Mamba block of mamba_simple.py with its defaults (bias=False, conv_bias=True,
 * dt_min 0.001, dt_max 0.1, dt_init "random", dt_scale 1, dt_init_floor 1e-4):
 * d_inner = expand * d_model, dt_rank = ceil(d_model / 16) (dt_rank <= 0 picks that),
 * A_log = log(1..d_state) per channel, D = 1. Forward (tfw_module_call): x [B, L, d_model]
 * -> [B, L, d_model]. NULL (TFW_EVALUE) for sizes < 1. */
TFW_API tfw_module *tfw_mamba_new(int64_t d_model, int64_t d_state, int64_t d_conv, int64_t expand,
                                  int64_t dt_rank);
/* One generation step of a Mamba block (mamba_simple's step): x [B, d_model];
 * conv_state [B, d_inner, d_conv] (the last d_conv inputs of the conv, oldest first);
 * ssm_state [B, d_inner, d_state]. Writes y [B, d_model] and the new states (new
 * references). Start from zero states; O(1) work per token. */
TFW_API tfw_status tfw_mamba_step(tfw_module *m, const tfw_tensor *x, const tfw_tensor *conv_state,
                                  const tfw_tensor *ssm_state, tfw_tensor **y,
                                  tfw_tensor **new_conv_state, tfw_tensor **new_ssm_state);

#ifdef __cplusplus
}
#endif
#endif
