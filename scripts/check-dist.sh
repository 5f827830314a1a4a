#!/usr/bin/env bash
# Is dist/ what `npm run bundle` makes? Every file but the native zstd binding is compared byte
# for byte. The binding is a build product of the machine's compiler and C library (`npm ci` on
# another Linux makes other bytes), so it is checked by loading it under this Node instead.
# Used by .github/workflows/ci.yml; `--no-bundle` checks dist/ as it is (for tests).
set -uo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" != "--no-bundle" ]; then
  npm run -s bundle >/dev/null || { echo "npm run bundle failed"; exit 1; }
fi
except_binding=':(exclude)dist/*/build/Release/binding.node'
if ! git diff --quiet -- dist "$except_binding"; then
  echo "dist/ differs from a fresh 'npm run bundle' (run it and commit dist/):"
  git diff --stat -- dist "$except_binding" | tail -5
  exit 1
fi
untracked=$(git ls-files --others --exclude-standard -- dist)
if [ -n "$untracked" ]; then
  echo "'npm run bundle' made files that are not committed: $untracked"
  exit 1
fi
for binding in dist/*/build/Release/binding.node; do
  if ! node -e 'process.dlopen({ exports: {} }, require("node:path").resolve(process.argv[1]))' "$binding" 2>/dev/null; then
    echo "$binding does not load under Node $(node --version)"
    exit 1
  fi
done
echo "dist/ is what 'npm run bundle' makes (JavaScript byte for byte; the native bindings load)"
