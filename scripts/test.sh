#!/usr/bin/env bash
# The project's one test command: installs the tools the tests need when they are missing, then runs
# every test of the workspace in release mode. Extra arguments go to `cargo test` (a test name filter,
# `-p CRATE`, `-- --nocapture`). `.ci/run` calls this same script, then adds fmt, clippy and loom.
#
# Usage: bash scripts/test.sh [CARGO TEST ARGS]
#
# To add a tool a test needs, add one line below the helpers:
#   need_deb COMMAND DEBIAN-PACKAGE     e.g. need_deb mosquitto mosquitto
#   need_pip PYTHON-MODULE PYPI-PACKAGE e.g. need_pip paho.mqtt paho-mqtt
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo is required (install Rust with rustup)" >&2
  exit 1
fi

apt_updated=no

# has_command COMMAND: whether COMMAND is on the PATH or in /usr/sbin (where daemons such as mosquitto
# land, often not on a user's PATH).
has_command() {
  command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]
}

# need_deb COMMAND PACKAGE: installs the Debian PACKAGE when COMMAND is not there (see has_command).
need_deb() {
  local command=$1 package=$2
  has_command "$command" && return 0
  local apt_get=apt-get
  if [ "$(id -u)" != 0 ]; then apt_get="sudo apt-get"; fi
  if [ "$apt_updated" = no ]; then
    echo "== apt-get update"
    $apt_get update -qq >/dev/null
    apt_updated=yes
  fi
  echo "== installing $package (for \`$command\`)"
  DEBIAN_FRONTEND=noninteractive $apt_get install -y -qq --no-install-recommends "$package" >/dev/null
  has_command "$command" || {
    echo "installing $package did not provide \`$command\`" >&2
    exit 1
  }
}

# need_pip MODULE PACKAGE: installs the PyPI PACKAGE for the user when python3 cannot import MODULE.
need_pip() {
  local module=$1 package=$2
  python3 -c "import $module" >/dev/null 2>&1 && return 0
  echo "== installing $package (for python module \`$module\`)"
  python3 -m pip install --user --quiet "$package" 2>/dev/null ||
    python3 -m pip install --user --quiet --break-system-packages "$package"
  python3 -c "import $module" >/dev/null 2>&1 || {
    echo "installing $package did not provide python module \`$module\`" >&2
    exit 1
  }
}

# The dashboard's end-to-end tests drive the real binary in tmux.
need_deb tmux tmux

# The stats endpoint's /metrics is checked by the reference OpenMetrics parser.
need_pip prometheus_client prometheus-client

# switchyard-mqtt: real MQTT clients and a real Mosquitto for the bridge test and the comparison.
need_deb mosquitto mosquitto
need_deb mosquitto_sub mosquitto-clients
need_pip paho.mqtt paho-mqtt
# TLS tests make their certificates with the openssl command line (tests/support/certs.rs).
need_deb openssl openssl

echo "== cargo test --workspace --release $*"
exec cargo test --workspace --release "$@"
