#!/usr/bin/env bash
# Make sure a Chromium the report's browser test can drive (tests/e2e/test_report_browser.py,
# Playwright pointed at the executable: never `playwright install`, which downloads its own
# build). SEGMENTS_CHROMIUM names one; else chromium or chromium-browser on PATH. On
# Debian-like machines where we are root, install Debian's package; anywhere else, say how,
# and fail.
set -euo pipefail
if [ -n "${SEGMENTS_CHROMIUM:-}" ]; then
  if [ -x "$SEGMENTS_CHROMIUM" ]; then exit 0; fi
  echo "SEGMENTS_CHROMIUM=$SEGMENTS_CHROMIUM is not an executable" >&2
  exit 1
fi
for name in chromium chromium-browser; do
  if command -v "$name" >/dev/null; then exit 0; fi
done
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "Chromium not found: installing Debian's chromium with apt-get" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
  exit 0
fi
cat >&2 <<'MSG'
Chromium was not found (the report's browser test drives it headless). Install it, e.g.
  Debian/Ubuntu:  sudo apt-get install chromium
  Fedora/RHEL:    sudo dnf install chromium
  macOS:          brew install --cask chromium
or set SEGMENTS_CHROMIUM to a Chromium or Chrome executable.
MSG
exit 1
