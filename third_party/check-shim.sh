#!/bin/sh
# Checks what the torchbind objects in DIR were compiled from (their .d
# files) and what they define, so that a build against one libtorch cannot
# quietly take another's headers:
#  - with TORCH_ROOT set (not Debian's libtorch), no header of Debian's
#    libtorch-dev (/usr/include/{torch,ATen,c10,caffe2}) was read;
#  - with CUDA_INCLUDES set, nccl.h and cuda_runtime_api.h came from there;
#  - dist.o defines no Gloo code. PyPI's torch ships no Gloo headers, so
#    c10d's ProcessGroupGloo.hpp is parsed with Debian's (libgloo-dev), which
#    are another Gloo than the one inside libtorch_cpu. That is sound only
#    while we emit nothing of Gloo's: the header holds Gloo's types behind
#    shared_ptr and unique_ptr, and every Gloo function we reach
#    (ProcessGroupGloo's constructor, createDefaultDevice, ...) is libtorch's
#    own. Containers of those pointers are std:: code and may appear.
set -eu
dir=$1
status=0
if [ -n "${TORCH_ROOT:-}" ]; then
	bad=$(cat "$dir"/*.d | tr ' \\' '\n\n' | grep -E '^/usr/include/(torch|ATen|c10|caffe2)/' | sort -u | head -5)
	if [ -n "$bad" ]; then
		echo "check-shim: building against $TORCH_ROOT read Debian's libtorch headers:" >&2
		echo "$bad" >&2
		status=1
	fi
fi
if [ -n "${CUDA_INCLUDES:-}" ]; then
	for h in nccl.h cuda_runtime_api.h; do
		for f in $(cat "$dir"/*.d | tr ' \\' '\n\n' | grep "/$h\$" | sort -u); do
			case "$f" in */torch/csrc/*) continue ;; esac
			ok=0
			for d in $CUDA_INCLUDES; do [ "$f" = "$d/$h" ] && ok=1; done
			if [ $ok = 0 ]; then
				echo "check-shim: $h came from $f, not from $CUDA_INCLUDES" >&2
				status=1
			fi
		done
	done
fi
if [ -f "$dir/dist.o" ]; then
	gloo=$(nm -C --defined-only "$dir/dist.o" | grep 'gloo::' | grep -vE ' [Wn] (void )?std::' || true)
	if [ -n "$gloo" ]; then
		echo "check-shim: dist.o defines Gloo code, which must come from libtorch alone:" >&2
		echo "$gloo" | head -5 >&2
		status=1
	fi
fi
exit $status
