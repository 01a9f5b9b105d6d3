// Element-wise, shape, loss and random-number operations.
#include <torch/version.h>

#include <atomic>

#include "common.h"

using namespace torchbind;

// OpenMP's own setter, weak: it is there when libtorch brought an OpenMP
// runtime (GNU or Intel), and null otherwise.
extern "C" void omp_set_num_threads(int) __attribute__((weak));
// MKL keeps a count of its own per thread (PyPI's torch links MKL for BLAS;
// Debian's uses OpenBLAS and has none): at::set_num_threads sets it for the
// calling thread only, and MKL's GEMMs split their sums by it.
extern "C" int MKL_Set_Num_Threads_Local(int) __attribute__((weak));  // the C entry (lowercase is Fortran's, by reference)

namespace {
// The count tb_set_num_threads set for the process (0: libtorch's own), and
// how many times it was set; each OS thread remembers the generation it
// applied, and a count of its own while tb_set_thread_threads pins one.
std::atomic<int> process_threads{0};
std::atomic<uint64_t> generation{0};
thread_local uint64_t thread_generation = 0;
thread_local int pinned = 0;
thread_local int before_pinned = 0;  // the thread's count when pinned

// setThreadCount sets the calling thread's OpenMP (and MKL) thread count.
void setThreadCount(int n) {
  omp_set_num_threads(n);
  if (MKL_Set_Num_Threads_Local != nullptr) MKL_Set_Num_Threads_Local(n);
}

}  // namespace

namespace torchbind {

void sync_threads() {
  if (pinned > 0) return;
  uint64_t g = generation.load();
  if (g == thread_generation) return;
  int n = process_threads.load();
  if (n > 0 && omp_set_num_threads != nullptr) {
    (void)at::get_num_threads();  // libtorch's lazy initialisation first, as above
    setThreadCount(n);
  }
  thread_generation = g;
}

}  // namespace torchbind

namespace {

at::Tensor unary(int op, const at::Tensor &a) {
  switch (op) {
    case TB_NEG: return a.neg();
    case TB_EXP: return a.exp();
    case TB_LOG: return a.log();
    case TB_ABS: return a.abs();
    case TB_SQRT: return a.sqrt();
    case TB_DETACH: return a.detach();
    case TB_CLONE: return a.clone();
    case TB_ZEROS_LIKE: return at::zeros_like(a);
    case TB_ONES_LIKE: return at::ones_like(a);
    case TB_TO_FLOAT32: return a.to(at::kFloat);
    case TB_ROUND: return a.round();
  }
  throw std::invalid_argument("unknown unary op " + std::to_string(op));
}

at::Tensor binary(int op, const at::Tensor &a, const at::Tensor &b) {
  switch (op) {
    case TB_ADD: return a + b;
    case TB_SUB: return a - b;
    case TB_MUL: return a * b;
    case TB_DIV: return a / b;
    case TB_EQ: return a.eq(b);
    case TB_NE: return a.ne(b);
    case TB_LT: return a.lt(b);
    case TB_MAXIMUM: return at::maximum(a, b);
    case TB_MINIMUM: return at::minimum(a, b);
  }
  throw std::invalid_argument("unknown binary op " + std::to_string(op));
}

at::Tensor scalar(int op, const at::Tensor &a, double s) {
  switch (op) {
    case TB_ADD_SCALAR: return a + s;
    case TB_MUL_SCALAR: return a * s;
    case TB_POW_SCALAR: return a.pow(s);
    case TB_CLAMP_MIN: return a.clamp_min(s);
    case TB_RSUB_SCALAR: return s - a;
  }
  throw std::invalid_argument("unknown scalar op " + std::to_string(op));
}

const int64_t kAllDims = -100;

at::Tensor reduce(int op, const at::Tensor &a, int64_t dim, bool keepdim) {
  bool all = dim < kAllDims;
  switch (op) {
    case TB_SUM: return all ? a.sum() : a.sum(dim, keepdim);
    case TB_MEAN: return all ? a.mean() : a.mean(dim, keepdim);
    case TB_MAX: return all ? a.max() : std::get<0>(a.max(dim, keepdim));
    case TB_ARGMAX:
      if (all) break;
      return a.argmax(dim, keepdim);
    case TB_MODE:
      if (all) break;
      return std::get<0>(a.mode(dim, keepdim));
    case TB_SOFTMAX:
      if (all) break;
      return a.softmax(dim);
    case TB_LOG_SOFTMAX:
      if (all) break;
      return a.log_softmax(dim);
    default:
      throw std::invalid_argument("unknown reduction " + std::to_string(op));
  }
  throw std::invalid_argument("reduction " + std::to_string(op) + " needs a dimension");
}

int64_t reduction(int r) {
  switch (r) {
    case TB_REDUCE_NONE: return at::Reduction::None;
    case TB_REDUCE_MEAN: return at::Reduction::Mean;
    case TB_REDUCE_SUM: return at::Reduction::Sum;
  }
  throw std::invalid_argument("unknown loss reduction " + std::to_string(r));
}

at::Generator &G(tb_generator g) {
  if (g == nullptr) throw std::invalid_argument("nil generator");
  return *static_cast<at::Generator *>(g);
}

}  // namespace

extern "C" {

tb_error tb_unary(int op, tb_tensor a, tb_tensor *out) {
  return guard([&] { *out = wrap(unary(op, T(a))); });
}

tb_error tb_binary(int op, tb_tensor a, tb_tensor b, tb_tensor *out) {
  return guard([&] { *out = wrap(binary(op, T(a), T(b))); });
}

tb_error tb_scalar(int op, tb_tensor a, double s, tb_tensor *out) {
  return guard([&] { *out = wrap(scalar(op, T(a), s)); });
}

tb_error tb_clamp(tb_tensor a, double lo, double hi, tb_tensor *out) {
  return guard([&] { *out = wrap(T(a).clamp(lo, hi)); });
}

tb_error tb_where(tb_tensor cond, tb_tensor a, tb_tensor b, tb_tensor *out) {
  return guard([&] { *out = wrap(at::where(T(cond), T(a), T(b))); });
}

tb_error tb_reduce(int op, tb_tensor a, int64_t dim, int keepdim, tb_tensor *out) {
  return guard([&] { *out = wrap(reduce(op, T(a), dim, keepdim != 0)); });
}

tb_error tb_reshape(tb_tensor a, const int64_t *shape, int ndim, tb_tensor *out) {
  return guard([&] { *out = wrap(T(a).reshape(dims(shape, ndim))); });
}

tb_error tb_repeat(tb_tensor a, const int64_t *reps, int ndim, tb_tensor *out) {
  return guard([&] { *out = wrap(T(a).repeat(dims(reps, ndim))); });
}

tb_error tb_repeat_interleave(tb_tensor a, const int64_t *repeats, int n, tb_tensor *out) {
  return guard([&] {
    auto &x = T(a);
    auto r = at::tensor(at::IntArrayRef(repeats, static_cast<size_t>(n)), at::kLong).to(x.device());
    *out = wrap(x.repeat_interleave(r, 0));
  });
}

tb_error tb_cat(const tb_tensor *ts, int n, int64_t dim, tb_tensor *out) {
  return guard([&] {
    std::vector<at::Tensor> v;
    v.reserve(static_cast<size_t>(n));
    for (int i = 0; i < n; i++) v.push_back(T(ts[i]));
    *out = wrap(at::cat(v, dim));
  });
}

tb_error tb_narrow(tb_tensor a, int64_t dim, int64_t start, int64_t length, tb_tensor *out) {
  return guard([&] { *out = wrap(T(a).narrow(dim, start, length)); });
}

tb_error tb_index_select(tb_tensor a, int64_t dim, tb_tensor index, tb_tensor *out) {
  return guard([&] { *out = wrap(T(a).index_select(dim, T(index))); });
}

tb_error tb_cross_entropy(tb_tensor logits, tb_tensor labels, int r, tb_tensor *out) {
  return guard([&] {
    *out = wrap(at::cross_entropy_loss(T(logits), T(labels), {}, reduction(r)));
  });
}

tb_error tb_nll_loss(tb_tensor logp, tb_tensor labels, int r, tb_tensor *out) {
  return guard([&] { *out = wrap(at::nll_loss(T(logp), T(labels), {}, reduction(r))); });
}

tb_error tb_l2_norms(tb_tensor a, tb_tensor *out) {
  return guard([&] {
    auto &x = T(a);
    *out = wrap(x.reshape({x.size(0), -1}).norm(2, 1));
  });
}

tb_error tb_renorm(tb_tensor a, double maxnorm, tb_tensor *out) {
  return guard([&] { *out = wrap(T(a).renorm(2, 0, maxnorm)); });
}

tb_error tb_group_counts(tb_tensor labels, const int64_t *sizes, int ngroups, int64_t num_classes,
                         tb_tensor *out) {
  return guard([&] {
    auto &y = T(labels);
    if (y.dim() != 1) throw std::invalid_argument("group counts need 1-D labels");
    auto opts = at::TensorOptions().dtype(at::kLong).device(y.device());
    auto sz = at::tensor(at::IntArrayRef(sizes, static_cast<size_t>(ngroups)), at::kLong).to(y.device());
    auto group = at::arange(ngroups, opts).repeat_interleave(sz);
    if (group.numel() != y.numel()) throw std::invalid_argument("group sizes do not add up to the number of labels");
    auto bins = at::bincount(group * num_classes + y, {}, ngroups * num_classes);
    if (bins.numel() != ngroups * num_classes)
      throw std::invalid_argument("a label lies outside [0, " + std::to_string(num_classes) + ")");
    *out = wrap(bins.view({ngroups, num_classes}));
  });
}

tb_error tb_zeros(const int64_t *shape, int ndim, int dtype, const char *dev, tb_tensor *out) {
  return guard([&] {
    *out = wrap(at::zeros(dims(shape, ndim), at::TensorOptions().dtype(scalar_type(dtype)).device(device(dev))));
  });
}

tb_error tb_generator_new(const char *dev, uint64_t seed, tb_generator *out) {
  return guard([&] {
    // Cloning the device's default generator gives a private generator of the
    // right kind (CPU or CUDA) without linking CUDA code here.
    auto d = device(dev);
    auto g = at::globalContext().defaultGenerator(d).clone();
    g.set_current_seed(seed);
    *out = new at::Generator(std::move(g));
  });
}

void tb_generator_free(tb_generator g) { delete static_cast<at::Generator *>(g); }

tb_error tb_randn_like(tb_tensor a, double std, tb_generator g, tb_tensor *out) {
  return guard([&] {
    auto &x = T(a);
    auto opts = x.options().requires_grad(false);
    *out = wrap(at::randn(x.sizes(), G(g), opts).mul_(std));
  });
}

tb_error tb_randn(const int64_t *shape, int ndim, double std, tb_generator g, const char *dev,
                  tb_tensor *out) {
  return guard([&] {
    *out = wrap(at::randn(dims(shape, ndim), G(g), at::TensorOptions().device(device(dev))).mul_(std));
  });
}

tb_error tb_rand(const int64_t *shape, int ndim, tb_generator g, const char *dev, tb_tensor *out) {
  return guard([&] {
    *out = wrap(at::rand(dims(shape, ndim), G(g), at::TensorOptions().device(device(dev))));
  });
}

tb_error tb_add_(tb_tensor a, tb_tensor b, double alpha) {
  return guard([&] {
    at::NoGradGuard no_grad;
    T(a).add_(T(b), alpha);
  });
}

tb_error tb_mul_scalar_(tb_tensor a, double s) {
  return guard([&] {
    at::NoGradGuard no_grad;
    T(a).mul_(s);
  });
}

tb_error tb_copy_(tb_tensor a, tb_tensor b) {
  return guard([&] {
    at::NoGradGuard no_grad;
    auto &dst = T(a);
    auto &src = T(b);
    if (!dst.sizes().equals(src.sizes()))
      throw std::invalid_argument("copy: shape " + c10::str(src.sizes()) + " into " + c10::str(dst.sizes()));
    dst.copy_(src);
  });
}

tb_error tb_grad(tb_tensor output, const tb_tensor *inputs, int n, tb_tensor *out) {
  return guard([&] {
    std::vector<at::Tensor> in;
    for (int i = 0; i < n; i++) in.push_back(T(inputs[i]));
    auto gs = torch::autograd::grad({T(output)}, in, {}, /*retain_graph=*/false, /*create_graph=*/false,
                                    /*allow_unused=*/true);
    for (int i = 0; i < n; i++) out[i] = wrap(gs[i].defined() ? gs[i] : at::zeros_like(in[i]));
  });
}

tb_error tb_set_num_threads(int n) {
  return guard([&] {
    if (n < 1) throw std::invalid_argument("number of threads must be at least 1");
    at::set_num_threads(n);
    process_threads.store(n);
    thread_generation = generation.fetch_add(1) + 1;
  });
}

int tb_get_num_threads(void) {
  torchbind::sync_threads();
  return at::get_num_threads();
}

tb_error tb_set_thread_threads(int n) {
  return guard([&] {
    if (n < 0) throw std::invalid_argument("number of threads must be at least 1 (0 ends the thread's own count)");
    if (omp_set_num_threads == nullptr) throw std::runtime_error("libtorch runs without OpenMP: no per-thread thread count");
    if (n > 0) {
      // at::get_num_threads first gives this thread libtorch's lazy
      // initialisation, which its first parallel call would otherwise
      // apply over ours.
      if (pinned == 0) before_pinned = at::get_num_threads();
      setThreadCount(n);
    } else if (pinned > 0) {
      setThreadCount(before_pinned);
      thread_generation = 0;  // and the process's count at the next call, if set
    }
    pinned = n;
  });
}

const char *tb_torch_version(void) { return TORCH_VERSION; }

tb_error tb_cuda_device_count(int *n) {
  return guard([&] { *n = static_cast<int>(torch::cuda::device_count()); });
}

}  // extern "C"
