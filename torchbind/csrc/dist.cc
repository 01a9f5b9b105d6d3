// c10d process groups for data-parallel training: a TCPStore for the
// rendezvous and small messages, and a Gloo (CPU) or NCCL (CUDA) backend for
// bucketed all-reduce and broadcast. Each backend compiles only where its
// headers are: Gloo's come from Debian's libgloo-dev (or the libtorch tree),
// NCCL's only with a CUDA libtorch.
#if __has_include(<gloo/config.h>)
#define USE_C10D_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
// ProcessGroupNCCL.hpp includes NCCL's header and, through ATen's CUDA
// context, the CUDA toolkit's. TORCHBIND_NO_NCCL (make NCCL=0) leaves NCCL
// out where that header does not compile.
#if defined(TORCHBIND_CUDA) && !defined(TORCHBIND_NO_NCCL) && __has_include(<nccl.h>) && __has_include(<cuda_runtime_api.h>) && \
    __has_include(<cusparse.h>) && __has_include(<cublas_v2.h>) && __has_include(<cublasLt.h>) && \
    __has_include(<cusolverDn.h>)
#define USE_C10D_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <chrono>
#include <exception>
#include <functional>
#include <memory>
#include <sstream>

#include "common.h"

using namespace torchbind;

namespace {

struct Store {
  c10::intrusive_ptr<c10d::Store> store;
};

// Group hides which backend runs the collectives (both have the same
// allreduce, broadcast and barrier, whether libtorch derives them from
// c10d::ProcessGroup, as 1.13 does, or from c10d::Backend, as 2.x does).
struct Group {
  virtual ~Group() = default;
  virtual c10::intrusive_ptr<c10d::Work> allreduce(std::vector<at::Tensor> &ts) = 0;
  virtual c10::intrusive_ptr<c10d::Work> broadcast(std::vector<at::Tensor> &ts, int root) = 0;
  virtual c10::intrusive_ptr<c10d::Work> barrier() = 0;
  int world = 1;
};

template <class PG>
struct GroupOf : Group {
  c10::intrusive_ptr<PG> pg;
  c10::intrusive_ptr<c10d::Work> allreduce(std::vector<at::Tensor> &ts) override {
    return pg->allreduce(ts, c10d::AllreduceOptions());
  }
  c10::intrusive_ptr<c10d::Work> broadcast(std::vector<at::Tensor> &ts, int root) override {
    c10d::BroadcastOptions o;
    o.rootRank = root;
    return pg->broadcast(ts, o);
  }
  c10::intrusive_ptr<c10d::Work> barrier() override { return pg->barrier(c10d::BarrierOptions()); }
};

Store &S(tb_store s) {
  if (s == nullptr) throw std::invalid_argument("nil store");
  return *static_cast<Store *>(s);
}

Group &G(tb_group g) {
  if (g == nullptr) throw std::invalid_argument("nil process group");
  return *static_cast<Group *>(g);
}

#ifdef USE_C10D_GLOO
// The network devices Gloo uses: GLOO_SOCKET_IFNAME's interfaces (comma
// separated), else the address the host name resolves to, as PyTorch does.
std::vector<std::shared_ptr<::gloo::transport::Device>> glooDevices() {
  std::vector<std::shared_ptr<::gloo::transport::Device>> devices;
  if (const char *names = std::getenv("GLOO_SOCKET_IFNAME"); names != nullptr && *names != 0) {
    std::stringstream in(names);
    for (std::string name; std::getline(in, name, ',');)
      devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(name));
  } else {
    devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
  }
  return devices;
}
#endif

// Buckets of consecutive tensors of one dtype and device, each of at most
// bucket_bytes (a larger tensor has a bucket of its own).
std::vector<std::vector<at::Tensor>> buckets(const tb_tensor *ts, int n, int64_t bucket_bytes) {
  std::vector<std::vector<at::Tensor>> out;
  int64_t bytes = 0;
  for (int i = 0; i < n; i++) {
    const at::Tensor &t = T(ts[i]);
    int64_t b = t.numel() * static_cast<int64_t>(t.element_size());
    bool same = !out.empty() && out.back().front().scalar_type() == t.scalar_type() &&
                out.back().front().device() == t.device();
    if (!same || bytes + b > bucket_bytes) {
      out.emplace_back();
      bytes = 0;
    }
    out.back().push_back(t);
    bytes += b;
  }
  return out;
}

// collective runs op on every bucket of ts, each flattened into one tensor
// (a lone contiguous tensor is used as it is), then writes each result back
// through finish. Every bucket's work is started before the first is waited
// for, and every work is waited for before an error is thrown, so that no
// buffer goes while a backend still uses it.
void collective(const tb_tensor *ts, int n, int64_t bucket_bytes,
                const std::function<c10::intrusive_ptr<c10d::Work>(std::vector<at::Tensor> &)> &op,
                const std::function<void(at::Tensor &)> &finish) {
  at::NoGradGuard no_grad;  // parameters are written in place
  auto bs = buckets(ts, n, bucket_bytes);
  std::vector<at::Tensor> flat(bs.size());
  std::vector<c10::intrusive_ptr<c10d::Work>> works;
  std::exception_ptr failed;
  for (size_t i = 0; i < bs.size() && !failed; i++) {
    try {
      if (bs[i].size() == 1 && bs[i][0].is_contiguous()) {
        flat[i] = bs[i][0].detach();  // the same memory, outside autograd
      } else {
        std::vector<at::Tensor> views;
        for (auto &t : bs[i]) views.push_back(t.reshape(-1));
        flat[i] = at::cat(views);
      }
      std::vector<at::Tensor> one{flat[i]};
      works.push_back(op(one));
    } catch (...) {
      failed = std::current_exception();
    }
  }
  for (auto &w : works) {
    try {
      w->wait();
    } catch (...) {
      if (!failed) failed = std::current_exception();
    }
  }
  if (failed) std::rethrow_exception(failed);
  for (size_t i = 0; i < bs.size(); i++) {
    finish(flat[i]);
    if (flat[i].is_alias_of(bs[i][0])) continue;
    int64_t at = 0;
    for (auto &t : bs[i]) {
      t.copy_(flat[i].narrow(0, at, t.numel()).view_as(t));
      at += t.numel();
    }
  }
}

}  // namespace

extern "C" {

const char *tb_dist_backends(void) {
  return ""
#ifdef USE_C10D_GLOO
         "gloo "
#endif
#ifdef USE_C10D_NCCL
         "nccl "
#endif
      ;
}

tb_error tb_store_new(const char *host, int port, int serve, int world, const char *prefix, int64_t timeout_ms,
                      tb_store *out) {
  return guard([&] {
    if (host == nullptr || prefix == nullptr) throw std::invalid_argument("nil host or prefix");
    if (port <= 0 || port > 65535) throw std::invalid_argument("port " + std::to_string(port) + " outside 1..65535");
    c10d::TCPStoreOptions o;
    o.port = static_cast<uint16_t>(port);
    o.isServer = serve != 0;
    // Every process checks in, and the host waits for them all (bounded
    // by the timeout) before going on, as PyTorch's rendezvous does.
    o.numWorkers = static_cast<size_t>(world);
    o.waitWorkers = true;
    o.timeout = std::chrono::milliseconds(timeout_ms);
    c10::intrusive_ptr<c10d::Store> st = c10::make_intrusive<c10d::TCPStore>(std::string(host), o);
    if (*prefix != 0) st = c10::make_intrusive<c10d::PrefixStore>(std::string(prefix), st);
    st->setTimeout(std::chrono::milliseconds(timeout_ms));
    *out = new Store{st};
  });
}

void tb_store_free(tb_store s) { delete static_cast<Store *>(s); }

tb_error tb_store_set(tb_store s, const char *key, const char *value, int n) {
  return guard([&] {
    if (key == nullptr || (value == nullptr && n > 0)) throw std::invalid_argument("nil key or value");
    S(s).store->set(key, std::vector<uint8_t>(value, value + n));
  });
}

tb_error tb_store_get(tb_store s, const char *key, char **value, int *n, int *found) {
  return guard([&] {
    if (key == nullptr) throw std::invalid_argument("nil key");
    *value = nullptr;
    *n = 0;
    *found = S(s).store->check({key}) ? 1 : 0;
    if (!*found) return;
    auto v = S(s).store->get(key);
    *value = static_cast<char *>(std::malloc(v.size() + 1));
    if (*value == nullptr) throw std::bad_alloc();
    std::memcpy(*value, v.data(), v.size());
    (*value)[v.size()] = 0;
    *n = static_cast<int>(v.size());
  });
}

tb_error tb_store_add(tb_store s, const char *key, int64_t delta, int64_t *out) {
  return guard([&] {
    if (key == nullptr) throw std::invalid_argument("nil key");
    *out = S(s).store->add(key, delta);
  });
}

tb_error tb_group_new(tb_store s, int rank, int world, const char *backend, int64_t timeout_ms, tb_group *out) {
  return guard([&] {
    if (backend == nullptr) throw std::invalid_argument("nil backend");
    auto &st = S(s).store;
    auto timeout = std::chrono::milliseconds(timeout_ms);
    std::string b(backend);
#ifdef USE_C10D_GLOO
    if (b == "gloo") {
      auto o = c10d::ProcessGroupGloo::Options::create(timeout);
      o->devices = glooDevices();
      o->threads = static_cast<int>(o->devices.size()) * 2;
      auto g = std::make_unique<GroupOf<c10d::ProcessGroupGloo>>();
      g->pg = c10::make_intrusive<c10d::ProcessGroupGloo>(st, rank, world, o);
      g->world = world;
      *out = g.release();
      return;
    }
#endif
#ifdef USE_C10D_NCCL
    if (b == "nccl") {
      auto o = c10d::ProcessGroupNCCL::Options::create();
      o->timeout = timeout;
      auto g = std::make_unique<GroupOf<c10d::ProcessGroupNCCL>>();
      g->pg = c10::make_intrusive<c10d::ProcessGroupNCCL>(st, rank, world, o);
      g->world = world;
      *out = g.release();
      return;
    }
#endif
    throw std::invalid_argument("backend " + b + " is not built into this shim (built: " + tb_dist_backends() + ")");
  });
}

void tb_group_free(tb_group g) { delete static_cast<Group *>(g); }

tb_error tb_group_allreduce(tb_group g, const tb_tensor *ts, int n, int average, int64_t bucket_bytes) {
  return guard([&] {
    auto &grp = G(g);
    collective(
        ts, n, bucket_bytes, [&](std::vector<at::Tensor> &one) { return grp.allreduce(one); },
        [&](at::Tensor &sum) {
          if (!average) return;
          if (!at::isFloatingType(sum.scalar_type()))
            throw std::invalid_argument(std::string("cannot average ") + c10::toString(sum.scalar_type()) + " tensors");
          sum.div_(grp.world);
        });
  });
}

tb_error tb_group_broadcast(tb_group g, const tb_tensor *ts, int n, int root, int64_t bucket_bytes) {
  return guard([&] {
    auto &grp = G(g);
    collective(
        ts, n, bucket_bytes, [&](std::vector<at::Tensor> &one) { return grp.broadcast(one, root); },
        [](at::Tensor &) {});
  });
}

tb_error tb_group_barrier(tb_group g) {
  return guard([&] { G(g).barrier()->wait(); });
}

}  // extern "C"
