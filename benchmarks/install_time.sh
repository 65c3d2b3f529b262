#!/usr/bin/env bash
# The README's two set-ups as a new user meets them, timed: each in a fresh clone of this repository's HEAD in a
# temp dir, with pip's cache (PIP_CACHE_DIR) and labeler's cache (LABELER_CACHE_DIR) pointed at new, empty temp
# dirs, so every wheel is downloaded (or, for llama-cpp-python, built) again and the default model is fetched and
# converted on first use. Prints the seconds and the .venv size of each; removes everything it made.
#   bash benchmarks/install_time.sh [core|test|both]     (default both; on a quiet box: timings)
#   core: `bash .ci/setup` then `labeler annotate examples/pairs.jsonl` (target: under 120 s in all)
#   test: `bash .ci/setup --test` (every CPU extra, test and docs tools, llama.cpp's source build)
set -euo pipefail
which=${1:-both}
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/labeler-install.XXXXXX)
trap 'rm -rf "$work"' EXIT
now() { date +%s.%N; }
seconds() { python3 -c "print(f'{$2 - $1:.1f}')"; }

fresh_clone() {  # $1: name; leaves you in the clone, with empty caches exported
    git clone -q "$repo" "$work/$1"
    cd "$work/$1"
    [ ! -e .venv ] || { echo "the clone has a .venv ($(readlink -f .venv)): refusing to install into it" >&2; exit 1; }
    export PIP_CACHE_DIR="$work/$1-pip-cache" LABELER_CACHE_DIR="$work/$1-labeler-cache"
    mkdir -p "$PIP_CACHE_DIR" "$LABELER_CACHE_DIR"
}

if [ "$which" = core ] || [ "$which" = both ]; then
    fresh_clone core
    t0=$(now)
    bash .ci/setup
    t1=$(now)
    .venv/bin/labeler annotate examples/pairs.jsonl --db "$work/core.duckdb"
    t2=$(now)
    echo "core: set-up $(seconds "$t0" "$t1") s, first annotate $(seconds "$t1" "$t2") s," \
         "in all $(seconds "$t0" "$t2") s; .venv $(du -sh .venv | cut -f1);" \
         "labeler cache $(du -sh "$LABELER_CACHE_DIR" | cut -f1)"
    .venv/bin/labeler retrain --db "$work/core.duckdb" --method star-dpo 2>&1 | tail -1 || true  # a missing extra: one line
fi
if [ "$which" = test ] || [ "$which" = both ]; then
    fresh_clone test
    [ -x /usr/bin/chromium ] && echo "test: chromium already installed: its apt-get is not in the time"
    t0=$(now)
    bash .ci/setup --test
    t1=$(now)
    echo "test: set-up $(seconds "$t0" "$t1") s; .venv $(du -sh .venv | cut -f1)"
fi
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
