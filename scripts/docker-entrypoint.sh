#!/bin/sh
# Container entry point of the rr-webhooks image: `api` (default), `worker`, or
# `reencrypt-secrets` (README, Security: re-encrypts signing secrets under the newest key).
# Runs the compiled JavaScript in dist/ (`npm run build`); the worker loads the pre-built
# dist/workflow-bundle.js. `exec` so node receives SIGTERM directly from `docker stop`
# (compose also sets init: true).
set -e
role="${1:-api}"
[ "$#" -gt 0 ] && shift
case "$role" in
  api) exec node /app/dist/api-server.js "$@" ;;
  worker) exec node /app/dist/worker.js "$@" ;;
  reencrypt-secrets) exec node /app/dist/reencrypt-secrets.js "$@" ;;
  *) exec "$role" "$@" ;; # anything else runs as a command, e.g. `sh` for debugging
esac
