#!/usr/bin/env bash
# Prints keyward's benchmark figures (nothing is asserted). Needs the test parts:
# run ./tests/run.sh once first, it installs them. BENCH_RUNS=1000 by default.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${KEYWARD_PYTHON_ENV:-$HOME/.cache/keyward/python}"
[ -d "$venv/bin" ] && export PATH="$venv/bin:$PATH"
cargo build --release --workspace --bins
exec ./target/release/keyward-bench "$@"
