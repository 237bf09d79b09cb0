#!/usr/bin/env bash
# Builds the real-SDK e2e clients into OUT_DIR:
#   OUT_DIR/keyward-js-whoami   AWS SDK for JavaScript v3 (npm, pinned by js/package-lock.json)
#   OUT_DIR/keyward-go-whoami   AWS SDK for Go v2 (Debian's golang-github-aws-aws-sdk-go-v2-dev,
#                               built offline in GOPATH mode)
#   OUT_DIR/keyward-awscli2-whoami  Debian's AWS CLI v2 (package awscli)
# Each prints {"arn": "...", "sdk": "js-v3"|"go-v2"} after STS GetCallerIdentity, with
# credentials from the normal ~/.aws/config (AWS_PROFILE) and endpoint AWS_ENDPOINT_URL.
#
# Idempotent. Prints one line per client: "OK <client>: <path> (...)" or
# "SKIP <client>: <reason>". Exits 0 when a client is skipped, unless
# KEYWARD_E2E_REQUIRED=1, then 1. Build logs go to OUT_DIR/logs/.
set -uo pipefail

if [ $# -ne 1 ] || [ -z "$1" ]; then
  echo "usage: $0 OUT_DIR" >&2
  exit 2
fi
src="$(cd "$(dirname "$0")" && pwd)"
mkdir -p "$1" "$1/logs" || exit 1
out="$(cd "$1" && pwd)"
logs="$out/logs"
skipped=0

ok()   { echo "OK $1: $2"; }
skip() { echo "SKIP $1: $2"; skipped=1; }

# Installs Debian packages (as root, or through passwordless sudo). Quiet; log in $logs/apt.log.
apt_install() {
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo="sudo -n"; else return 1; fi
  fi
  command -v apt-get >/dev/null || return 1
  local apt=($sudo env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 -y -q
             --no-install-recommends)
  "${apt[@]}" install "$@" >>"$logs/apt.log" 2>&1 && return 0
  # Package lists may be missing or stale on a fresh machine.
  $sudo apt-get -o DPkg::Lock::Timeout=300 -q update >>"$logs/apt.log" 2>&1 || return 1
  "${apt[@]}" install "$@" >>"$logs/apt.log" 2>&1
}

# ---------------------------------------------------------------- js-v3
build_js() {
  local dir="$out/js" log="$logs/js.log"
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    skip js-v3 "node and npm are not installed"; return
  fi
  local major
  major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
  if [ "$major" -lt 20 ]; then
    skip js-v3 "node >= 20 required by the AWS SDK for JavaScript v3, found $(node --version)"; return
  fi
  mkdir -p "$dir"
  cp "$src/js/package.json" "$src/js/package-lock.json" "$src/js/whoami.mjs" "$dir/"
  local stamp
  stamp="$(cat "$src/js/package.json" "$src/js/package-lock.json" | sha256sum | cut -d' ' -f1) node$major"
  if [ ! -d "$dir/node_modules" ] || [ "$(cat "$dir/.npm-ci-stamp" 2>/dev/null)" != "$stamp" ]; then
    rm -f "$dir/.npm-ci-stamp"
    if ! (cd "$dir" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
            --loglevel=error --no-progress) >"$log" 2>&1; then
      skip js-v3 "npm ci failed: $(grep -m1 -i 'err' "$log" || tail -n1 "$log") (see $log)"; return
    fi
    echo "$stamp" >"$dir/.npm-ci-stamp"
  fi
  cat >"$out/keyward-js-whoami.tmp" <<'EOF'
#!/bin/sh
exec node "$(dirname "$0")/js/whoami.mjs" "$@"
EOF
  chmod +x "$out/keyward-js-whoami.tmp" && mv -f "$out/keyward-js-whoami.tmp" "$out/keyward-js-whoami"
  local ver
  ver="$(node -p 'require(process.argv[1]).version' "$dir/node_modules/@aws-sdk/client-sts/package.json" 2>/dev/null)"
  ok js-v3 "$out/keyward-js-whoami (@aws-sdk/client-sts $ver, node $(node --version))"
}

# ---------------------------------------------------------------- go-v2
build_go() {
  local log="$logs/go.log" gopath=/usr/share/gocode
  local sdk="$gopath/src/github.com/aws/aws-sdk-go-v2"
  local pkgs=(config credentials/processcreds credentials/stscreds service/sts)
  local missing=() p
  missing_pkgs() { missing=(); for p in "${pkgs[@]}"; do [ -d "$sdk/$p" ] || missing+=("$p"); done; }
  missing_pkgs
  if ! command -v go >/dev/null || [ ${#missing[@]} -gt 0 ]; then
    if ! apt_install golang-go golang-github-aws-aws-sdk-go-v2-dev; then
      if [ "$(id -u)" -ne 0 ] && ! (command -v sudo >/dev/null && sudo -n true 2>/dev/null); then
        skip go-v2 "go or golang-github-aws-aws-sdk-go-v2-dev missing; not root and no passwordless sudo"
      else
        skip go-v2 "apt-get install golang-go golang-github-aws-aws-sdk-go-v2-dev failed (see $logs/apt.log)"
      fi
      return
    fi
    missing_pkgs
  fi
  if ! command -v go >/dev/null; then skip go-v2 "go not found after installing golang-go"; return; fi
  if [ ${#missing[@]} -gt 0 ]; then
    skip go-v2 "Debian's aws-sdk-go-v2 lacks: ${missing[*]}"; return
  fi
  # Offline GOPATH-mode build against the Debian-packaged sources; no module proxy.
  if ! (cd "$src/go" && env GO111MODULE=off GOPATH="$gopath" GOFLAGS= GOTOOLCHAIN=local \
          GOPROXY=off GOENV=off CGO_ENABLED=0 GOCACHE="$out/go-cache" \
          go build -trimpath -o "$out/keyward-go-whoami.tmp" .) >"$log" 2>&1; then
    skip go-v2 "go build failed: $(head -n1 "$log") (see $log)"; return
  fi
  mv -f "$out/keyward-go-whoami.tmp" "$out/keyward-go-whoami"
  local ver
  ver="$(dpkg-query -W -f='${Version}' golang-github-aws-aws-sdk-go-v2-dev 2>/dev/null || echo unknown)"
  ok go-v2 "$out/keyward-go-whoami (aws-sdk-go-v2 $ver from Debian, $(go version | cut -d' ' -f3))"
}

# ---------------------------------------------------------------- aws-cli-v2
# Debian's AWS CLI v2 (package awscli), beside the pip v1 the rest of the suite uses.
# It predates AWS_ENDPOINT_URL, so the wrapper passes the endpoint on the command line.
build_awscli2() {
  if [ ! -x /usr/bin/aws ] || ! /usr/bin/aws --version 2>&1 | grep -q '^aws-cli/2'; then
    if ! apt_install awscli; then
      skip aws-cli-v2 "apt-get install awscli failed (see $logs/apt.log)"; return
    fi
  fi
  if ! /usr/bin/aws --version 2>&1 | grep -q '^aws-cli/2'; then
    skip aws-cli-v2 "/usr/bin/aws is not the AWS CLI v2: $(/usr/bin/aws --version 2>&1)"; return
  fi
  cat >"$out/keyward-awscli2-whoami.tmp" <<'EOF'
#!/bin/sh
# {"arn": ..., "sdk": "aws-cli-v2"} from Debian's AWS CLI v2, through AWS_PROFILE's config.
/usr/bin/aws sts get-caller-identity --endpoint-url "$AWS_ENDPOINT_URL" --output json |
  python3 -c 'import json,sys; print(json.dumps({"arn": json.load(sys.stdin)["Arn"], "sdk": "aws-cli-v2"}))'
EOF
  chmod +x "$out/keyward-awscli2-whoami.tmp" && mv -f "$out/keyward-awscli2-whoami.tmp" "$out/keyward-awscli2-whoami"
  ok aws-cli-v2 "$out/keyward-awscli2-whoami ($(/usr/bin/aws --version 2>&1 | cut -d' ' -f1))"
}

build_js
build_go
build_awscli2

if [ "$skipped" -ne 0 ] && [ "${KEYWARD_E2E_REQUIRED:-0}" = 1 ]; then
  exit 1
fi
exit 0
