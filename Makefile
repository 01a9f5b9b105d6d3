# smoothadv build. `make` installs what is missing (Debian packages, Go modules),
# compiles the C++ shims against the libtorch it finds (third_party/torch-config.sh;
# LIBTORCH=<dir> picks another, such as a pip torch's package folder with
# PY=<its python>), exports the reference architectures as TorchScript with
# PY's torch and builds ./bin/smoothadv. `make test` runs every test.

SHELL := /bin/bash
ROOT := $(abspath .)
# BUILD and BIN may be moved to keep a second build (another libtorch) beside the first.
BUILD ?= $(ROOT)/build
BIN ?= $(ROOT)/bin
LIB := $(BUILD)/lib
PY ?= /usr/bin/python3
# Tests run their Python helpers (model fixtures, reference comparisons) with
# the same python, and find the models it exported.
export SMOOTHADV_PYTHON := $(PY)
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
export SMOOTHADV_MODELS := $(BUILD)/models
# Which libtorch and python this build is for, rewritten only when they
# change: switching either rebuilds the shims and re-exports the models.
TORCH_KEY := $(BUILD)/torch.key
TORCH_KEY_TEXT := LIBTORCH=$(LIBTORCH) PY=$(PY) CUDA_HEADERS=$(CUDA_HEADERS)
$(shell mkdir -p $(BUILD) && (echo "$(TORCH_KEY_TEXT)" | cmp -s - $(TORCH_KEY) || echo "$(TORCH_KEY_TEXT)" > $(TORCH_KEY)))

GOTORCH_MOD := github.com/wangkuiyi/gotorch
GOTORCH_DIR = $(shell $(GO) list -m -f '{{.Dir}}' $(GOTORCH_MOD))
CXXFLAGS := -std=$(TORCH_STD) -O2 -fPIC -D_GLIBCXX_USE_CXX11_ABI=$(TORCH_ABI) $(TORCH_INCLUDES) -Wno-deprecated-declarations
TORCH_LDLIBS := -L$(TORCH_LIBDIR) -Wl,-rpath,$(TORCH_LIBDIR) -ltorch -ltorch_cpu -lc10
ifeq ($(TORCH_CUDA),1)
CXXFLAGS += -DTORCHBIND_CUDA
TORCH_LDLIBS += -Wl,--no-as-needed -ltorch_cuda -lc10_cuda -Wl,--as-needed
# c10d's NCCL header (torchbind/csrc/dist.cc) includes NCCL's and the CUDA
# toolkit's: those of the nvidia-* wheels beside a pip torch, else
# CUDA_HOME's (torch-config.sh). Without them dist.cc builds Gloo alone.
CXXFLAGS += $(addprefix -isystem ,$(CUDA_INCLUDES))
endif
# NCCL=0 builds the c10d binding with Gloo alone: gpu-check's fallback when
# c10d's NCCL header does not compile against a machine's CUDA toolkit.
ifeq ($(NCCL),0)
CXXFLAGS += -DTORCHBIND_NO_NCCL
endif

# The Go binary links only our shims; --as-needed drops the libtorch libraries
# that gotorch's cgo directives name, so one Go build runs over any libtorch
# whose shims were compiled for it. They must be found in the shims' own
# libtorch: ld keeps another one (Debian's, say, under another soname) as
# needed, and the process would then load two libtorch.
export CGO_LDFLAGS := -Wl,--as-needed -L$(LIB) -L$(TORCH_LIBDIR) -Wl,-rpath,$(LIB) -Wl,-rpath,$$ORIGIN/../build/lib

TORCHBIND_SRCS := $(wildcard torchbind/csrc/*.cc)
TORCHBIND_HDRS := $(wildcard torchbind/csrc/*.h)
# The list of sources, rewritten only when it changes, so that adding a source
# file rebuilds the shim even when the file is older than the last build.
TORCHBIND_LIST := $(BUILD)/torchbind/sources
$(shell mkdir -p $(BUILD)/torchbind && (echo $(TORCHBIND_SRCS) | cmp -s - $(TORCHBIND_LIST) || echo $(TORCHBIND_SRCS) > $(TORCHBIND_LIST)))
MODELS_STAMP := $(BUILD)/models/manifest.json

.PHONY: all deps shims models binary run test test-short test-pkgs torch-venv test-torch torch-test-all bench clean gpu-check-prepare gpu-check

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

$(BUILD)/torch.mk: third_party/torch-config.sh $(TORCH_KEY) | $(APT_STAMP)
	@mkdir -p $(BUILD)
	LIBTORCH="$(LIBTORCH)" PY="$(PY)" CUDA_HEADERS="$(CUDA_HEADERS)" sh third_party/torch-config.sh > $@.tmp && mv $@.tmp $@
	@sed -n 's/^TORCH_\(VERSION\|ROOT\|CUDA\) := /libtorch \1: /p' $@

# gotorch's own shim, built from the module's sources (the module cache is
# read-only) with the small patch in third_party/gotorch applied to a copy.
$(LIB)/libcgotorch.so: $(BUILD)/torch.mk third_party/gotorch/build.sh $(wildcard third_party/gotorch/*.patch)
	@mkdir -p $(LIB)
	CXX="$(CXX)" CXXFLAGS="$(CXXFLAGS)" LDLIBS="$(TORCH_LDLIBS)" CUDA_INCLUDES="$(CUDA_INCLUDES)" \
		bash third_party/gotorch/build.sh "$(GOTORCH_DIR)" $(BUILD)/cgotorch $@

$(LIB)/libtorchbind.so: $(TORCHBIND_SRCS) $(TORCHBIND_HDRS) $(TORCHBIND_LIST) $(BUILD)/torch.mk
	@mkdir -p $(LIB) $(BUILD)/torchbind
	@# Up to one compiler per core: serially, a GPU machine's gpu-check would
	@# spend most of its minutes here.
	@objs=""; running=0; for src in $(TORCHBIND_SRCS); do \
		obj=$(BUILD)/torchbind/$$(basename $${src%.cc}).o; objs="$$objs $$obj"; \
		if [ ! -f $$obj ] || [ $$src -nt $$obj ] || [ -n "$$(find torchbind/csrc -name '*.h' -newer $$obj)" ] || [ $(BUILD)/torch.mk -nt $$obj ]; then \
			if [ $$running -ge $$(nproc) ]; then wait -n || exit 1; running=$$((running - 1)); fi; \
			echo "CXX $$src"; $(CXX) $(CXXFLAGS) -Itorchbind/csrc -MD -MF $${obj%.o}.d -c $$src -o $$obj & running=$$((running + 1)); \
		fi; \
	done; \
	while [ $$running -gt 0 ]; do wait -n || exit 1; running=$$((running - 1)); done; \
	$(CXX) -shared -o $@.tmp $$objs $(TORCH_LDLIBS)
	TORCH_ROOT="$(TORCH_ROOT)" CUDA_INCLUDES="$(CUDA_INCLUDES)" sh third_party/check-shim.sh $(BUILD)/torchbind
	mv $@.tmp $@

shims: $(LIB)/libcgotorch.so $(LIB)/libtorchbind.so

$(MODELS_STAMP): smoothadv/models/export_models.py $(BUILD)/torch.mk | $(APT_STAMP)
	@mkdir -p $(BUILD)/models
	$(PY) smoothadv/models/export_models.py --out $(BUILD)/models

models: $(MODELS_STAMP)

binary: shims
	$(GO) build -o $(BIN)/smoothadv ./cmd/smoothadv
	@if readelf -d $(BIN)/smoothadv | grep -E 'NEEDED.*\[lib(torch|torch_cpu|torch_cuda|c10|c10_cuda)\.so'; then \
		echo "$(BIN)/smoothadv links libtorch itself: it must reach it only through the shims" >&2; exit 1; fi

# The default job: the embedded Fashion-MNIST experiment, into results/.
run: binary models
	$(BIN)/smoothadv run --out results

# Tests need the shims and the exported models; the Go test timeout is a
# safety net well under CI's limit.
# On a CPU with AVX-512, the packages whose tests compare floats run again
# on the kernels of a CPU without it (oneDNN and ATen held to AVX2), so a
# tolerance that holds on one kind of CI machine but not the other is caught
# on either.
FLOAT_PKGS := ./torchbind ./smoothadv/models ./smoothadv/attack ./smoothadv/smoothing ./smoothadv/train
test: binary models
	$(GO) vet ./...
	$(GO) test -timeout 40m ./...
	@if grep -qw avx512f /proc/cpuinfo; then \
		echo "AVX-512 CPU: the float-sensitive packages again on AVX2 kernels"; \
		DNNL_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 $(GO) test -count=1 -timeout 20m $(FLOAT_PKGS); \
	fi

# A PyTorch from PyPI (TORCH=version) in a venv outside the clone, made once
# and reused (scripts/torch-venv.sh), and a second build against it in
# build/torch-$(TORCH), beside the default one. test-torch runs there the
# packages that meet libtorch most (shims, models, c10d, sampling, training,
# experiments: a train + certify run) and the version report; CI runs it
# after make test. Any target works the same way: make TORCH=2.11.0 torch-test-all.
TORCH ?= 2.11.0
TORCH_VENV ?= $(HOME)/.cache/smoothadv/torch-$(TORCH)
TORCH_BUILD := $(ROOT)/build/torch-$(TORCH)
TORCH_PKGS := ./torchbind ./smoothadv/models ./smoothadv/dist ./smoothadv/smoothing ./smoothadv/train ./smoothadv/experiment ./smoothadv/experiment/libtorch
torch_make = $(MAKE) $$(scripts/torch-venv.sh $(TORCH) $(TORCH_VENV)) BUILD=$(TORCH_BUILD) BIN=$(TORCH_BUILD)/bin

torch-venv:
	scripts/torch-venv.sh $(TORCH) $(TORCH_VENV)

test-torch:
	$(torch_make) test-pkgs PKGS="$(TORCH_PKGS)" CROSS_MODELS=$(BUILD)/models
	$(MAKE) test-cross CROSS_MODELS=$(TORCH_BUILD)/models

torch-test-all:
	$(torch_make) test

# Some packages' tests on the current build, and the version report;
# CROSS_MODELS (another PyTorch's exports) for TestModelsFromAnotherPyTorch.
test-pkgs: binary models
	SMOOTHADV_CROSS_MODELS=$(CROSS_MODELS) $(GO) test -timeout 30m $(PKGS)
	$(GO) test -run '^TestVersion$$' -v ./cmd/smoothadv

# The current build on the models another PyTorch exported (CROSS_MODELS):
# their logits against that PyTorch's, and a certify run on one.
test-cross: binary models
	SMOOTHADV_CROSS_MODELS=$(CROSS_MODELS) $(GO) test -count=1 -run '^TestModelsFromAnotherPyTorch$$' -v ./torchbind
	rm -f $(BUILD)/cross-certify.tsv*
	$(BIN)/smoothadv certify fashion-mnist $(CROSS_MODELS)/fashion_cnn.pt 0.25 $(BUILD)/cross-certify.tsv --N0 10 --N 100 --max 3
	cat $(BUILD)/cross-certify.tsv

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

gpu-check-prepare: binary torch-venv
	rm -rf $(GPU_CHECK)
	mkdir -p $(GPU_CHECK)/tests $(GPU_CHECK)/gotorch
	for p in $(GPU_TEST_PKGS); do $(GO) test -c -o $(GPU_CHECK)/tests/$$(echo $$p | tr / _).test ./$$p || exit 1; done
	cp -r $(GOTORCH_DIR)/cgotorch $(GPU_CHECK)/gotorch/ && chmod -R u+w $(GPU_CHECK)/gotorch
	@# The allocator linked into the binary, which a GPU machine may lack.
	mkdir -p $(GPU_CHECK)/lib && for l in $$(ldd $(BIN)/smoothadv | awk '/tcmalloc/ {print $$3}'); do cp -L $$l $(GPU_CHECK)/lib/ || exit 1; done
	@# The CUDA compiler's (crt/) and CCCL's (nv/) headers that c10d's NCCL
	@# header includes and PyPI's torch lacks, at the CUDA version of torch
	@# $(TORCH) (scripts/torch-venv.sh installs them beside it).
	inc=$$(ls -d $(TORCH_VENV)/lib/python3*/site-packages/nvidia/*/include/crt | head -1) && inc=$${inc%/crt} && \
		mkdir -p $(GPU_CHECK)/cuda-headers && cp -r $$inc/crt $$inc/nv $(GPU_CHECK)/cuda-headers/ && \
		$(TORCH_VENV)/bin/python -c 'import torch; print(torch.version.cuda)' > $(GPU_CHECK)/cuda-headers/CUDA_VERSION

gpu-check:
	bash scripts/gpu-check.sh

clean:
	rm -rf bin build
