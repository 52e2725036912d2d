#!/usr/bin/env bash
# Lints docs/openapi.yaml with Redocly CLI (pinned in package.json / package-lock.json,
# installed into tests/openapi/node_modules, which git ignores). Exits non-zero when the
# description has errors (warnings are printed but do not fail). Rules that do not fit this
# API are turned off, each with its reason, in tests/openapi/redocly.yaml.
#
# Usage: tests/openapi/lint.sh   (needs Node.js >= 20.19 and npm, as on the dev machines)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
want="$(sed -n 's/.*"@redocly\/cli": *"\([^"]*\)".*/\1/p' "$here/package.json")"

command -v npm >/dev/null || { echo "lint.sh: npm is missing (install Node.js 20+)" >&2; exit 1; }
have="$(cd "$here" && node -p 'require("@redocly/cli/package.json").version' 2>/dev/null || true)"
if [ "$have" != "$want" ]; then
  echo "== installing @redocly/cli $want (tests/openapi/node_modules)"
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
fi

# No usage reports and no update checks: the lint is offline apart from the install above.
export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true
echo "== openapi lint (redocly $want): docs/openapi.yaml"
cd "$root"
"$here/node_modules/.bin/redocly" lint docs/openapi.yaml --config "$here/redocly.yaml" \
  --format=codeframe
