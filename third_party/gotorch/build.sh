#!/usr/bin/env bash
# Builds gotorch's C++ shim (cgotorch) from the Go module's sources against the
# libtorch described by CXXFLAGS/LDLIBS, without gotorch's build.sh (which
# downloads a libtorch). Usage: build.sh GOTORCH_MODULE_DIR WORK_DIR OUT.so
set -euo pipefail
mod=$1 work=$2 out=$3
here=$(cd "$(dirname "$0")" && pwd)

rm -rf "$work/src"
mkdir -p "$work/src" "$work/obj"
cp -r "$mod/cgotorch" "$work/src/cgotorch"
chmod -R u+w "$work/src"
for p in "$here"/*.patch; do
	[ -e "$p" ] || continue
	patch -s -d "$work/src" -p1 < "$p"
done

# gotorch's CUDA streams (cuda.cc) need libtorch with CUDA and the CUDA
# runtime's headers (CUDA_INCLUDES, found by torch-config.sh and already in
# CXXFLAGS); without them gotorch's stream functions report that CUDA is
# unavailable, and everything else (ours included) still runs on the GPU.
with_cuda=""
if [[ "$CXXFLAGS" == *TORCHBIND_CUDA* ]]; then
	for d in ${CUDA_INCLUDES:-}; do
		if [ -f "$d/cuda_runtime_api.h" ]; then with_cuda=-DWITH_CUDA; fi
	done
fi
objs=()
pids=()
for src in "$work"/src/cgotorch/*.cc; do
	obj="$work/obj/$(basename "${src%.cc}").o"
	objs+=("$obj")
	echo "CXX gotorch/$(basename "$src")"
	$CXX $CXXFLAGS $with_cuda -I "$work/src" -c "$src" -o "$obj" &
	pids+=($!)
	# Two compilers at a time: each libtorch translation unit takes about 1 GB.
	if (( ${#pids[@]} >= 2 )); then wait "${pids[0]}"; pids=("${pids[@]:1}"); fi
done
for p in "${pids[@]}"; do wait "$p"; done
$CXX -shared -o "$out" "${objs[@]}" $LDLIBS
