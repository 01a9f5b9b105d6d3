// What the process runs on: which malloc serves libtorch's CPU tensors.
#include <dlfcn.h>

#include <cstdlib>

#include "common.h"

extern "C" {

const char *tb_malloc_library(void) {
  // malloc as this library sees it: the first definition in the process's
  // lookup order, so an allocator linked into the executable shows here.
  void *(*m)(size_t) = &std::malloc;
  Dl_info info;
  if (dladdr(reinterpret_cast<void *>(m), &info) == 0 || info.dli_fname == nullptr) return "";
  return info.dli_fname;
}

}  // extern "C"
