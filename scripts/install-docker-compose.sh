#!/usr/bin/env bash
# Builds the Docker Compose CLI plugin from its Go module into .tools/docker/cli-plugins, for
# test/docker-compose.test.ts (`docker compose config`) on machines whose docker client lacks the plugin.
# Only the docker client is needed to validate the file; no Docker engine is used. Does nothing when
# `docker compose` already works. Not part of `npm install` (the build takes a few minutes and about 1 GB);
# without it `npm test` skips that suite with a warning naming this script, and under CI=true fails.
# Exits non-zero, saying what is missing, when it cannot provide the plugin (no docker client, or no Go).
set -euo pipefail
cd "$(dirname "$0")/.."
COMPOSE_VERSION="${COMPOSE_VERSION:-v2.40.3}"
TARGET=.tools/docker/cli-plugins

if ! command -v docker >/dev/null 2>&1; then
  echo "install-docker-compose: no docker client on the PATH; install one (only the client is needed, no Docker engine), then run this again" >&2
  exit 1
fi
if docker compose version >/dev/null 2>&1 || [ -x "$TARGET/docker-compose" ]; then exit 0; fi
if ! command -v go >/dev/null 2>&1; then
  echo "install-docker-compose: the docker client has no compose plugin, and building one needs Go (1.24 or newer) on the PATH" >&2
  exit 1
fi

echo "install-docker-compose: building docker compose $COMPOSE_VERSION (one-time, a few minutes)"
mkdir -p "$TARGET"
# Built as the main module (its go.mod has exclude directives, which `go install module@version` refuses).
source_dir="$(go mod download -json "github.com/docker/compose/v2@$COMPOSE_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
out="$PWD/$TARGET/docker-compose"
(cd "$source_dir" && GOFLAGS=-mod=mod go build -trimpath -o "$out.partial" ./cmd)
mv -f "$out.partial" "$out"
# test/docker-compose.test.ts points DOCKER_CONFIG here when it finds the plugin.
DOCKER_CONFIG="$PWD/.tools/docker" docker compose version
echo "install-docker-compose: done"
