#!/usr/bin/env bash
# Installs keyward for this user: builds with `cargo install --locked`, installs the
# service for the platform's service manager, starts it and runs `keyward doctor`.
#
#   install.sh [--prefix DIR] [--no-service] [--demo] [--debug]
#   install.sh --uninstall [--prefix DIR] [--remove-keys]
#
# Idempotent, no root needed (except to apt-get the libdbus headers once, on Linux).
# Every installed file is listed in PREFIX/share/keyward/install-manifest, which
# --uninstall follows. Keychain entries are only removed with --remove-keys.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$here")"
prefix="${HOME}/.local"
service=1
demo=0
profile_flag=()
uninstall=0
remove_keys=0

usage() { sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix="$2"; shift 2 ;;
    --prefix=*) prefix="${1#--prefix=}"; shift ;;
    --no-service) service=0; shift ;;
    --demo) demo=1; shift ;;
    --debug) profile_flag=(--debug); shift ;;  # unoptimised, reuses the test build: for CI
    --uninstall) uninstall=1; shift ;;
    --remove-keys) remove_keys=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "install.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
done
mkdir -p "$prefix"
prefix="$(cd "$prefix" && pwd)"
bindir="$prefix/bin"
share="$prefix/share/keyward"
manifest="$share/install-manifest"
os="$(uname -s)"
unit_dir="${XDG_CONFIG_HOME:-$HOME/.config}/systemd/user"
unit="$unit_dir/keywardd.service"
plist="$HOME/Library/LaunchAgents/dev.keyward.keywardd.plist"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
have_systemd_user() { command -v systemctl >/dev/null && systemctl --user show-environment >/dev/null 2>&1; }

if [ "$uninstall" -eq 1 ]; then
  rundir=""
  if [ -x "$bindir/keyward" ]; then
    # Where this keyward keeps its socket, lock and log (it knows; the shell guesses).
    sock="$("$bindir/keyward" status --json 2>/dev/null | sed -n 's/^ *"socket": *"\(.*\)",*$/\1/p')"
    [ -n "$sock" ] && rundir="$(dirname "$sock")"
    "$bindir/keyward" daemon stop >/dev/null 2>&1 || true
    if [ "$remove_keys" -eq 1 ]; then
      for p in $("$bindir/keyward" profile list --json 2>/dev/null | python3 -c 'import json,sys; print(" ".join(json.load(sys.stdin)))' 2>/dev/null); do
        "$bindir/keyward" key remove --profile "$p" || true
      done
    fi
  fi
  if [ -f "$unit" ] && have_systemd_user; then
    systemctl --user disable --now keywardd.service >/dev/null 2>&1 || true
  fi
  if [ "$os" = Darwin ] && [ -f "$plist" ]; then
    launchctl bootout "gui/$(id -u)" "$plist" 2>/dev/null || true
  fi
  if [ -f "$manifest" ]; then
    while IFS= read -r f; do rm -f "$f"; done < "$manifest"
    rm -f "$manifest"
  fi
  for d in "$share" "$prefix/share/man/man1" "$prefix/share/man" \
           "$prefix/share/bash-completion/completions" "$prefix/share/bash-completion" \
           "$prefix/share/zsh/site-functions" "$prefix/share/zsh" \
           "$prefix/share/fish/vendor_completions.d" "$prefix/share/fish" "$prefix/share" "$bindir"; do
    rmdir "$d" 2>/dev/null || true
  done
  rmdir "$unit_dir" "$(dirname "$unit_dir")" 2>/dev/null || true
  # The daemon's runtime files: socket, locks, log, the MFA steps it remembered.
  if [ -n "$rundir" ] && [ -d "$rundir" ]; then
    rm -f "$rundir"/keywardd.sock "$rundir"/keywardd.lock "$rundir"/start.lock "$rundir"/keywardd.log "$rundir"/mfa-steps.json
    rmdir "$rundir" 2>/dev/null || true
    [ "$(basename "$rundir")" = run ] && rmdir "$(dirname "$rundir")" 2>/dev/null || true
  fi
  data="${XDG_DATA_HOME:-$HOME/.local/share}/keyward"
  rmdir "$data/keys" "$data" 2>/dev/null || true
  have_systemd_user && systemctl --user daemon-reload 2>/dev/null || true
  say "keyward uninstalled from $prefix"
  if [ "$remove_keys" -eq 1 ]; then
    echo "the keys were removed; keyward's config (${XDG_CONFIG_HOME:-$HOME/.config}/keyward) was kept" >&2
  else
    echo "keys (keychain entries, key files) and keyward's config were kept; \`install.sh --uninstall --remove-keys\` removes the keys" >&2
  fi
  py="${KEYWARD_PYTHON_ENV:-$HOME/.cache/keyward/python}"
  [ -d "$py" ] && echo "the demo's and tests' Python environment is still at $py (about 500 MB): rm -rf $py" >&2
  exit 0
fi

# Build prerequisites: a Rust toolchain, and on Linux the libdbus headers for the
# Secret Service client.
command -v cargo >/dev/null || { echo "install.sh: cargo not found; install Rust from rustup.rs first" >&2; exit 1; }
need=()
if [ "$os" = Linux ]; then
  pkg-config --exists dbus-1 2>/dev/null || need+=(libdbus-1-dev pkg-config)
  if [ "$demo" -eq 1 ]; then
    # The demo gives each emulated computer a private Secret Service, and runs moto
    # (Python) in a venv of its own.
    command -v gnome-keyring-daemon >/dev/null || need+=(gnome-keyring)
    command -v dbus-daemon >/dev/null || need+=(dbus-daemon)
    command -v dbus-send >/dev/null || need+=(dbus-bin)
    python3 -m venv --help >/dev/null 2>&1 || need+=(python3-venv)
  fi
fi
if [ ${#need[@]} -gt 0 ]; then
  command -v apt-get >/dev/null || { echo "install.sh: please install: ${need[*]}" >&2; exit 1; }
  say "installing ${need[*]}"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

say "building and installing into $prefix (cargo install --locked): the first build takes about 5 minutes on 2 cores, up to 30 on a small machine"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo/target}"
cargo install --locked --force "${profile_flag[@]}" --root "$prefix" --path "$repo/daemon"
cargo install --locked --force "${profile_flag[@]}" --root "$prefix" --path "$repo/cli"
mkdir -p "$share"
installed=("$bindir/keyward" "$bindir/keyward-credential-process" "$bindir/keywardd" "$prefix/.crates.toml" "$prefix/.crates2.json")
if [ "$demo" -eq 1 ]; then
  # The demo and its emulated phone live in the sandbox crate, not in keyward itself.
  cargo install --locked --force "${profile_flag[@]}" --root "$prefix" --path "$repo/sandbox"
  installed+=("$bindir/keyward-demo" "$bindir/keyward-phone")
fi

# Man pages and shell completions.
mkdir -p "$prefix/share/man/man1" "$prefix/share/bash-completion/completions" "$prefix/share/zsh/site-functions" "$prefix/share/fish/vendor_completions.d"
if "$bindir/keyward" man --out "$prefix/share/man/man1" >/dev/null 2>&1; then
  for f in "$prefix"/share/man/man1/keyward*.1; do installed+=("$f"); done
fi
for sh in bash zsh fish; do
  case "$sh" in
    bash) out="$prefix/share/bash-completion/completions/keyward" ;;
    zsh) out="$prefix/share/zsh/site-functions/_keyward" ;;
    fish) out="$prefix/share/fish/vendor_completions.d/keyward.fish" ;;
  esac
  if "$bindir/keyward" completions "$sh" > "$out" 2>/dev/null; then installed+=("$out"); else rm -f "$out"; fi
done

# The service, for the platform's service manager.
if [ "$service" -eq 1 ] && [ "$os" = Linux ]; then
  mkdir -p "$unit_dir"
  sed "s|@BINDIR@|$bindir|g" "$here/keywardd.service" > "$unit"
  installed+=("$unit")
  if have_systemd_user; then
    systemctl --user daemon-reload
    "$bindir/keyward" daemon stop >/dev/null 2>&1 || true
    systemctl --user enable --now keywardd.service
    say "keywardd runs under systemd (journalctl --user -u keywardd)"
  else
    say "no systemd user manager here: the unit is installed, and keyward starts keywardd on demand"
  fi
elif [ "$service" -eq 1 ] && [ "$os" = Darwin ]; then
  mkdir -p "$(dirname "$plist")" "$HOME/Library/Logs"
  sed -e "s|@BINDIR@|$bindir|g" -e "s|@LOGDIR@|$HOME/Library/Logs|g" "$here/dev.keyward.keywardd.plist" > "$plist"
  installed+=("$plist")
  launchctl bootout "gui/$(id -u)" "$plist" 2>/dev/null || true
  launchctl bootstrap "gui/$(id -u)" "$plist"
  say "keywardd runs under launchd (~/Library/Logs/keywardd.log)"
fi

printf '%s\n' "${installed[@]}" > "$manifest"
echo "$manifest" >> "$manifest"

case ":$PATH:" in *":$bindir:"*) ;; *) echo "note: add $bindir to PATH" >&2 ;; esac

if [ "$demo" -eq 1 ]; then
  exec "$bindir/keyward" demo
fi
say "checking the installation"
"$bindir/keyward" doctor || true
