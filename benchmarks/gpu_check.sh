#!/usr/bin/env bash
# The GPU check on a lent GPU machine (torch + transformers there, no network): see benchmarks/gpu_check.py.
# Stage 1 parks .gpu_check/part1 (wheels, pairs, the GGUF's first half) in /tmp/gpu_check; stage 2, called while
# the machine is still warm, adds part2, installs the wheels, joins and converts the model and runs the check.
set -euo pipefail
cd "$(dirname "$0")/.."
PARTS=/tmp/gpu_check
mkdir -p "$PARTS"
case "${1:-}" in
1)
    cp -r .gpu_check/part1/. "$PARTS/"
    ls -la "$PARTS"
    ;;
2)
    cp -r .gpu_check/part2/. "$PARTS/"
    [ -f "$PARTS/model.gguf.1" ] || { echo "stage 1 is missing on this machine: run stage 1, then 2 at once"; exit 1; }
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
        "$PARTS"/wheels/*.whl
    export PYTHONPATH="/tmp/site:$PWD" PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
    python3 benchmarks/gpu_check.py gpu --parts "$PARTS" "${@:2}" 2>&1 | tee "${OUT:-/tmp}/gpu_check.log"
    ;;
*)
    echo "usage: bash benchmarks/gpu_check.sh 1|2 [gpu_check.py options]"; exit 2
    ;;
esac
