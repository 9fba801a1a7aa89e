# Shared by scripts/run and scripts/test: install what is missing, at pinned versions, from
# the package registries only (crates.io, npm, Debian). Tools already present at the right
# version are skipped, so a warm machine spends seconds here.
# shellcheck shell=bash

TRUNK_VERSION=0.21.14          # 0.22 needs rustc 1.96.1
WASM_BINDGEN_VERSION=0.2.130   # must equal the wasm-bindgen crate pinned in Cargo.toml
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export TRUNK_SKIP_VERSION_CHECK=true
export PATH="$REPO_ROOT/tools/node_modules/.bin:${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

TANDEM_STARTED=${TANDEM_STARTED:-$(date +%s)}
# Each step names the time since the start and the disk left, so a CI log shows where either ran out.
step() {
  printf '\n\033[1m==> [%4ds, %s free] %s\033[0m\n' "$(( $(date +%s) - TANDEM_STARTED ))" \
    "$(df -Ph "$REPO_ROOT" 2>/dev/null | awk 'NR==2 {print $4}')" "$*"
}

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "error: '$*' needs root; install it by hand or run as root" >&2; return 1
  fi
}

# cargo install with a quick profile: these are build tools, their speed barely matters, and
# opt-level 1 without LTO halves the one-time install on 2 cores. Both tools share one
# target directory so their common dependencies build once.
cargo_install() {
  CARGO_TARGET_DIR="${TANDEM_TOOL_TARGET:-$HOME/.cache/tandem-tool-build}" \
  CARGO_PROFILE_RELEASE_OPT_LEVEL=1 CARGO_PROFILE_RELEASE_LTO=off \
  CARGO_PROFILE_RELEASE_CODEGEN_UNITS=256 CARGO_PROFILE_RELEASE_DEBUG=0 \
  CARGO_PROFILE_RELEASE_STRIP=true \
    cargo install "$@"
}

has_version() { # binary, version
  "$1" --version 2>/dev/null | grep -q " $2\$"
}

ensure_build_tools() {
  if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    step "adding the wasm32-unknown-unknown target"
    rustup target add wasm32-unknown-unknown
  fi
  if ! has_version trunk "$TRUNK_VERSION"; then
    step "installing trunk $TRUNK_VERSION (one time, about 10 minutes on 2 cores)"
    cargo_install --locked "trunk@$TRUNK_VERSION"
  fi
  if ! has_version wasm-bindgen "$WASM_BINDGEN_VERSION"; then
    step "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (one time, a few minutes)"
    # Not --locked: its shipped lockfile names a webpki-roots the registry does not have.
    cargo_install "wasm-bindgen-cli@$WASM_BINDGEN_VERSION"
  fi
  if ! has_version "$REPO_ROOT/tools/node_modules/.bin/wasm-opt" "(version_132)"; then
    step "installing wasm-opt (npm binaryen 132; never Debian's binaryen, which breaks the app)"
    (cd "$REPO_ROOT/tools" && npm ci --no-fund --no-audit)
  fi
}

# Test-only tools: Chromium, ChromeDriver and Firefox ESR (apt), playwright-core and
# puppeteer-core (Firefox over WebDriver BiDi), and the real libsignal (npm
# @signalapp/libsignal-client 0.90.0, prebuilt for linux-x64) for the interop tests.
ensure_test_tools() {
  if ! [ -x /usr/bin/chromium ] || ! [ -x /usr/bin/chromedriver ] || ! [ -x /usr/bin/firefox-esr ]; then
    step "installing Chromium, ChromeDriver and Firefox ESR from apt"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq chromium chromium-driver firefox-esr
  fi
  if ! [ -d "$REPO_ROOT/tests/e2e/node_modules/playwright-core" ] ||
    ! [ -d "$REPO_ROOT/tests/e2e/node_modules/puppeteer-core" ]; then
    step "installing playwright-core and puppeteer-core for the end-to-end tests"
    (cd "$REPO_ROOT/tests/e2e" && npm ci --no-fund --no-audit)
  fi
  if ! [ -d "$REPO_ROOT/tests/interop/node_modules/@signalapp/libsignal-client" ]; then
    step "installing libsignal 0.90.0 (npm) for the interop tests"
    (cd "$REPO_ROOT/tests/interop" && npm ci --no-fund --no-audit)
  fi
}

build_web_app() {
  step "building the web app (trunk build --release)"
  (cd "$REPO_ROOT" && cargo fetch --locked -q && trunk build --release)
}
