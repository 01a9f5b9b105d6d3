#!/usr/bin/env bash
# Makes (or reuses) a venv with PyTorch VERSION from PyPI and what the build
# and the tests' Python helpers need, at DIR:
#   scripts/torch-venv.sh VERSION DIR
# PyPI's Linux torch is a CUDA build that also runs on a CPU; its nvidia-*
# wheels carry NCCL and the CUDA runtime's headers but not the compiler's
# (crt/) or CCCL's (nv/), which c10d's NCCL header includes, so those two come
# at the CUDA version that torch was built with. torchvision (for resnet50's
# definition) is the release paired with VERSION; where PyPI has none yet,
# the newest, without its dependencies (only its Python model code is used).
# Prints the LIBTORCH and PY to build with.
set -euo pipefail
version=$1 dir=$2
base=${PYTHON:-python3}

if [ ! -f "$dir/.ready" ] || [ "$(cat "$dir/.ready")" != "$version" ]; then
	rm -rf "$dir"
	"$base" -m venv "$dir"
	pip=("$dir/bin/pip" install -q --disable-pip-version-check)
	"${pip[@]}" "torch==$version" numpy scipy statsmodels pyyaml pillow
	# torchvision 0.(minor+15) pairs with torch 2.minor.
	minor=$(echo "$version" | cut -d. -f2)
	if ! "${pip[@]}" "torchvision==0.$((minor + 15)).*" "torch==$version" 2>/dev/null; then
		echo "torch-venv: no torchvision for torch $version on PyPI; the newest, without dependencies" >&2
		"${pip[@]}" --no-deps torchvision
	fi
	cuda=$("$dir/bin/python" -c 'import torch; print(torch.version.cuda or "")')
	if [ -n "$cuda" ]; then
		"${pip[@]}" "nvidia-cuda-crt==$cuda.*" "nvidia-cuda-cccl==$cuda.*" "torch==$version"
	fi
	echo "$version" >"$dir/.ready"
fi
py=$dir/bin/python
echo "LIBTORCH=$("$py" -c 'import os, torch; print(os.path.dirname(torch.__file__))') PY=$py"
