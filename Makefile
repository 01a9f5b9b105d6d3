# smoothadv build. `make` installs what is missing (Debian packages, Go modules),
# compiles the C++ shims against the libtorch it finds (third_party/torch-config.sh;
# LIBTORCH=<dir> picks another), exports the reference architectures as
# TorchScript and builds ./bin/smoothadv. `make test` runs every test.

SHELL := /bin/bash
ROOT := $(abspath .)
BUILD := $(ROOT)/build
LIB := $(BUILD)/lib
PY := /usr/bin/python3
GO ?= go
CXX ?= g++

APT_PACKAGES := g++ libtorch-dev libtcmalloc-minimal4 python3-torch python3-torchvision python3-scipy \
	python3-statsmodels python3-yaml python3-numpy python3-pil ca-certificates dataset-fashion-mnist \
	libgloo-dev
# Without recommends: they would add speech-recognition data, fonts and a GUI
# stack; everything the build and the tests' python3 scripts import is listed
# above or a hard dependency of it (ca-certificates: go mod download's HTTPS;
# libgloo-dev: the Gloo headers that libtorch's c10d headers include).
# Files that show each package is installed (checked instead of dpkg -s, which is slow).
APT_STAMP := $(BUILD)/.deps

# gpu-check makes its own (from python's libtorch) and must not install anything.
ifneq ($(MAKECMDGOALS),gpu-check)
-include $(BUILD)/torch.mk
endif

GOTORCH_MOD := github.com/wangkuiyi/gotorch
GOTORCH_DIR = $(shell $(GO) list -m -f '{{.Dir}}' $(GOTORCH_MOD))
CXXFLAGS := -std=c++17 -O2 -fPIC -D_GLIBCXX_USE_CXX11_ABI=$(TORCH_ABI) $(TORCH_INCLUDES) -Wno-deprecated-declarations
TORCH_LDLIBS := -L$(TORCH_LIBDIR) -Wl,-rpath,$(TORCH_LIBDIR) -ltorch -ltorch_cpu -lc10
ifeq ($(TORCH_CUDA),1)
CXXFLAGS += -DTORCHBIND_CUDA
TORCH_LDLIBS += -Wl,--no-as-needed -ltorch_cuda -lc10_cuda -Wl,--as-needed
# c10d's NCCL header (torchbind/csrc/dist.cc) includes NCCL's and the CUDA
# toolkit's: CUDA_HOME's (else /usr/local/cuda's) and those of the nvidia-*
# wheels beside a pip torch. Without them dist.cc builds Gloo alone.
CUDA_INCLUDES := $(wildcard $(or $(CUDA_HOME),/usr/local/cuda)/include) \
	$(shell $(PY) -c 'import glob, os, nvidia; print(" ".join(d for p in nvidia.__path__ for d in sorted(glob.glob(os.path.join(p, "*", "include")))))' 2>/dev/null)
CXXFLAGS += $(addprefix -isystem ,$(CUDA_INCLUDES))
endif
# NCCL=0 builds the c10d binding with Gloo alone: gpu-check's fallback when
# c10d's NCCL header does not compile against a machine's CUDA toolkit.
ifeq ($(NCCL),0)
CXXFLAGS += -DTORCHBIND_NO_NCCL
endif

# The Go binary links only our shims; --as-needed drops the libtorch libraries
# that gotorch's cgo directives name, so one Go build runs over any libtorch
# whose shims were compiled for it.
export CGO_LDFLAGS := -Wl,--as-needed -L$(LIB) -Wl,-rpath,$(LIB) -Wl,-rpath,$$ORIGIN/../build/lib

TORCHBIND_SRCS := $(wildcard torchbind/csrc/*.cc)
TORCHBIND_HDRS := $(wildcard torchbind/csrc/*.h)
# The list of sources, rewritten only when it changes, so that adding a source
# file rebuilds the shim even when the file is older than the last build.
TORCHBIND_LIST := $(BUILD)/torchbind/sources
$(shell mkdir -p $(BUILD)/torchbind && (echo $(TORCHBIND_SRCS) | cmp -s - $(TORCHBIND_LIST) || echo $(TORCHBIND_SRCS) > $(TORCHBIND_LIST)))
MODELS_STAMP := $(BUILD)/models/manifest.json

.PHONY: all deps shims models binary run test test-short bench clean gpu-check-prepare gpu-check

all: binary models

$(APT_STAMP): Makefile
	@mkdir -p $(BUILD)
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages: $$missing"; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	fi
	$(GO) mod download
	@touch $@

deps: $(APT_STAMP)

$(BUILD)/torch.mk: third_party/torch-config.sh | $(APT_STAMP)
	@mkdir -p $(BUILD)
	sh third_party/torch-config.sh > $@.tmp && mv $@.tmp $@

# gotorch's own shim, built from the module's sources (the module cache is
# read-only) with the small patch in third_party/gotorch applied to a copy.
$(LIB)/libcgotorch.so: $(BUILD)/torch.mk third_party/gotorch/build.sh $(wildcard third_party/gotorch/*.patch)
	@mkdir -p $(LIB)
	CXX="$(CXX)" CXXFLAGS="$(CXXFLAGS)" LDLIBS="$(TORCH_LDLIBS)" \
		bash third_party/gotorch/build.sh "$(GOTORCH_DIR)" $(BUILD)/cgotorch $@

$(LIB)/libtorchbind.so: $(TORCHBIND_SRCS) $(TORCHBIND_HDRS) $(TORCHBIND_LIST) $(BUILD)/torch.mk
	@mkdir -p $(LIB) $(BUILD)/torchbind
	@# Up to one compiler per core: serially, a GPU machine's gpu-check would
	@# spend most of its minutes here.
	@objs=""; running=0; for src in $(TORCHBIND_SRCS); do \
		obj=$(BUILD)/torchbind/$$(basename $${src%.cc}).o; objs="$$objs $$obj"; \
		if [ ! -f $$obj ] || [ $$src -nt $$obj ] || [ -n "$$(find torchbind/csrc -name '*.h' -newer $$obj)" ] || [ $(BUILD)/torch.mk -nt $$obj ]; then \
			if [ $$running -ge $$(nproc) ]; then wait -n || exit 1; running=$$((running - 1)); fi; \
			echo "CXX $$src"; $(CXX) $(CXXFLAGS) -Itorchbind/csrc -c $$src -o $$obj & running=$$((running + 1)); \
		fi; \
	done; \
	while [ $$running -gt 0 ]; do wait -n || exit 1; running=$$((running - 1)); done; \
	$(CXX) -shared -o $@ $$objs $(TORCH_LDLIBS)

shims: $(LIB)/libcgotorch.so $(LIB)/libtorchbind.so

$(MODELS_STAMP): smoothadv/models/export_models.py | $(APT_STAMP)
	@mkdir -p $(BUILD)/models
	$(PY) smoothadv/models/export_models.py --out $(BUILD)/models

models: $(MODELS_STAMP)

binary: shims
	$(GO) build -o bin/smoothadv ./cmd/smoothadv

# The default job: the embedded Fashion-MNIST experiment, into results/.
run: binary models
	./bin/smoothadv run --out results

# Tests need the shims and the exported models; the Go test timeout is a
# safety net well under CI's limit.
test: binary models
	$(GO) vet ./...
	$(GO) test -timeout 40m ./...

test-short: binary models
	$(GO) test -short ./...

bench: binary models
	$(GO) test -run '^$$' -bench . -benchtime 3x ./torchbind/

# The GPU check (scripts/gpu-check.sh). gpu-check-prepare builds, here with
# Go, the binary and the test binaries of the packages with CUDA tests, and
# copies gotorch's C++ sources; carry bin/ and build/gpu-check/ to a machine
# with an NVIDIA GPU and PyTorch, where gpu-check needs neither Go nor apt.
GPU_CHECK := $(BUILD)/gpu-check
GPU_TEST_PKGS := torchbind smoothadv/models smoothadv/attack

gpu-check-prepare: binary
	rm -rf $(GPU_CHECK)
	mkdir -p $(GPU_CHECK)/tests $(GPU_CHECK)/gotorch
	for p in $(GPU_TEST_PKGS); do $(GO) test -c -o $(GPU_CHECK)/tests/$$(echo $$p | tr / _).test ./$$p || exit 1; done
	cp -r $(GOTORCH_DIR)/cgotorch $(GPU_CHECK)/gotorch/ && chmod -R u+w $(GPU_CHECK)/gotorch
	@# The allocator linked into the binary, which a GPU machine may lack.
	mkdir -p $(GPU_CHECK)/lib && for l in $$(ldd bin/smoothadv | awk '/tcmalloc/ {print $$3}'); do cp -L $$l $(GPU_CHECK)/lib/ || exit 1; done

gpu-check:
	bash scripts/gpu-check.sh

clean:
	rm -rf bin build
