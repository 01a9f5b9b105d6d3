/* torchbind: our plain C ABI over libtorch, the one way Go reaches it:
 * TorchScript modules, tensors, autograd, seeded generators and noise,
 * reduced precision, c10d process groups, and what the runtime is.
 *
 * Conventions:
 *  - Handles are opaque pointers owned by the caller, freed with the matching
 *    *_free function.
 *  - Every function that can fail returns NULL on success or an error message
 *    allocated with malloc (free it with tb_free_string); results come back
 *    through out-parameters of the same call. No C++ exception crosses this
 *    boundary.
 *  - Autograd is enabled unless a call says otherwise; calls that must not
 *    record a graph (no-grad forward, in-place parameter updates) set their own
 *    guard, so nothing depends on thread-local state across calls.
 */
#ifndef TORCHBIND_H
#define TORCHBIND_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef void *tb_tensor;    /* at::Tensor* */
typedef void *tb_module;    /* torch::jit::Module* */
typedef void *tb_generator; /* at::Generator* */
typedef char *tb_error;     /* NULL, or a malloc'd message */

enum tb_dtype { TB_FLOAT32 = 0, TB_FLOAT64 = 1, TB_INT64 = 2, TB_UINT8 = 3, TB_BOOL = 4, TB_INT32 = 5 };

#define TB_MAX_DIMS 8

void tb_free_string(char *s);

/* ---- tensors ---- */
void tb_tensor_free(tb_tensor t);
/* Copies ndim-dimensional host data of the given dtype onto device; the
 * caller may reuse data at once. A CUDA upload goes through pinned memory
 * and does not wait for the device. */
tb_error tb_tensor_from_host(const void *data, const int64_t *shape, int ndim, int dtype,
                             const char *device, tb_tensor *out);
/* Copies a tensor (any device, made contiguous) into host memory of nbytes. */
tb_error tb_tensor_to_host(tb_tensor t, void *dst, int64_t nbytes);
tb_error tb_tensor_info(tb_tensor t, int64_t *shape, int *ndim, int *dtype);
tb_error tb_tensor_device(tb_tensor t, char *buf, int buflen);
tb_error tb_tensor_item(tb_tensor t, double *out);
/* A new handle to the same tensor (shares storage and autograd identity). */
tb_error tb_tensor_alias(tb_tensor t, tb_tensor *out);
tb_error tb_tensor_requires_grad(tb_tensor t, int on, int *was);
/* The accumulated gradient of a leaf; *out is NULL when it has none. */
tb_error tb_tensor_grad(tb_tensor t, tb_tensor *out);
tb_error tb_tensor_zero_grad(tb_tensor t);
tb_error tb_tensor_backward(tb_tensor t);

/* ---- element-wise and shape operations ---- */
enum tb_unary_op {
	TB_NEG, TB_EXP, TB_LOG, TB_ABS, TB_SQRT,
	TB_DETACH, TB_CLONE, TB_ZEROS_LIKE, TB_ONES_LIKE,
	TB_TO_FLOAT32,
	TB_ROUND
};
tb_error tb_unary(int op, tb_tensor a, tb_tensor *out);

enum tb_binary_op { TB_ADD, TB_SUB, TB_MUL, TB_DIV, TB_EQ, TB_NE, TB_LT, TB_MAXIMUM, TB_MINIMUM };
tb_error tb_binary(int op, tb_tensor a, tb_tensor b, tb_tensor *out);

enum tb_scalar_op { TB_ADD_SCALAR, TB_MUL_SCALAR, TB_POW_SCALAR, TB_CLAMP_MIN, TB_RSUB_SCALAR };
tb_error tb_scalar(int op, tb_tensor a, double s, tb_tensor *out);
tb_error tb_clamp(tb_tensor a, double lo, double hi, tb_tensor *out);
/* where(cond, a, b) */
tb_error tb_where(tb_tensor cond, tb_tensor a, tb_tensor b, tb_tensor *out);

enum tb_reduce_op { TB_SUM, TB_MEAN, TB_MAX, TB_ARGMAX, TB_MODE, TB_SOFTMAX, TB_LOG_SOFTMAX };
/* dim < -100 means all dimensions (only for SUM, MEAN and MAX). */
tb_error tb_reduce(int op, tb_tensor a, int64_t dim, int keepdim, tb_tensor *out);

tb_error tb_reshape(tb_tensor a, const int64_t *shape, int ndim, tb_tensor *out);
tb_error tb_repeat(tb_tensor a, const int64_t *reps, int ndim, tb_tensor *out);
/* Repeats slice i along dim 0 repeats[i] times, consecutively. */
tb_error tb_repeat_interleave(tb_tensor a, const int64_t *repeats, int n, tb_tensor *out);
tb_error tb_cat(const tb_tensor *ts, int n, int64_t dim, tb_tensor *out);
tb_error tb_narrow(tb_tensor a, int64_t dim, int64_t start, int64_t length, tb_tensor *out);
tb_error tb_index_select(tb_tensor a, int64_t dim, tb_tensor index, tb_tensor *out);

/* ---- losses, norms and projections ---- */
enum tb_reduction { TB_REDUCE_NONE = 0, TB_REDUCE_MEAN = 1, TB_REDUCE_SUM = 2 };
tb_error tb_cross_entropy(tb_tensor logits, tb_tensor labels, int reduction, tb_tensor *out);
tb_error tb_nll_loss(tb_tensor logp, tb_tensor labels, int reduction, tb_tensor *out);
/* The L2 norm of each sample (all dimensions after the first): shape [B]. */
tb_error tb_l2_norms(tb_tensor a, tb_tensor *out);
/* Scales each sample (along dim 0) whose L2 norm exceeds maxnorm down to maxnorm,
 * as torch.renorm(a, p=2, dim=0, maxnorm). */
tb_error tb_renorm(tb_tensor a, double maxnorm, tb_tensor *out);
/* Per-group class counts: labels int64 [sum(group sizes)] of classes in
 * [0, num_classes); group g covers the next sizes[g] entries. Result int64
 * [ngroups, num_classes] on the labels' device. */
tb_error tb_group_counts(tb_tensor labels, const int64_t *sizes, int ngroups, int64_t num_classes,
                         tb_tensor *out);

/* ---- creation and random numbers ---- */
tb_error tb_zeros(const int64_t *shape, int ndim, int dtype, const char *device, tb_tensor *out);
tb_error tb_generator_new(const char *device, uint64_t seed, tb_generator *out);
void tb_generator_free(tb_generator g);
/* Standard normal values shaped like a, on a's device, scaled by std. */
tb_error tb_randn_like(tb_tensor a, double std, tb_generator g, tb_tensor *out);
tb_error tb_randn(const int64_t *shape, int ndim, double std, tb_generator g, const char *device,
                  tb_tensor *out);
tb_error tb_rand(const int64_t *shape, int ndim, tb_generator g, const char *device, tb_tensor *out);

/* ---- runtime (runtime.cc) ---- */
/* The file of the shared object whose malloc the process uses ("" if
   unknown); static for the process's life. */
const char *tb_malloc_library(void);
/* CUDA runtime and cuDNN versions libtorch was built with (13000 is 13.0,
   91900 is 9.19.0); 0 without CUDA. Needs no GPU. */
tb_error tb_cuda_versions(long *cudart, long *cudnn);
/* ATen's CPU kernels on this machine: "default", "avx2", "avx512", as
   torch.__config__.show() names them. */
const char *tb_cpu_capability(void);

/* ---- noise streams (noise.cc) ---- */
/* Rows of *out are images[idx[p]] (takes[p] rows for piece p, in order) plus
   N(0, std^2) noise. The noise is the concatenation of nsegs segments:
   segment s is rows [starts[s], starts[s] + counts[s]) of the [chunk, ...]
   block that the device's generator seeded with seeds[s] draws. */
tb_error tb_noisy_copies(tb_tensor images, const int64_t *idx, const int64_t *takes, int npieces,
                         const uint64_t *seeds, const int64_t *starts, const int64_t *counts, int nsegs,
                         int64_t chunk, double std, tb_tensor *out);
/* *row is the first row (along dimension 0) of a holding a NaN or an
   infinity, or -1 if none does. */
tb_error tb_first_nonfinite_row(tb_tensor a, int64_t *row);

/* ---- in-place updates (no autograd recording) ---- */
/* a += alpha * b */
tb_error tb_add_(tb_tensor a, tb_tensor b, double alpha);
/* a *= s */
tb_error tb_mul_scalar_(tb_tensor a, double s);
/* a <- b (shapes must match, dtype and device converted) */
tb_error tb_copy_(tb_tensor a, tb_tensor b);

/* ---- autograd ---- */
/* d(output)/d(inputs[i]) for a scalar output; out[i] is a new handle. The
 * graph is freed afterwards. */
tb_error tb_grad(tb_tensor output, const tb_tensor *inputs, int n, tb_tensor *out);

/* ---- TorchScript modules ---- */
/* Loads a TorchScript file straight onto device. *meta receives the file's
 * extra/smoothadv.json (malloc'd; NULL when absent). */
tb_error tb_module_load(const char *path, const char *device, tb_module *out, char **meta);
void tb_module_free(tb_module m);
/* Saves the module; meta (may be NULL) becomes extra/smoothadv.json. */
tb_error tb_module_save(tb_module m, const char *path, const char *meta);
/* grad != 0 records the autograd graph; grad == 0 runs under no-grad. */
/* channels_last != 0 passes a 4-d input in channels-last memory format (same values). */
tb_error tb_module_forward(tb_module m, tb_tensor input, int grad, int channels_last, tb_tensor *out);
tb_error tb_module_train(tb_module m, int on);
tb_error tb_module_is_training(tb_module m, int *on);
tb_error tb_module_to(tb_module m, const char *device);
/* Casts the module's floating-point parameters and buffers to dtype. */
tb_error tb_module_to_dtype(tb_module m, int dtype);
/* A frozen copy of the module optimised for inference
 * (torch.jit.optimize_for_inference: BatchNorm folded into convolutions,
 * fused kernels). It runs only in eval mode and records no gradients. */
tb_error tb_module_optimize_for_inference(tb_module m, tb_module *out);
/* Named parameters (buffers != 0: named buffers), recursively, in module
 * order. names and tensors are malloc'd arrays of n entries; each name is
 * malloc'd; the caller frees them all (tensors with tb_tensor_free, which frees
 * the handle, not the module's storage). */
tb_error tb_module_named(tb_module m, int buffers, char ***names, tb_tensor **tensors, int *n);
/* Replaces the parameter or buffer at a dotted path (e.g. "1.fc.weight"),
 * allowing a new shape (for a new classifier head). */
tb_error tb_module_set_attr(tb_module m, const char *path, tb_tensor value);
/* Replaces a List[float] attribute at a dotted path (e.g. "0.sds"). */
tb_error tb_module_set_floats(tb_module m, const char *path, const double *values, int n);

/* ---- runtime ---- */
tb_error tb_cuda_device_count(int *n);
tb_error tb_set_num_threads(int n);
int tb_get_num_threads(void);
/* Every call that can fail first gives the calling OS thread the count
 * tb_set_num_threads set (see sync_threads in common.h). */
/* Pins the intra-op threads of the calling OS thread to n (its OpenMP count),
 * leaving other threads' and the process's alone; n = 0 unpins it, back to
 * what it had. An error when libtorch runs without OpenMP. */
tb_error tb_set_thread_threads(int n);
/* The libtorch version the shim was compiled against, e.g. "1.13.0". */
const char *tb_torch_version(void);

#ifdef __cplusplus
}
#endif

/* ---- checkpoints (pickle.cc) ---- */
#ifdef __cplusplus
extern "C" {
#endif

/* The hyperparameters of SGD's single param group. */
typedef struct {
	double lr, momentum, dampening, weight_decay;
	int nesterov;
} tb_sgd_group;

/* Writes path in torch.save's zip format, readable by torch.load on any
 * machine (tensors are detached and copied to the CPU first). The file holds
 * the dict, in this order:
 *   'epoch': epoch, 'arch': arch,
 *   'state_dict': {names[i]: tensors[i]} for i < n, in that order,
 *   'optimizer' (only when sgd != NULL): torch.optim.SGD's state_dict,
 *       {'state': {i: {'momentum_buffer': momentum[i]}} for each non-NULL
 *                 momentum[i], i < nparams,
 *        'param_groups': [{'lr', 'momentum', 'dampening', 'weight_decay',
 *                          'nesterov', 'params': [0, ..., nparams-1]}]},
 *   'normalization': normalization, 'noise_sd': noise_sd,
 *   'means': means[:nchannels], 'sds': sds[:nchannels].
 * Dicts and lists are pickled plainly, as torch.save writes them. */
tb_error tb_checkpoint_save(const char *path, int64_t epoch, const char *arch,
                            const char *const *names, const tb_tensor *tensors, int n,
                            const tb_sgd_group *sgd, const tb_tensor *momentum, int nparams,
                            const char *normalization, double noise_sd,
                            const double *means, const double *sds, int nchannels);

/* ---- devices (device.cc) ---- */
/* 1 when the shim was compiled against a libtorch with CUDA, else 0. */
int tb_cuda_built(void);

#ifdef __cplusplus
}
#endif

/* ---- reduced precision and memory format for inference (precision.cc) ---- */
#ifdef __cplusplus
extern "C" {
#endif

enum tb_precision { TB_PRECISION_FP32 = 0, TB_PRECISION_BF16 = 1, TB_PRECISION_FP16 = 2 };
/* Runs the module on input without autograd, under autocast to the
 * precision's dtype on the input's device (fp16 only on CUDA), with the input
 * in channels-last memory format when channels_last != 0. *out is float32. */
tb_error tb_module_infer_as(tb_module m, tb_tensor input, int precision, int channels_last, tb_tensor *out);
/* A frozen eval-mode copy (BatchNorm folded into convolutions) without
 * tb_module_optimize_for_inference's conversion to MKLDNN, whose prepacked
 * convolutions autocast does not reach. */
/* simple != 0 runs the copy's forward in TorchScript's simple executor (no
 * profiling runs, no graph optimisation): for a copy that serves a few
 * calls and is dropped. */
tb_error tb_module_freeze(tb_module m, int simple, tb_module *out);

#ifdef __cplusplus
}
#endif

/* ---- conversions of the training step (convert.cc) ---- */
#ifdef __cplusplus
extern "C" {
#endif

/* a converted to dtype (a itself, shared, when it already has it). */
tb_error tb_to_dtype(tb_tensor a, int dtype, tb_tensor *out);

#ifdef __cplusplus
}
#endif

/* ---- operations of the training methods after SmoothAdv (losses.cc) ---- */
#ifdef __cplusplus
extern "C" {
#endif

/* The inverse error function, element-wise. */
tb_error tb_erfinv(tb_tensor a, tb_tensor *out);
/* a * log(b), 0 where a is 0 (torch.xlogy). */
tb_error tb_xlogy(tb_tensor a, tb_tensor b, tb_tensor *out);
/* a <= s, element-wise (false for NaN). */
tb_error tb_le_scalar(tb_tensor a, double s, tb_tensor *out);
/* The k largest values along dim, in decreasing order, and their indices. */
tb_error tb_topk(tb_tensor a, int64_t k, int64_t dim, tb_tensor *values, tb_tensor *indices);
/* The rows (along dim 0) of a where the 1-D bool mask is true, as a[mask]. */
tb_error tb_mask_rows(tb_tensor a, tb_tensor mask, tb_tensor *out);

#ifdef __cplusplus
}
#endif

/* ---- process groups for data-parallel training (dist.cc) ---- */
#ifdef __cplusplus
extern "C" {
#endif

typedef void *tb_store; /* a c10d::Store (TCPStore, perhaps under a prefix) */
typedef void *tb_group; /* a c10d Gloo or NCCL backend */

/* The backends compiled in, each followed by a space: "gloo ", "gloo nccl ". */
const char *tb_dist_backends(void);
/* A TCPStore at host:port: served by this process when serve != 0, else
 * reached as a client (retrying up to timeout_ms). Each of the world
 * processes checks in; the host waits up to timeout_ms for them all (and
 * goes on regardless: a missing process shows when the group forms). Keys
 * go under prefix unless it is "". */
tb_error tb_store_new(const char *host, int port, int serve, int world, const char *prefix, int64_t timeout_ms,
                      tb_store *out);
void tb_store_free(tb_store s);
tb_error tb_store_set(tb_store s, const char *key, const char *value, int n);
/* *found is 0 when key is not set (no waiting); else *value (malloc'd,
 * NUL-terminated) holds its n bytes. */
tb_error tb_store_get(tb_store s, const char *key, char **value, int *n, int *found);
tb_error tb_store_add(tb_store s, const char *key, int64_t delta, int64_t *out);
/* Joins rank of world processes through the store with backend "gloo" or
 * "nccl"; timeout_ms bounds the rendezvous and every collective. */
tb_error tb_group_new(tb_store s, int rank, int world, const char *backend, int64_t timeout_ms, tb_group *out);
void tb_group_free(tb_group g);
/* Sums the n tensors in place over the group (then divides by the world size
 * when average != 0), bucket by bucket: runs of tensors of one dtype and
 * device of at most bucket_bytes, each flattened into one message. */
tb_error tb_group_allreduce(tb_group g, const tb_tensor *ts, int n, int average, int64_t bucket_bytes);
/* Overwrites the n tensors with root's, in buckets as tb_group_allreduce. */
tb_error tb_group_broadcast(tb_group g, const tb_tensor *ts, int n, int root, int64_t bucket_bytes);
tb_error tb_group_barrier(tb_group g);

#ifdef __cplusplus
}
#endif

#endif
