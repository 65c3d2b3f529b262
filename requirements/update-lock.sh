#!/usr/bin/env bash
# Rewrite requirements/ci.lock, the exact versions CI installs (`pip install -c requirements/ci.lock ...` in
# .ci/setup), from pyproject.toml's ranges: every extra CI installs (all, test, docs; vllm needs a GPU and is left
# out), Python 3.11 on x86_64 Linux. The versions already in the lock are kept where they still fit (uv's
# preference for the output file); `--upgrade` takes the newest that fit. Run the test suite after a change.
#   bash requirements/update-lock.sh [--upgrade]
set -euo pipefail
cd "$(dirname "$0")/.."
UV=${UV:-$(command -v uv || true)}
if [ -z "$UV" ]; then  # no uv here: install it into a throwaway folder, not into .venv
    tools=$(mktemp -d)
    python3 -m pip install --quiet --target "$tools" uv
    UV="$tools/bin/uv"
fi
# /opt/wheels holds the CPU build of torch on CI's machines; pip prefers it to PyPI's build of the same version.
find_links=()
[ -d /opt/wheels ] && find_links=(--find-links /opt/wheels)
"$UV" pip compile pyproject.toml --extra all --extra test --extra docs --python-version 3.11.7 \
    --python-platform x86_64-manylinux_2_28 "${find_links[@]}" --no-header --quiet "$@" -o requirements/ci.lock
# Pin torch by its public version: the CPU build (2.13.0+cpu) satisfies `torch==2.13.0` where it is offered.
sed -i -E 's/^torch==([0-9.]+)\+cpu$/torch==\1/' requirements/ci.lock
