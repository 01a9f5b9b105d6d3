// Helpers shared by the torchbind translation units.
#pragma once

#include <torch/torch.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "torchbind.h"

namespace torchbind {

inline char *dup_message(const char *msg) {
  size_t n = std::strlen(msg);
  char *s = static_cast<char *>(std::malloc(n + 1));
  if (s != nullptr) std::memcpy(s, msg, n + 1);
  return s;
}

// sync_threads gives the calling OS thread the intra-op thread count that
// tb_set_num_threads last set for the process (ops.cc). libtorch applies
// at::set_num_threads (OpenMP's count, and MKL's where it has MKL) to the
// calling thread and to threads that have not
// yet run a parallel op; a thread that has keeps its old count. Go runs a
// goroutine's calls on whichever OS thread is free, so without this the
// count, and with it the order of float sums, would change with the
// scheduler (the same seed giving other weights under load).
void sync_threads();

// guard runs f and turns any C++ exception into an error message, so that no
// exception crosses into Go.
template <class F>
tb_error guard(F &&f) {
  try {
    sync_threads();
    f();
    return nullptr;
  } catch (const c10::Error &e) {
    return dup_message(e.what_without_backtrace());
  } catch (const std::exception &e) {
    return dup_message(e.what());
  } catch (...) {
    return dup_message("unknown C++ exception");
  }
}

inline at::Tensor &T(tb_tensor t) {
  if (t == nullptr) throw std::invalid_argument("nil tensor");
  return *static_cast<at::Tensor *>(t);
}

inline tb_tensor wrap(at::Tensor t) { return new at::Tensor(std::move(t)); }

inline at::IntArrayRef dims(const int64_t *shape, int ndim) {
  if (ndim < 0 || ndim > TB_MAX_DIMS) throw std::invalid_argument("bad number of dimensions");
  return at::IntArrayRef(shape, static_cast<size_t>(ndim));
}

inline at::ScalarType scalar_type(int dtype) {
  switch (dtype) {
    case TB_FLOAT32: return at::kFloat;
    case TB_FLOAT64: return at::kDouble;
    case TB_INT64: return at::kLong;
    case TB_UINT8: return at::kByte;
    case TB_BOOL: return at::kBool;
    case TB_INT32: return at::kInt;
  }
  throw std::invalid_argument("unknown dtype code " + std::to_string(dtype));
}

inline int dtype_code(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return TB_FLOAT32;
    case at::kDouble: return TB_FLOAT64;
    case at::kLong: return TB_INT64;
    case at::kByte: return TB_UINT8;
    case at::kBool: return TB_BOOL;
    case at::kInt: return TB_INT32;
    default: throw std::invalid_argument(std::string("unsupported dtype ") + c10::toString(t));
  }
}

inline at::Device device(const char *name) {
  if (name == nullptr) throw std::invalid_argument("nil device name");
  return at::Device(std::string(name));
}

}  // namespace torchbind
