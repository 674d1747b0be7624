#!/usr/bin/env bash
# Generates the four services' Prisma clients and the query database's into generated/prisma/<name> (run by
# `npm install`).
# Generating needs no database, but the CLI only stays on its offline engine when the schema's URL
# variable holds a well-formed URL, so a placeholder stands in for any that is unset.
set -euo pipefail
cd "$(dirname "$0")/.."
for service in orders inventory payments shipping query; do
  variable="$(echo "$service" | tr '[:lower:]' '[:upper:]')_DATABASE_URL"
  export "$variable"="${!variable:-postgresql://placeholder@localhost:5432/$service}"
  node node_modules/prisma/build/index.js generate --config "prisma/$service/prisma.config.ts" >/dev/null
done
echo "prisma: generated clients for orders, inventory, payments, shipping, query"
