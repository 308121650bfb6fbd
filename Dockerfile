# rr-webhooks: one image, two processes.
#   docker run IMAGE api      # Koa REST API   (node --import tsx src/api-server.ts), port 3000
#   docker run IMAGE worker   # Temporal worker (node --import tsx src/worker.ts)
# TypeScript runs through tsx at run time (a production dependency), so there is no build
# step: the first stage only installs production dependencies, the second adds the source.

ARG NODE_IMAGE=node:20-bookworm-slim

# ---- production node_modules ----
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund \
 && npm cache clean --force

# ---- runtime ----
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=3000 \
    NPM_CONFIG_UPDATE_NOTIFIER=false
WORKDIR /app
# Code and dependencies stay owned by root: the app user can read them but not change them.
COPY --from=deps /app/node_modules ./node_modules
COPY package.json package-lock.json tsconfig*.json ./
COPY src ./src
COPY scripts/docker-entrypoint.sh /usr/local/bin/rr-webhooks
RUN chmod 0755 /usr/local/bin/rr-webhooks
# The official image's `node` user, numerically (lets Kubernetes verify runAsNonRoot).
USER 1000:1000
EXPOSE 3000
ENTRYPOINT ["rr-webhooks"]
CMD ["api"]
