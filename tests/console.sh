#!/usr/bin/env bash
# The web console in a real browser: headless Chromium (Debian's chromium and
# chromium-driver, installed here when missing) driven over WebDriver by
# Python selenium (installed into target/console-venv from PyPI), against a
# real `janus` with auth off, then one with auth on. Screenshots of every page
# go to target/console-screenshots/. Exits non-zero on any failure; a browser
# that cannot be installed is a failure, not a skip.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

missing=()
command -v chromium >/dev/null || missing+=(chromium)
command -v chromedriver >/dev/null || missing+=(chromium-driver)
command -v dig >/dev/null || missing+=(dnsutils)
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
cargo build -q --locked -p janus-server
JANUS="${CARGO_TARGET_DIR:-$ROOT/target}/debug/janus"

VENV="$ROOT/target/console-venv"
if ! "$VENV/bin/python" -c "import selenium" 2>/dev/null \
  || ! cmp -s tests/console/requirements.txt "$VENV/requirements.txt"; then
  echo "== installing selenium into $VENV"
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check -r tests/console/requirements.txt
  cp tests/console/requirements.txt "$VENV/requirements.txt"
fi
SHOTS="${CARGO_TARGET_DIR:-$ROOT/target}/console-screenshots"
rm -rf "$SHOTS"

WORK=$(mktemp -d)
PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$WORK"' EXIT

start() { # name, then extra environment as NAME=value
  local name=$1; shift
  local log="$WORK/$name.log"
  # Health checks may probe loopback only: a stray address is refused, not probed.
  env JANUS_HEALTH__PROBE_ALLOW=127.0.0.0/8 JANUS_GRPC__ADDR=127.0.0.1:0 "$@" \
    "$JANUS" --http-addr 127.0.0.1:0 --dns-addr 127.0.0.1:0 \
    --data-dir "$WORK/$name" --log info >"$log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 1 100); do
    grep -q "dns serving" "$log" && grep -q "janus serving" "$log" && break
    sleep 0.1
  done
  HTTP=$(sed -n 's/.*janus serving http_addr=\([0-9.:]*\).*/\1/p' "$log" | head -1)
  DNS=$(sed -n 's/.*dns serving addr=\([0-9.:]*\).*/\1/p' "$log" | head -1)
  [ -n "$HTTP" ] && [ -n "$DNS" ] || { echo "janus did not start:"; cat "$log"; exit 1; }
}

status=0
start open JANUS_AUTH__ENABLED=false
(cd tests/console && "$VENV/bin/python" console_test.py open "$HTTP" "$DNS" "$SHOTS/open") || status=1

start auth JANUS_AUTH__ENABLED=true "JANUS_AUTH__BOOTSTRAP_TOKEN_FILE=$WORK/bootstrap-token"
for _ in $(seq 1 50); do [ -s "$WORK/bootstrap-token" ] && break; sleep 0.1; done
(cd tests/console && "$VENV/bin/python" console_test.py auth "$HTTP" "$(cat "$WORK/bootstrap-token")" "$SHOTS/auth") || status=1

echo "console: screenshots in $SHOTS"
[ $status -eq 0 ] && echo "console: all passed" || echo "console: FAILED"
exit $status
