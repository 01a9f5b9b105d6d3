#!/bin/sh
# Prints Make variable assignments describing the libtorch to build against:
#   TORCH_ROOT      the libtorch tree ("" for Debian's, spread over /usr)
#   TORCH_VERSION   its version, read from its torch/version.h
#   TORCH_STD       the C++ standard its headers need
#   TORCH_INCLUDES  compiler flags for its headers
#   TORCH_LIBDIR    where libtorch*.so are
#   TORCH_ABI       its _GLIBCXX_USE_CXX11_ABI
#   TORCH_CUDA      1 when that libtorch has CUDA
#   CUDA_INCLUDES   the NCCL and CUDA header folders, in search order
# Order: $LIBTORCH (a libtorch tree with include/ and lib/; a pip or conda
# torch package folder is one), then Debian's libtorch-dev, then the torch of
# $PY (default python3). When the tree is a Python package, $PY must be the
# python it belongs to: its torch._C tells the ABI.
set -eu

fail() { echo "\$(error $*)"; exit 0; }

py=${PY:-python3}
if [ -n "${LIBTORCH:-}" ]; then
	[ -d "$LIBTORCH/include/torch" ] || fail "LIBTORCH=$LIBTORCH has no include/torch"
	root=$(cd "$LIBTORCH" && pwd -P)
elif [ -f /usr/include/torch/csrc/api/include/torch/version.h ] && ls /usr/lib/*/libtorch.so >/dev/null 2>&1; then
	root=""
else
	root=$("$py" -c 'import os, torch; print(os.path.realpath(os.path.dirname(torch.__file__)))' 2>/dev/null) ||
		fail "no libtorch found: run make deps (Debian libtorch-dev), set LIBTORCH=<dir>, or PY=<a python with torch>"
fi

if [ -z "$root" ]; then
	incs="-isystem /usr/include/torch/csrc/api/include"
	libdir=$(dirname "$(ls /usr/lib/*/libtorch.so | head -1)")
else
	incs="-isystem $root/include -isystem $root/include/torch/csrc/api/include"
	libdir=$root/lib
fi
# The version as its headers define it (2.x moved the macros to another file).
version=$(printf '#include <torch/version.h>\nTORCH_VERSION_MAJOR TORCH_VERSION_MINOR TORCH_VERSION_PATCH\n' |
	${CXX:-g++} -E -P -x c++ $incs - 2>/dev/null | tail -1) || fail "cannot read torch/version.h with $incs"
set -- $version
major=$1 minor=$2 patch=$3
case "$major$minor$patch" in *[!0-9]*|"") fail "torch/version.h under $incs gave no version ($version)" ;; esac
# PyTorch's headers need C++20 from 2.12 on (2.14's stop with #error under
# C++17); earlier ones are C++17 code.
if [ "$major" -gt 2 ] || { [ "$major" -eq 2 ] && [ "$minor" -ge 12 ]; }; then std=c++20; else std=c++17; fi

if [ -z "$root" ]; then
	abi=1 # Debian builds everything with the new ABI
elif [ -f "$root/__init__.py" ]; then
	# A Python package: its own interpreter says how it was built, and must be PY.
	pyroot=$("$py" -c 'import os, torch; print(os.path.realpath(os.path.dirname(torch.__file__)))' 2>/dev/null) ||
		fail "PY=$py cannot import torch; pass PY=<the python whose torch is $root>"
	[ "$pyroot" = "$root" ] || fail "LIBTORCH=$root is not the torch of PY=$py (its torch is $pyroot); pass PY=<the python of that install>"
	abi=$("$py" -c 'import torch; print(int(torch._C._GLIBCXX_USE_CXX11_ABI))')
else
	# A plain libtorch tree: libtorch_cpu exports std::__cxx11 symbols exactly
	# when built with the new ABI.
	if nm -D "$libdir/libtorch_cpu.so" 2>/dev/null | grep -q __cxx11; then abi=1; else abi=0; fi
fi

cuda=0
cuda_incs=""
if [ -e "$libdir/libtorch_cuda.so" ]; then
	cuda=1
	nvidia=${root:+$root/../nvidia}
	if [ -n "$nvidia" ] && [ -d "$nvidia" ]; then
		# A pip torch: the nvidia-* wheels beside it, NCCL's first (c10d's
		# options change size with nccl.h's macros), and nothing else, so
		# that no other toolkit's headers are found before them.
		nvidia=$(cd "$nvidia" && pwd -P)
		for d in "$nvidia"/nccl/include "$nvidia"/*/include ${CUDA_HEADERS:-}; do
			[ -d "$d" ] || continue
			case " $cuda_incs " in *" $d "*) ;; *) cuda_incs="$cuda_incs $d" ;; esac
		done
	else
		d=${CUDA_HOME:-/usr/local/cuda}/include
		[ -d "$d" ] && cuda_incs="$d ${CUDA_HEADERS:-}"
	fi
fi

echo "TORCH_ROOT := $root"
echo "TORCH_VERSION := $major.$minor.$patch"
echo "TORCH_STD := $std"
echo "TORCH_INCLUDES := $incs"
echo "TORCH_LIBDIR := $libdir"
echo "TORCH_ABI := $abi"
echo "TORCH_CUDA := $cuda"
echo "CUDA_INCLUDES :=$cuda_incs"
