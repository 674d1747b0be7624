# One image for every process of the order saga: the API (`npm run api`, the default), the worker
# (`npm run worker`, optionally `--only=<role>` or WORKER_ROLES), the sandbox payment provider
# (`npm run payment-provider`) and the one-shot `npm run db:provision`.
# TypeScript runs through tsx (a runtime dependency); the one build step bundles the workflows. See docker-compose.yml.
FROM node:20-bookworm-slim

# OpenSSL lets the Prisma CLI detect the platform's libssl instead of warning and guessing;
# ca-certificates lets the worker reach an HTTPS payment provider when PAYMENT_PROVIDER=external.
RUN apt-get update \
 && apt-get install -y --no-install-recommends openssl ca-certificates \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app

# The dependency layer, rebuilt only when the lockfile, the install scripts or the Prisma schemas change.
# `npm ci` runs the postinstall: scripts/install-temporal.sh and scripts/generate-prisma-clients.sh.
# The image needs no Temporal CLI, test server or NATS server (they serve `npm start` and the tests; compose
# runs Temporal and NATS from their own images), so pointing TEMPORAL_CLI_PATH / TEMPORAL_TEST_SERVER_PATH /
# NATS_SERVER_PATH at /bin/true for this one command makes the install scripts skip their pip installs; the
# variables are not kept in the image.
# Generating the Prisma clients into generated/prisma needs the schemas under prisma/ but no database.
# Dev dependencies (mocha, typescript, @temporalio/testing, types) are left out: nothing at run time needs them.
COPY package.json package-lock.json ./
COPY scripts ./scripts
COPY prisma ./prisma
RUN TEMPORAL_CLI_PATH=/bin/true TEMPORAL_TEST_SERVER_PATH=/bin/true NATS_SERVER_PATH=/bin/true npm ci --omit=dev --no-audit --no-fund \
 && npm cache clean --force

COPY tsconfig.json ./
COPY src ./src

# The saga's workflows, bundled once here rather than by every saga worker at its start (webpack then costs the
# worker some 130 MiB it keeps, and seconds of CPU): the worker loads this file when WORKFLOW_BUNDLE names it. Built
# from the same sources as the activities beside it, with the workflow side of tracing (scripts/build-workflow-bundle.ts).
RUN npx tsx scripts/build-workflow-bundle.ts dist/workflow-bundle.js
ENV WORKFLOW_BUNDLE=/app/dist/workflow-bundle.js

ENV NODE_ENV=production
# `tsx` on the PATH: docker-compose.yml starts the long-running processes as `tsx src/...` rather than
# `npm run ...`, because npm does not pass SIGTERM on to the script it runs (the process would be killed
# instead of shutting down gracefully). The commands are the same as the npm scripts'.
ENV PATH=/app/node_modules/.bin:$PATH
# The sandbox payment provider's store. Created here, owned by the unprivileged user, so that a named volume
# mounted on it (docker-compose.yml) starts with that owner and the provider can write its log.
RUN mkdir -p /var/lib/payment-provider && chown node:node /var/lib/payment-provider
# tsx keeps its transform cache in the temporary folder, which the unprivileged user can write.
USER node
EXPOSE 3000
CMD ["npm", "run", "api"]
