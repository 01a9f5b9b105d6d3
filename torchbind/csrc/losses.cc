// Operations of the training methods after SmoothAdv (MACER, consistency
// regularisation, SmoothMix): the normal quantile's erfinv, xlogy for
// KL divergences, top-k and boolean row selection.
#include "common.h"

using namespace torchbind;

extern "C" {

tb_error tb_erfinv(tb_tensor a, tb_tensor *out) {
  return guard([&] { *out = wrap(T(a).erfinv()); });
}

tb_error tb_xlogy(tb_tensor a, tb_tensor b, tb_tensor *out) {
  return guard([&] { *out = wrap(at::xlogy(T(a), T(b))); });
}

tb_error tb_le_scalar(tb_tensor a, double s, tb_tensor *out) {
  return guard([&] { *out = wrap(T(a).le(s)); });
}

tb_error tb_topk(tb_tensor a, int64_t k, int64_t dim, tb_tensor *values, tb_tensor *indices) {
  return guard([&] {
    auto r = T(a).topk(k, dim);
    auto v = wrap(std::get<0>(r));
    *indices = wrap(std::get<1>(r));
    *values = v;
  });
}

tb_error tb_mask_rows(tb_tensor a, tb_tensor mask, tb_tensor *out) {
  return guard([&] {
    auto &m = T(mask);
    if (m.scalar_type() != at::kBool || m.dim() != 1)
      throw std::invalid_argument("mask_rows needs a 1-D bool mask, got " + std::string(m.toString()) + " " +
                                  c10::str(m.sizes()));
    *out = wrap(T(a).index({m}));
  });
}

}  // extern "C"
