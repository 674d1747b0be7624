#!/usr/bin/env bash
# Optional: builds the Docker Compose CLI plugin from its Go module into .tools/docker/cli-plugins, for
# test/docker-compose.test.ts (`docker compose config`) on machines whose docker client lacks the plugin.
# Only the docker client is needed to validate the file; no Docker engine is used. Does nothing when
# `docker compose` already works or Go is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
COMPOSE_VERSION="${COMPOSE_VERSION:-v2.40.3}"
TARGET=.tools/docker/cli-plugins

command -v docker >/dev/null 2>&1 || { echo "install-docker-compose: no docker client, skipping"; exit 0; }
if docker compose version >/dev/null 2>&1 || [ -x "$TARGET/docker-compose" ]; then exit 0; fi
command -v go >/dev/null 2>&1 || { echo "install-docker-compose: no Go toolchain, skipping"; exit 0; }

echo "install-docker-compose: building docker compose $COMPOSE_VERSION (one-time, a few minutes)"
mkdir -p "$TARGET"
# Built as the main module (its go.mod has exclude directives, which `go install module@version` refuses).
source_dir="$(go mod download -json "github.com/docker/compose/v2@$COMPOSE_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
out="$PWD/$TARGET/docker-compose"
(cd "$source_dir" && GOFLAGS=-mod=mod go build -trimpath -o "$out.partial" ./cmd)
mv -f "$out.partial" "$out"
echo "install-docker-compose: done"
