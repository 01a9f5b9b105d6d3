// What the libtorch this shim was compiled against can run on, so that Go can
// refuse a device name plainly instead of passing on the dispatcher's text.
#include "torchbind.h"

extern "C" {

int tb_cuda_built(void) {
#ifdef TORCHBIND_CUDA  // set by the Makefile when libtorch ships libtorch_cuda
  return 1;
#else
  return 0;
#endif
}

}  // extern "C"
