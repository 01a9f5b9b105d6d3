// TorchScript modules: load, save, forward, modes, devices, parameters.
#include <torch/script.h>

#include <fstream>
#include <sstream>

#include "common.h"

using namespace torchbind;

namespace {

const char *kMetaFile = "smoothadv.json";

torch::jit::Module &M(tb_module m) {
  if (m == nullptr) throw std::invalid_argument("nil module");
  return *static_cast<torch::jit::Module *>(m);
}

std::vector<std::string> split(const std::string &path) {
  std::vector<std::string> parts;
  std::stringstream ss(path);
  std::string part;
  while (std::getline(ss, part, '.')) parts.push_back(part);
  if (parts.empty()) throw std::invalid_argument("empty attribute path");
  return parts;
}

template <class Named>
void collect(Named list, char ***names, tb_tensor **tensors, int *n) {
  std::vector<std::pair<std::string, at::Tensor>> items;
  for (const auto &item : list) items.emplace_back(item.name, item.value);
  *n = static_cast<int>(items.size());
  *names = static_cast<char **>(std::calloc(items.size() + 1, sizeof(char *)));
  *tensors = static_cast<tb_tensor *>(std::calloc(items.size() + 1, sizeof(tb_tensor)));
  if (*names == nullptr || *tensors == nullptr) throw std::bad_alloc();
  for (size_t i = 0; i < items.size(); i++) {
    (*names)[i] = dup_message(items[i].first.c_str());
    (*tensors)[i] = wrap(items[i].second);
  }
}

// owner returns the submodule holding the attribute at a dotted path and
// sets *name to the attribute's own name.
torch::jit::Module owner(const torch::jit::Module &root, const std::string &path, std::string *name) {
  auto parts = split(path);
  torch::jit::Module mod = root;
  for (size_t i = 0; i + 1 < parts.size(); i++) {
    if (!mod.hasattr(parts[i])) throw std::invalid_argument("no submodule " + parts[i] + " in " + path);
    mod = mod.attr(parts[i]).toModule();
  }
  *name = parts.back();
  if (!mod.hasattr(*name)) throw std::invalid_argument("no attribute " + path);
  return mod;
}

}  // namespace

extern "C" {

tb_error tb_module_load(const char *path, const char *dev, tb_module *out, char **meta) {
  return guard([&] {
    // torch::jit::load reports a missing file as a vague stream error.
    std::ifstream probe(path, std::ios::binary);
    if (!probe) throw std::runtime_error(std::string("cannot open ") + path);
    torch::jit::ExtraFilesMap extra{{kMetaFile, ""}};
    auto m = torch::jit::load(path, device(dev), extra);
    const std::string &js = extra[kMetaFile];
    *meta = js.empty() ? nullptr : dup_message(js.c_str());
    *out = new torch::jit::Module(std::move(m));
  });
}

void tb_module_free(tb_module m) { delete static_cast<torch::jit::Module *>(m); }

tb_error tb_module_save(tb_module m, const char *path, const char *meta) {
  return guard([&] {
    torch::jit::ExtraFilesMap extra;
    if (meta != nullptr) extra[kMetaFile] = meta;
    M(m).save(path, extra);
  });
}

tb_error tb_module_forward(tb_module m, tb_tensor input, int grad, int channels_last, tb_tensor *out) {
  return guard([&] {
    torch::AutoGradMode mode(grad != 0);
    auto x = T(input);
    if (channels_last && x.dim() == 4) x = x.contiguous(at::MemoryFormat::ChannelsLast);
    auto result = M(m).forward({x});
    if (!result.isTensor()) throw std::runtime_error("module forward returned " + result.tagKind() + ", not a tensor");
    *out = wrap(result.toTensor());
  });
}

tb_error tb_module_train(tb_module m, int on) {
  return guard([&] { M(m).train(on != 0); });
}

tb_error tb_module_is_training(tb_module m, int *on) {
  return guard([&] { *on = M(m).is_training(); });
}

tb_error tb_module_to(tb_module m, const char *dev) {
  return guard([&] { M(m).to(device(dev)); });
}

tb_error tb_module_to_dtype(tb_module m, int dtype) {
  return guard([&] { M(m).to(scalar_type(dtype)); });
}

tb_error tb_module_optimize_for_inference(tb_module m, tb_module *out) {
  return guard([&] {
    auto copy = M(m).clone();
    copy.eval();
    auto frozen = torch::jit::freeze(copy);
    *out = new torch::jit::Module(torch::jit::optimize_for_inference(frozen));
  });
}

tb_error tb_module_named(tb_module m, int buffers, char ***names, tb_tensor **tensors, int *n) {
  return guard([&] {
    if (buffers)
      collect(M(m).named_buffers(true), names, tensors, n);
    else
      collect(M(m).named_parameters(true), names, tensors, n);
  });
}

tb_error tb_module_set_attr(tb_module m, const char *path, tb_tensor value) {
  return guard([&] {
    std::string name;
    auto mod = owner(M(m), path, &name);
    auto v = T(value);
    auto slot = mod.type()->getAttributeSlot(name);
    if (mod.type()->is_parameter(slot)) v = v.detach().requires_grad_(true);
    mod.setattr(name, v);
  });
}

tb_error tb_module_set_floats(tb_module m, const char *path, const double *values, int n) {
  return guard([&] {
    std::string name;
    auto mod = owner(M(m), path, &name);
    c10::List<double> list;
    for (int i = 0; i < n; i++) list.push_back(values[i]);
    mod.setattr(name, list);
  });
}

}  // extern "C"
