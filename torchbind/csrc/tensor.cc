// Tensor handles: creation from host memory, copies back, metadata, autograd state.
#include "common.h"

using namespace torchbind;

extern "C" {

void tb_free_string(char *s) { std::free(s); }

void tb_tensor_free(tb_tensor t) { delete static_cast<at::Tensor *>(t); }

tb_error tb_tensor_from_host(const void *data, const int64_t *shape, int ndim, int dtype,
                             const char *dev, tb_tensor *out) {
  return guard([&] {
    auto d = device(dev);
    auto opts = at::TensorOptions().dtype(scalar_type(dtype));
    // data is the caller's: copy it into libtorch memory first. For a CUDA
    // device that memory is pinned so the upload need not wait (the caching
    // host allocator keeps the block until the copy has run); on the CPU the
    // copy is the result.
    auto host = at::empty(dims(shape, ndim), opts.pinned_memory(d.is_cuda()));
    std::memcpy(host.data_ptr(), data, static_cast<size_t>(host.nbytes()));
    *out = wrap(d.is_cuda() ? host.to(d, /*non_blocking=*/true) : host);
  });
}

tb_error tb_tensor_to_host(tb_tensor t, void *dst, int64_t nbytes) {
  return guard([&] {
    auto host = T(t).detach().to(at::kCPU).contiguous();
    int64_t have = host.numel() * static_cast<int64_t>(host.element_size());
    if (have != nbytes)
      throw std::invalid_argument("host buffer holds " + std::to_string(nbytes) + " bytes, tensor has " +
                                  std::to_string(have));
    std::memcpy(dst, host.data_ptr(), static_cast<size_t>(nbytes));
  });
}

tb_error tb_tensor_info(tb_tensor t, int64_t *shape, int *ndim, int *dtype) {
  return guard([&] {
    auto &x = T(t);
    if (x.dim() > TB_MAX_DIMS) throw std::invalid_argument("tensor has too many dimensions");
    *ndim = static_cast<int>(x.dim());
    for (int64_t i = 0; i < x.dim(); i++) shape[i] = x.size(i);
    *dtype = dtype_code(x.scalar_type());
  });
}

tb_error tb_tensor_device(tb_tensor t, char *buf, int buflen) {
  return guard([&] {
    std::string s = T(t).device().str();
    if (static_cast<int>(s.size()) + 1 > buflen) throw std::invalid_argument("device name too long");
    std::memcpy(buf, s.c_str(), s.size() + 1);
  });
}

tb_error tb_tensor_item(tb_tensor t, double *out) {
  return guard([&] { *out = T(t).item<double>(); });
}

tb_error tb_tensor_alias(tb_tensor t, tb_tensor *out) {
  return guard([&] { *out = wrap(T(t)); });
}

tb_error tb_tensor_requires_grad(tb_tensor t, int on, int *was) {
  return guard([&] {
    *was = T(t).requires_grad();
    T(t).requires_grad_(on != 0);
  });
}

tb_error tb_tensor_grad(tb_tensor t, tb_tensor *out) {
  return guard([&] {
    const auto &g = T(t).grad();
    *out = g.defined() ? wrap(g) : nullptr;
  });
}

tb_error tb_tensor_zero_grad(tb_tensor t) {
  // Like optimizer.zero_grad(set_to_none=True): the next backward writes afresh.
  return guard([&] { T(t).mutable_grad().reset(); });
}

tb_error tb_tensor_backward(tb_tensor t) {
  return guard([&] { T(t).backward(); });
}

}  // extern "C"
