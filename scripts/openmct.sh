#!/usr/bin/env bash
# Fetch Open MCT (pinned, from the npm registry) into .dev/openmct and print the directory to
# serve it from: `MC_OPENMCT_DIR=<printed dir> mission-control serve` (scripts/dev.sh up picks it
# up by itself), then open http://127.0.0.1:8080/openmct/. Idempotent.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
VERSION="${MC_OPENMCT_VERSION:-4.2.0}"
DEST=".dev/openmct/$VERSION"
if [[ ! -s $DEST/package/dist/openmct.js ]]; then
  command -v npm >/dev/null || { echo "openmct.sh: npm is needed (apt-get install npm)" >&2; exit 1; }
  mkdir -p "$DEST"
  echo "openmct.sh: fetching openmct@$VERSION from the npm registry" >&2
  tarball=$(cd "$DEST" && npm pack --silent "openmct@$VERSION" | tail -1)
  tar -xzf "$DEST/$tarball" -C "$DEST"
  rm -f "$DEST/$tarball"
fi
realpath "$DEST/package/dist"
