#!/usr/bin/env bash
# The unit and in-process tests with the system clock moved 400 days ahead and 400
# days back (libfaketime): no test may depend on today's date. tests/run.sh calls it;
# it also runs alone: `tests/clock-shift.sh [+400d -400d ...]`.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v faketime >/dev/null; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends faketime >/dev/null
fi

# Every test binary but the end-to-end ones (they drive moto and the built binaries,
# whose clocks faketime would move apart from the emulator's).
mapfile -t bins < <(cargo test --workspace --no-run --message-format=json 2>/dev/null | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["profile"]["test"]:
        if m["target"]["name"] not in ("e2e", "install"):
            print(m["executable"])
')
[ ${#bins[@]} -gt 0 ] || { echo "clock-shift: no test binary found" >&2; exit 1; }

shifts=("$@")
[ ${#shifts[@]} -gt 0 ] || shifts=(+400d -400d)
for shift in "${shifts[@]}"; do
  for bin in "${bins[@]}"; do
    # Only the wall clock moves: timers and timeouts keep real time.
    DONT_FAKE_MONOTONIC=1 faketime -f "$shift" "$bin" -q
  done
  echo "clock-shift: every unit and in-process test passed with the clock at $shift"
done
