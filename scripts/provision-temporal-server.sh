#!/usr/bin/env bash
# Builds the official Temporal server and its SQL schema tool from the Go module proxy, at a
# pinned version, into .tools/temporal-server/<version>/ (git-ignored). Cached: a second run
# is a no-op. Used by the multi-process stack test (test/stack/, test/helpers/temporalCluster.ts),
# which runs the real server on a real Postgres store instead of the dev server's SQLite.
#
#   scripts/provision-temporal-server.sh            # build if missing; prints the folder last
#   scripts/provision-temporal-server.sh --check    # exit 0 (and print the folder) if built, 1 if not
#
# The folder gets:
#   temporal-server      go.temporal.io/server/cmd/server       (CGO_ENABLED=0, -trimpath, stripped)
#   temporal-sql-tool    go.temporal.io/server/cmd/tools/sql
#   schema/postgresql/v12/{temporal,visibility}/   the versioned schema the sql tool applies
#   config/                                        the server's sample configs (for reference)
#   VERSION                                        written last: its presence means "complete"
#
# Settings (environment): TEMPORAL_SERVER_VERSION (default below: the newest release whose
# go.mod accepts this machine's Go 1.26.8 — v1.32.2 and v1.31.5 ask for go 1.26.10, and
# GOTOOLCHAIN=local forbids fetching a newer toolchain), TEMPORAL_SERVER_TOOLS_DIR.
# Needs Go ≥ the module's `go` line on PATH (or /usr/local/go/bin); GOPROXY as configured.
set -euo pipefail

DEFAULT_VERSION=v1.32.1
VERSION="${TEMPORAL_SERVER_VERSION:-$DEFAULT_VERSION}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS_DIR="${TEMPORAL_SERVER_TOOLS_DIR:-$ROOT/.tools/temporal-server}"
DEST="$TOOLS_DIR/$VERSION"
MODULE=go.temporal.io/server

log() { echo "[provision-temporal-server] $*" >&2; }
die() { log "error: $*"; exit 1; }

is_complete() { [[ -f "$DEST/VERSION" && -x "$DEST/temporal-server" && -x "$DEST/temporal-sql-tool" ]]; }

if [[ "${1:-}" == "--check" ]]; then
  if is_complete; then echo "$DEST"; exit 0; fi
  log "not provisioned: $DEST (run scripts/provision-temporal-server.sh)"
  exit 1
fi

if is_complete; then
  log "Temporal server $VERSION already provisioned in $DEST"
  echo "$DEST"
  exit 0
fi

if ! command -v go >/dev/null 2>&1; then
  [[ -x /usr/local/go/bin/go ]] && PATH="/usr/local/go/bin:$PATH" \
    || die "Go is not installed (needs Go ≥ 1.26.8; Debian's golang package is too old)"
fi

mkdir -p "$TOOLS_DIR"
# One build at a time (CI and a developer's jest run may both ask).
exec 9>"$TOOLS_DIR/.lock"
flock 9
if is_complete; then echo "$DEST"; exit 0; fi

export CGO_ENABLED=0
export GOTOOLCHAIN=local   # never download a Go toolchain: build with the one installed
export GOFLAGS="${GOFLAGS:-} -buildvcs=false"
started=$SECONDS
work="$(mktemp -d "$TOOLS_DIR/.build-$VERSION.XXXXXX")"
trap 'rm -rf "$work"' EXIT

log "building $MODULE $VERSION with $(go version | cut -d' ' -f3) (CGO_ENABLED=0) …"
# `go install pkg@version` builds exactly the released go.mod (no replace directives in it);
# if a release ever carries some, build it from a throwaway main module that requires it
# (TEMPORAL_SERVER_BUILD=module forces that path).
build_in_module() {
  mkdir -p "$work/mod" "$work/bin"
  (
    cd "$work/mod"
    go mod init rr-webhooks.local/temporal-server-build >/dev/null 2>&1
    go get "$MODULE/cmd/server@$VERSION" "$MODULE/cmd/tools/sql@$VERSION"
    go build -trimpath -ldflags='-s -w' -o "$work/bin/server" "$MODULE/cmd/server"
    go build -trimpath -ldflags='-s -w' -o "$work/bin/sql" "$MODULE/cmd/tools/sql"
  ) || die "building $MODULE@$VERSION from a temporary module failed"
}
if [[ "${TEMPORAL_SERVER_BUILD:-}" == module ]]; then
  build_in_module
elif ! GOBIN="$work/bin" go install -trimpath -ldflags='-s -w' \
      "$MODULE/cmd/server@$VERSION" "$MODULE/cmd/tools/sql@$VERSION" 2> >(tee "$work/install.err" >&2); then
  grep -qE 'replace|exclude' "$work/install.err" || die "go install of $MODULE@$VERSION failed"
  log "go install refused the module's directives; building from a temporary module instead"
  build_in_module
fi

# The schema files and sample configs ship inside the module; keep a copy beside the
# binaries so a `go clean -modcache` does not break the test cluster.
moddir="$(go list -m -f '{{.Dir}}' "$MODULE@$VERSION" 2>/dev/null || true)"
[[ -n "$moddir" && -d "$moddir" ]] || moddir="$(go env GOMODCACHE)/$MODULE@$VERSION"
[[ -d "$moddir/schema/postgresql/v12" ]] || die "no schema/postgresql/v12 in $moddir"

staging="$work/out"
mkdir -p "$staging/schema/postgresql"
cp "$work/bin/server" "$staging/temporal-server"
cp "$work/bin/sql" "$staging/temporal-sql-tool"
cp -R "$moddir/schema/postgresql/v12" "$staging/schema/postgresql/v12"
cp -R "$moddir/config" "$staging/config"
chmod -R u+w "$staging"   # the module cache is read-only
echo "$VERSION" >"$staging/VERSION"
rm -rf "$DEST"
mv "$staging" "$DEST"      # atomic: a half-built folder is never taken for a cached one
log "built Temporal server $VERSION into $DEST in $((SECONDS - started))s"
echo "$DEST"
