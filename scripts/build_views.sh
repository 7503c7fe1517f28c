#!/usr/bin/env bash
# Rebuild the chart library bundled into the package (src/telemetry_mcp/views/static/) from npm.
# The version is pinned in .ci/views/package.json and its lock file; the views inline these files,
# so nothing is fetched from a CDN at run time. Run at release time, then commit the result.
set -euo pipefail
cd "$(dirname "$0")/.."

npm ci --prefix .ci/views --no-audit --no-fund --loglevel=error
src=.ci/views/node_modules/uplot
out=src/telemetry_mcp/views/static
version=$(node -p "require('./$src/package.json').version" 2>/dev/null || sed -n 's/.*"version": "\(.*\)".*/\1/p' "$src/package.json")
cp "$src/dist/uPlot.iife.min.js" "$out/uPlot.iife.min.js"
cp "$src/dist/uPlot.min.css" "$out/uPlot.min.css"
cp "$src/LICENSE" "$out/uPlot.LICENSE"
echo "uplot $version" > "$out/VERSION"
ls -l "$out"/uPlot.* "$out/VERSION"
