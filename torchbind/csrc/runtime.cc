// What the process runs on: which malloc serves libtorch's CPU tensors, the
// CUDA libraries libtorch was built with, and ATen's CPU kernels.
#include <ATen/detail/CUDAHooksInterface.h>
#include <ATen/Version.h>
#include <dlfcn.h>

#include <cctype>
#include <cstdlib>
#include <string>

#include "common.h"

using namespace torchbind;

extern "C" {

const char *tb_malloc_library(void) {
  // malloc as this library sees it: the first definition in the process's
  // lookup order, so an allocator linked into the executable shows here.
  void *(*m)(size_t) = &std::malloc;
  Dl_info info;
  if (dladdr(reinterpret_cast<void *>(m), &info) == 0 || info.dli_fname == nullptr) return "";
  return info.dli_fname;
}

// tb_cuda_versions gives CUDA's runtime and cuDNN's versions as libtorch's
// CUDA hooks report them (CUDA 13.0 is 13000, cuDNN 9.19.0 is 91900), or 0
// where libtorch has no CUDA. No GPU is needed.
tb_error tb_cuda_versions(long *cudart, long *cudnn) {
  return guard([&] {
    *cudart = 0;
    *cudnn = 0;
    const auto &hooks = at::detail::getCUDAHooks();
    try {
      *cudart = hooks.versionCUDART();
    } catch (const std::exception &) {
      return;  // a CPU-only libtorch: no CUDA hooks registered
    }
    if (hooks.compiledWithCuDNN()) *cudnn = hooks.versionCuDNN();
  });
}

// tb_cpu_capability names the vector kernels ATen dispatches to on this CPU
// (ATEN_CPU_CAPABILITY can lower them), as torch.__config__.show() reports
// them: libtorch exports no other way to ask. Static for the process's life.
const char *tb_cpu_capability(void) {
  static const std::string capability = [] {
    const std::string key = "CPU capability usage: ";
    std::string config;
    try {
      config = at::show_config();
    } catch (const std::exception &) {
      return std::string("unknown");
    }
    auto at = config.find(key);
    if (at == std::string::npos) return std::string("unknown");
    auto end = config.find('\n', at);
    std::string name = config.substr(at + key.size(), end == std::string::npos ? std::string::npos : end - at - key.size());
    for (auto &c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return name;
  }();
  return capability.c_str();
}

}  // extern "C"
