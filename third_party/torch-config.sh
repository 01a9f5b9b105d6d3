#!/bin/sh
# Prints Make variable assignments describing the libtorch to build against:
# TORCH_INCLUDES (compiler flags), TORCH_LIBDIR, TORCH_ABI (_GLIBCXX_USE_CXX11_ABI)
# and TORCH_CUDA (1 when that libtorch has CUDA).
# Order: $LIBTORCH (a libtorch tree with include/ and lib/), then Debian's
# libtorch-dev, then the libtorch inside a python3 torch install (the usual
# CUDA-enabled one on GPU machines).
set -eu

fail() { echo "\$(error $*)"; exit 0; }

abi=""
if [ -n "${LIBTORCH:-}" ]; then
	[ -d "$LIBTORCH/include/torch" ] || fail "LIBTORCH=$LIBTORCH has no include/torch"
	root=$LIBTORCH
elif [ -f /usr/include/torch/csrc/api/include/torch/torch.h ] && ls /usr/lib/*/libtorch.so >/dev/null 2>&1; then
	root=""
	incs="-isystem /usr/include/torch/csrc/api/include"
	libdir=$(dirname "$(ls /usr/lib/*/libtorch.so | head -1)")
	abi=1
else
	root=$(python3 -c 'import os, torch; print(os.path.dirname(torch.__file__))' 2>/dev/null) ||
		fail "no libtorch found: run make deps (Debian libtorch-dev), set LIBTORCH=<dir>, or install PyTorch for python3"
	abi=$(python3 -c 'import torch; print(int(torch._C._GLIBCXX_USE_CXX11_ABI))')
fi
if [ -n "$root" ]; then
	incs="-isystem $root/include -isystem $root/include/torch/csrc/api/include"
	libdir=$root/lib
fi
if [ -z "$abi" ]; then
	# libtorch_cpu exports std::__cxx11 symbols exactly when built with the new ABI.
	if nm -D "$libdir/libtorch_cpu.so" 2>/dev/null | grep -q __cxx11; then abi=1; else abi=0; fi
fi
cuda=0
[ -e "$libdir/libtorch_cuda.so" ] && cuda=1
echo "TORCH_INCLUDES := $incs"
echo "TORCH_LIBDIR := $libdir"
echo "TORCH_ABI := $abi"
echo "TORCH_CUDA := $cuda"
