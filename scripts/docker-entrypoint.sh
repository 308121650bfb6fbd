#!/bin/sh
# Container entry point of the rr-webhooks image: `api` (default), `worker`, or
# `reencrypt-secrets` (README, Security: re-encrypts signing secrets under the newest key).
# `exec` so node receives SIGTERM directly from `docker stop` (compose also sets init: true).
set -e
role="${1:-api}"
[ "$#" -gt 0 ] && shift
case "$role" in
  api) exec node --import tsx src/api-server.ts "$@" ;;
  worker) exec node --import tsx src/worker.ts "$@" ;;
  reencrypt-secrets) exec node --import tsx src/reencrypt-secrets.ts "$@" ;;
  *) exec "$role" "$@" ;; # anything else runs as a command, e.g. `sh` for debugging
esac
