// Noisy copies of images drawn from per-example noise streams.
#include "common.h"

using namespace torchbind;

extern "C" {

tb_error tb_noisy_copies(tb_tensor images, const int64_t *idx, const int64_t *takes, int npieces,
                         const uint64_t *seeds, const int64_t *starts, const int64_t *counts, int nsegs,
                         int64_t chunk, double std, tb_tensor *out) {
  return guard([&] {
    at::NoGradGuard no_grad;
    auto &img = T(images);
    if (img.dim() < 1 || chunk < 1 || npieces < 0 || nsegs < 0) throw std::invalid_argument("noisy_copies: bad arguments");
    int64_t total = 0;
    for (int p = 0; p < npieces; p++) total += takes[p];
    auto shape = img.sizes().vec();
    shape[0] = total;
    auto noise = at::empty(shape, img.options());
    // One private generator, reseeded for every chunk: a chunk's noise is a
    // function of its seed alone, drawn as a whole block of `chunk` rows, so
    // rows taken from the middle of a chunk equal the same rows drawn whole.
    auto gen = at::globalContext().defaultGenerator(img.device()).clone();
    auto block_shape = shape;
    block_shape[0] = chunk;
    int64_t row = 0;
    for (int s = 0; s < nsegs; s++) {
      if (starts[s] < 0 || counts[s] < 1 || starts[s] + counts[s] > chunk || row + counts[s] > total)
        throw std::invalid_argument("noisy_copies: segment outside its chunk or the batch");
      gen.set_current_seed(seeds[s]);
      if (starts[s] == 0 && counts[s] == chunk) {
        noise.narrow(0, row, chunk).normal_(0, std, gen);
      } else {
        auto block = at::empty(block_shape, img.options()).normal_(0, std, gen);
        noise.narrow(0, row, counts[s]).copy_(block.narrow(0, starts[s], counts[s]));
      }
      row += counts[s];
    }
    if (row != total) throw std::invalid_argument("noisy_copies: segments do not cover the batch");
    row = 0;
    for (int p = 0; p < npieces; p++) {
      if (idx[p] < 0 || idx[p] >= img.size(0)) throw std::invalid_argument("noisy_copies: image index out of range");
      noise.narrow(0, row, takes[p]).add_(img[idx[p]]);
      row += takes[p];
    }
    *out = wrap(noise);
  });
}

tb_error tb_first_nonfinite_row(tb_tensor a, int64_t *row) {
  return guard([&] {
    auto &x = T(a);
    auto ok = at::isfinite(x.reshape({x.size(0), -1})).all(1);
    auto bad = at::nonzero(ok.logical_not());
    *row = bad.size(0) == 0 ? -1 : bad[0][0].item<int64_t>();
  });
}

}  // extern "C"
