// Reduced-precision and channels-last inference for sampling: autocast and
// the input's memory format are set and restored inside one call, because
// both are thread-local and a goroutine may change threads between cgo calls.
#include <ATen/autocast_mode.h>
#include <torch/script.h>
#include <torch/csrc/jit/api/function_impl.h>
#include <torch/version.h>

#include <optional>

#include "common.h"

using namespace torchbind;

namespace {

torch::jit::Module &M(tb_module m) {
  if (m == nullptr) throw std::invalid_argument("nil module");
  return *static_cast<torch::jit::Module *>(m);
}

// The autocast state of one device type. PyTorch 2.4 made the device type a
// parameter and deprecated the per-device functions, which warn on every
// call from 2.x on; 1.13 has only those.
#if TORCH_VERSION_MAJOR >= 2 && (TORCH_VERSION_MAJOR > 2 || TORCH_VERSION_MINOR >= 4)
bool autocastEnabled(bool cuda) { return at::autocast::is_autocast_enabled(cuda ? at::kCUDA : at::kCPU); }
void setAutocastEnabled(bool cuda, bool on) { at::autocast::set_autocast_enabled(cuda ? at::kCUDA : at::kCPU, on); }
at::ScalarType autocastDtype(bool cuda) { return at::autocast::get_autocast_dtype(cuda ? at::kCUDA : at::kCPU); }
void setAutocastDtype(bool cuda, at::ScalarType t) { at::autocast::set_autocast_dtype(cuda ? at::kCUDA : at::kCPU, t); }
#else
bool autocastEnabled(bool cuda) { return cuda ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled(); }
void setAutocastEnabled(bool cuda, bool on) {
  if (cuda)
    at::autocast::set_enabled(on);
  else
    at::autocast::set_cpu_enabled(on);
}
at::ScalarType autocastDtype(bool cuda) {
  return cuda ? at::autocast::get_autocast_gpu_dtype() : at::autocast::get_autocast_cpu_dtype();
}
void setAutocastDtype(bool cuda, at::ScalarType t) {
  if (cuda)
    at::autocast::set_autocast_gpu_dtype(t);
  else
    at::autocast::set_autocast_cpu_dtype(t);
}
#endif

// Autocast enables autocast to dtype for one device type for its lifetime,
// restoring the thread's previous state afterwards.
class Autocast {
 public:
  Autocast(bool cuda, at::ScalarType dtype)
      : cuda_(cuda), was_(autocastEnabled(cuda)), old_(autocastDtype(cuda)) {
    setAutocastDtype(cuda_, dtype);
    setAutocastEnabled(cuda_, true);
    at::autocast::increment_nesting();
  }
  ~Autocast() {
    // Leaving the outermost region frees the casted-weight cache, as
    // torch.autocast's __exit__ does.
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
    setAutocastEnabled(cuda_, was_);
    setAutocastDtype(cuda_, old_);
  }
  Autocast(const Autocast &) = delete;
  Autocast &operator=(const Autocast &) = delete;

 private:
  bool cuda_;
  bool was_;
  at::ScalarType old_;
};

}  // namespace

extern "C" {

tb_error tb_module_infer_as(tb_module m, tb_tensor input, int precision, int channels_last, tb_tensor *out) {
  return guard([&] {
    at::Tensor x = T(input);
    bool cuda = x.is_cuda();
    std::optional<at::ScalarType> dtype;
    switch (precision) {
      case TB_PRECISION_FP32: break;
      case TB_PRECISION_BF16: dtype = at::kBFloat16; break;
      case TB_PRECISION_FP16:
        // CPU autocast (libtorch 1.13 onwards) casts to bfloat16 only.
        if (!cuda) throw std::invalid_argument("fp16 autocast needs a CUDA device (on cpu use bf16)");
        dtype = at::kHalf;
        break;
      default: throw std::invalid_argument("unknown precision code " + std::to_string(precision));
    }
    if (channels_last) {
      if (x.dim() != 4) throw std::invalid_argument("channels-last needs a 4-d input, got " + std::to_string(x.dim()) + " dimensions");
      x = x.contiguous(at::MemoryFormat::ChannelsLast);
    }
    torch::NoGradGuard no_grad;
    c10::IValue result;
    if (dtype) {
      Autocast ac(cuda, *dtype);
      result = M(m).forward({x});
    } else {
      result = M(m).forward({x});
    }
    if (!result.isTensor()) throw std::runtime_error("module forward returned " + result.tagKind() + ", not a tensor");
    // Logits come back as float32, whatever precision computed them.
    *out = wrap(result.toTensor().to(at::kFloat));
  });
}

tb_error tb_module_freeze(tb_module m, int simple, tb_module *out) {
  return guard([&] {
    auto copy = M(m).clone();
    copy.eval();
    auto frozen = torch::jit::freeze(copy);
    if (simple)
      torch::jit::toGraphFunction(frozen.get_method("forward").function())
          ._set_initial_executor_execution_mode(torch::jit::ExecutorExecutionMode::SIMPLE);
    *out = new torch::jit::Module(std::move(frozen));
  });
}

}  // extern "C"
