#!/usr/bin/env bash
# The one-command GPU check (make gpu-check), for a machine with an NVIDIA GPU
# and PyTorch but perhaps no Go. It runs what `make gpu-check-prepare` built
# on a machine with Go (bin/smoothadv and build/gpu-check/: test binaries of
# the packages with CUDA tests, gotorch's C++ sources): builds the shims
# against python's (CUDA) libtorch, exports the models if missing, runs the
# CUDA tests, then bench certify (fp32, bf16, fp16, channels-last) and bench
# train on cuda:0 beside the reference's PyTorch loops on the same GPU.
#
# Everything goes to one results file: $OUT/gpu-check-results.txt when OUT is
# set, else ./gpu-check-results.txt. Each step has a time limit; a failed
# step is recorded and the check goes on; the exit status is 1 if any step
# failed, 2 without a GPU or without the prepared files. PYTHON picks the
# interpreter (default python3). The whole check stays under BUDGET seconds
# (default 460): steps that no longer fit are skipped and recorded.
#
# REHEARSE=1 rehearses the check on a machine without a GPU but with a CUDA
# build of PyTorch (PyPI's): it builds the shims with CUDA and NCCL, checks
# that the binary reports them, exports the models and runs the test
# binaries (their CUDA tests skip), into build/gpu-rehearsal/ so that the
# machine's own build stays; each step that needs a GPU is reported as such
# and not run.
set -euo pipefail

cd "$(dirname "$0")/.."
root=$PWD
py=${PYTHON:-python3}
bundle=$root/build/gpu-check
rehearse=${REHEARSE:-0}
if [ "$rehearse" = 1 ]; then build=$root/build/gpu-rehearsal; else build=$root/build; fi
results=${OUT:+$OUT/}gpu-check-results.txt
budget=${BUDGET:-460}
: >"$results"
failed=()

log() { echo "$*" | tee -a "$results"; }

# step NAME LIMIT CMD...: runs CMD for at most LIMIT seconds (less if the
# budget is nearly spent), appending its output to the results.
step() {
	local name=$1 limit=$2
	shift 2
	local left=$((budget - SECONDS))
	if ((left < 15)); then
		log "=== $name: skipped, the ${budget} s budget is spent"
		failed+=("$name (skipped)")
		return 0
	fi
	((limit <= left)) || limit=$left
	log "=== $name (limit ${limit} s): $*"
	local start=$SECONDS rc=0
	timeout --kill-after=5 "$limit" "$@" 2>&1 | tee -a "$results" || rc=${PIPESTATUS[0]}
	log "=== $name: exit $rc after $((SECONDS - start)) s"
	if ((rc != 0)); then failed+=("$name (exit $rc)"); fi
	return 0
}

# gpu_step NAME LIMIT CMD...: a step that needs a GPU; a rehearsal reports
# it and goes on.
gpu_step() {
	if [ "$rehearse" = 1 ]; then
		log "=== $1: needs a GPU, not run (rehearsal): ${*:3}"
		return 0
	fi
	step "$@"
}

mode=""
[ "$rehearse" = 1 ] && mode=", a rehearsal without a GPU"
log "smoothadv gpu-check $(date -u +%FT%TZ) on $(hostname), budget ${budget} s$mode"
if [ "$rehearse" = 1 ]; then
	want_cuda='assert torch.version.cuda, "this torch has no CUDA"'
	log "rehearsal: no GPU needed; $py's torch must be a CUDA build"
else
	if ! gpus=$(nvidia-smi -L 2>/dev/null) || [ -z "$gpus" ]; then
		log "no GPU: nvidia-smi lists no NVIDIA GPU here; run make gpu-check on a machine with one (REHEARSE=1 rehearses it without)"
		exit 2
	fi
	log "$gpus"
	want_cuda='assert torch.cuda.is_available(), "torch.cuda.is_available() is False"'
fi
if ! torch_dir=$("$py" -c "import os, torch; $want_cuda; print(os.path.dirname(torch.__file__))" 2>>"$results"); then
	log "no CUDA for PyTorch: $py cannot import a torch with CUDA (see above; PYTHON=... picks another python)"
	exit 2
fi
log "$("$py" -c 'import sys, torch; print("python", sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name(0) if torch.cuda.is_available() else "(no GPU)")')"
if [ ! -x bin/smoothadv ] || ! ls "$bundle"/tests/*.test >/dev/null 2>&1 || [ ! -d "$bundle/gotorch/cgotorch" ]; then
	log "not prepared: run make gpu-check-prepare on a machine with Go, and bring bin/ and build/gpu-check/ here"
	exit 2
fi

# The shims against python's libtorch; the stamp stands in for make deps
# (apt and Go), which this machine may lack. PyPI's torch lacks the CUDA
# compiler's and CCCL's headers that c10d's NCCL header includes: the bundle
# brings those of the same CUDA version (make gpu-check-prepare).
touch "$bundle/.deps"
cuda_headers=""
if [ -f "$bundle/cuda-headers/CUDA_VERSION" ]; then
	if [ "$(cat "$bundle/cuda-headers/CUDA_VERSION")" = "$("$py" -c 'import torch; print(torch.version.cuda)')" ]; then
		cuda_headers=$bundle/cuda-headers
	else
		log "the bundle's CUDA headers are for CUDA $(cat "$bundle/cuda-headers/CUDA_VERSION"), not this torch's: not used"
	fi
fi
shims=(make shims LIBTORCH="$torch_dir" PY="$py" CUDA_HEADERS="$cuda_headers" BUILD="$build" GOTORCH_DIR="$bundle/gotorch" APT_STAMP="$bundle/.deps")
step shims 300 "${shims[@]}"
if [[ " ${failed[*]-} " == *" shims (exit"* ]]; then
	# NCCL's binding has never been compiled before a GPU was lent: should
	# it fail, the rest of the check still runs on a shim without it.
	step "shims without NCCL" 200 "${shims[@]}" NCCL=0
fi
# build/gpu-check/lib: the allocator the binary links, brought along.
export LD_LIBRARY_PATH=$build/lib:$torch_dir/lib:$bundle/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export SMOOTHADV_PYTHON=$py SMOOTHADV_MODELS=$build/models
step libraries 10 bash -c '! ldd bin/smoothadv | grep "not found"'
# What the binary runs over: a CUDA build must have NCCL compiled in.
step version 20 bash -c 'bin/smoothadv version | tee /dev/stderr | grep -q "^c10d backends .*nccl"'
if [ ! -f "$build/models/manifest.json" ]; then
	step models 120 "$py" smoothadv/models/export_models.py --out "$build/models"
fi

# Test binaries run in their package's folder, as go test runs them.
for t in "$bundle"/tests/*.test; do
	pkg=$(basename "$t" .test)
	step "tests ${pkg//_//}" 90 bash -c 'cd "$1" && "$2" -test.v -test.run "CUDA|Device"' _ "${pkg//_//}" "$t"
done

model=$build/models/cifar_resnet110.pt
bench=(bin/smoothadv bench certify "$model" --device cuda:0 --images 10 --N0 100 --N 10000 --batch 1000 --sigma 0.25)
gpu_step "bench certify fp32" 120 "${bench[@]}" --reference "$py"
gpu_step "bench certify channels-last" 60 "${bench[@]}" --channels-last --reference ""
gpu_step "bench certify bf16" 60 "${bench[@]}" --precision bf16 --reference ""
gpu_step "bench certify fp16 channels-last" 60 "${bench[@]}" --precision fp16 --channels-last --reference ""
gpu_step "bench train" 150 bin/smoothadv bench train "$build/models/cifar_resnet20.pt" --device cuda:0 --reference "$py"

log "=== done in $SECONDS s; results in $results"
if ((${#failed[@]} > 0)); then
	log "FAILED: ${failed[*]}"
	exit 1
fi
log "all steps passed"
