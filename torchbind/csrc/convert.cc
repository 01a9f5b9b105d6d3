// Conversions of the training step: its running sums stay on the device in
// float64 (meters read once per epoch, not after every step).
#include "common.h"

using namespace torchbind;

extern "C" {

tb_error tb_to_dtype(tb_tensor a, int dtype, tb_tensor *out) {
  return guard([&] { *out = wrap(T(a).to(scalar_type(dtype))); });
}

}  // extern "C"
