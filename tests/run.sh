#!/usr/bin/env bash
# Installs every part the tests need on a fresh Debian/Ubuntu machine, then runs the
# whole suite. Nothing skips here: KEYWARD_E2E_REQUIRED=1 turns a missing part into a
# failure. .ci/run calls this same script.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# 1. System packages: a Secret Service (gnome-keyring) on a private D-Bus, libdbus for
#    the build, secret-tool to look into the keychain, util-linux for setsid/setpriv,
#    systemd-analyze to verify the unit file, libfaketime to move the clock.
need=()
command -v dbus-daemon >/dev/null || need+=(dbus-daemon)
command -v dbus-send >/dev/null || need+=(dbus-bin)
command -v gnome-keyring-daemon >/dev/null || need+=(gnome-keyring)
command -v secret-tool >/dev/null || need+=(libsecret-tools)
command -v pkg-config >/dev/null || need+=(pkg-config)
pkg-config --exists dbus-1 2>/dev/null || need+=(libdbus-1-dev)
command -v setpriv >/dev/null || need+=(util-linux)
command -v script >/dev/null || need+=(bsdutils)
command -v xmllint >/dev/null || need+=(libxml2-utils)
command -v systemd-analyze >/dev/null || need+=(systemd)
command -v faketime >/dev/null || need+=(faketime)
python3 -m venv --help >/dev/null 2>&1 || need+=(python3-venv)
if [ ${#need[@]} -gt 0 ]; then
  say "installing Debian packages: ${need[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# 2. Python parts, in the environment the demo also uses: moto's server, boto3, the AWS
#    CLI v1 and principalmapper, pinned in sandbox/python-requirements.txt.
venv="${KEYWARD_PYTHON_ENV:-$HOME/.cache/keyward/python}"
if ! "$venv/bin/python" -c 'import moto, boto3, awscli, principalmapper' 2>/dev/null; then
  say "installing moto, boto3, the AWS CLI and principalmapper into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r sandbox/python-requirements.txt
fi
export PATH="$venv/bin:$PATH"
export KEYWARD_PYTHON_ENV="$venv"

# 3. The real clients beyond pip's AWS CLI and boto3: the SDKs for JavaScript v3 (npm)
#    and Go v2 (Debian's packages, built offline), and Debian's AWS CLI v2. The Rust
#    SDK client is a workspace binary.
clients="${CARGO_TARGET_DIR:-target}/clients"
say "building the JavaScript and Go SDK clients and Debian's AWS CLI v2 into $clients"
KEYWARD_E2E_REQUIRED=1 tests/clients/build.sh "$clients"
KEYWARD_CLIENTS_DIR="$(cd "$clients" && pwd)"
export KEYWARD_CLIENTS_DIR

# 4. Build the binaries the end-to-end tests drive, then run every test.
say "building"
cargo build --workspace --bins
say "running the tests"
KEYWARD_E2E_REQUIRED=1 cargo test --workspace "$@"

# 5. No test depends on today's date: the unit and in-process tests again, with the
#    system clock 400 days ahead and 400 days back.
if [ $# -eq 0 ]; then
  say "running the unit and in-process tests with the clock moved 400 days either way"
  KEYWARD_E2E_REQUIRED=1 tests/clock-shift.sh +400d -400d
fi
