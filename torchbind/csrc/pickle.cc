// Checkpoints in torch.save's zip format, pickled by libtorch.
//
// torch::pickle_save would do, but it wraps every dict and list in
// torch.jit._pickle.restore_type_tag: Python's torch.load accepts that, but a
// loader that allows only the globals torch.save writes (ours in
// smoothadv/checkpoint) refuses it. So this file runs the same Pickler and
// archive writer as pickle_save with type tags off, which gives the plain
// pickle that torch.save writes.
#include <caffe2/serialize/inline_container.h>
#include <torch/csrc/jit/serialization/export.h>
#include <torch/csrc/jit/serialization/pickler.h>

#include <cerrno>
#include <fstream>

#include "common.h"

using namespace torchbind;

namespace {

using c10::impl::GenericDict;
using c10::impl::GenericList;

// cpu detaches t and copies it to the CPU, so that the pickle records the
// location "cpu" and torch.load works on machines without a GPU.
at::Tensor cpu(tb_tensor t) { return T(t).detach().to(at::kCPU); }

// Lists are typed List[Any]: the Pickler writes List[int] and List[float]
// through torch.jit._pickle.build_intlist and build_doublelist, which
// torch.save never does.
GenericList doubles(const double *v, int n) {
  if (n < 0 || (n > 0 && v == nullptr)) throw std::invalid_argument("bad float list");
  GenericList l(c10::AnyType::get());
  for (int i = 0; i < n; i++) l.push_back(v[i]);
  return l;
}

std::string str(const char *s, const char *what) {
  if (s == nullptr) throw std::invalid_argument(std::string("nil ") + what);
  return s;
}

// sgd_state_dict is torch.optim.SGD.state_dict() for one param group over
// parameters 0..nparams-1.
GenericDict sgd_state_dict(const tb_sgd_group &g, const tb_tensor *momentum, int nparams) {
  if (nparams < 0 || (nparams > 0 && momentum == nullptr)) throw std::invalid_argument("bad momentum buffers");
  auto buffer_type = c10::DictType::create(c10::StringType::get(), c10::TensorType::get());
  GenericDict state(c10::IntType::get(), buffer_type);
  GenericList params(c10::AnyType::get());
  for (int i = 0; i < nparams; i++) {
    params.push_back(int64_t(i));
    if (momentum[i] == nullptr) continue;  // SGD keeps no state for this parameter yet
    c10::Dict<std::string, at::Tensor> buf;
    buf.insert("momentum_buffer", cpu(momentum[i]));
    state.insert(int64_t(i), buf);
  }
  GenericDict group(c10::StringType::get(), c10::AnyType::get());
  group.insert("lr", g.lr);
  group.insert("momentum", g.momentum);
  group.insert("dampening", g.dampening);
  group.insert("weight_decay", g.weight_decay);
  group.insert("nesterov", g.nesterov != 0);
  group.insert("params", params);
  GenericList groups(c10::DictType::create(c10::StringType::get(), c10::AnyType::get()));
  groups.push_back(group);
  GenericDict sd(c10::StringType::get(), c10::AnyType::get());
  sd.insert("state", state);
  sd.insert("param_groups", groups);
  return sd;
}

// save pickles v and writes it with its tensors' storages as a zip archive.
// The archive writer must never see a failed write (it would throw again
// from its destructor), so the first stream error is only remembered.
void save(const std::string &path, const c10::IValue &v) {
  std::vector<char> pkl;
  torch::jit::Pickler pickler([&](const char *b, size_t n) { pkl.insert(pkl.end(), b, b + n); }, nullptr,
                              nullptr, nullptr, nullptr, /*tag_aggregates=*/false);
  pickler.protocol();
  pickler.pushIValue(v);
  pickler.stop();

  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f) throw std::runtime_error("create " + path + ": " + std::strerror(errno));
  bool ok = true;
  caffe2::serialize::PyTorchStreamWriter writer([&](const void *b, size_t n) -> size_t {
    if (ok && !f.write(static_cast<const char *>(b), static_cast<std::streamsize>(n))) ok = false;
    return n;
  });
  torch::jit::writeArchiveAndTensors("data", pkl.data(), pkl.size(), pickler.tensorData(), writer);
  writer.writeEndOfFile();
  f.close();
  if (!ok || !f) throw std::runtime_error("write " + path + " failed");
}

}  // namespace

extern "C" {

tb_error tb_checkpoint_save(const char *path, int64_t epoch, const char *arch, const char *const *names,
                            const tb_tensor *tensors, int n, const tb_sgd_group *sgd, const tb_tensor *momentum,
                            int nparams, const char *normalization, double noise_sd, const double *means,
                            const double *sds, int nchannels) {
  return guard([&] {
    if (n < 0 || (n > 0 && (names == nullptr || tensors == nullptr))) throw std::invalid_argument("bad state dict");
    // c10::Dict keeps insertion order, so state_dict comes out in the caller's order.
    c10::Dict<std::string, at::Tensor> state_dict;
    for (int i = 0; i < n; i++) {
      auto name = str(names[i], "tensor name");
      if (state_dict.contains(name)) throw std::invalid_argument("state dict key " + name + " given twice");
      state_dict.insert(name, cpu(tensors[i]));
    }
    GenericDict top(c10::StringType::get(), c10::AnyType::get());
    top.insert("epoch", epoch);
    top.insert("arch", str(arch, "arch"));
    top.insert("state_dict", state_dict);
    if (sgd != nullptr) top.insert("optimizer", sgd_state_dict(*sgd, momentum, nparams));
    top.insert("normalization", str(normalization, "normalization"));
    top.insert("noise_sd", noise_sd);
    top.insert("means", doubles(means, nchannels));
    top.insert("sds", doubles(sds, nchannels));
    save(str(path, "path"), top);
  });
}

}  // extern "C"
