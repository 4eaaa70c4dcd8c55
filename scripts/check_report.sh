#!/usr/bin/env bash
# Train 40 epochs with the report on, check report.html references >= 10 SVG figures that exist,
# and render it in headless Chromium (Debian's `chromium`) to a screenshot.
#
# Usage: scripts/check_report.sh [OUT_DIR]   (default: runs/check-report; overwritten)
# Needs: a release build (cargo builds it), `chromium` on PATH. Look at OUT_DIR/screenshot.png.
set -euo pipefail
out="${1:-runs/check-report}"
cargo run --release --example grok -- --epochs 40 --out "$out" --force
html="$out/report.html"
test -s "$html" || { echo "FAIL: $html missing" >&2; exit 1; }
mapfile -t figures < <(grep -o 'src="figures/[^"]*"' "$html" | sed 's/^src="//; s/"$//')
echo "report.html references ${#figures[@]} figures"
[ "${#figures[@]}" -ge 10 ] || { echo "FAIL: fewer than 10 figures" >&2; exit 1; }
for f in "${figures[@]}"; do
  test -s "$out/$f" || { echo "FAIL: $out/$f missing or empty" >&2; exit 1; }
  head -c 4 "$out/$f" | grep -q '<svg' || { echo "FAIL: $out/$f is not SVG" >&2; exit 1; }
done
test -s "$out/analysis.json" || { echo "FAIL: analysis.json missing" >&2; exit 1; }
browser="$(command -v chromium || command -v chromium-browser || true)"
[ -n "$browser" ] || { echo "FAIL: chromium not found (apt-get install -y chromium)" >&2; exit 1; }
profile="$(mktemp -d)"
trap 'rm -rf "$profile"' EXIT
shot="$(realpath "$out")/screenshot.png"
rm -f "$shot"
timeout 120 "$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$profile" --hide-scrollbars --window-size=1500,9000 \
  --screenshot="$shot" "file://$(realpath "$html")" 2>/dev/null || true
test -s "$shot" || { echo "FAIL: no screenshot" >&2; exit 1; }
echo "OK: ${#figures[@]} figures; screenshot $shot"
