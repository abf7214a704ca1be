#!/usr/bin/env bash
# The fault-injection suite: a real 3-node cluster in Docker (docker-compose.yml)
# under client load, with partitions, kills, pauses, rolling and full restarts
# (tests/janus-fault). Skips, saying why, where Docker cannot run containers.
#
# Usage: bash tests/fault.sh [--update-docs] [scenario,...]
#   --update-docs  write the run's numbers into docs/fault-tests.md
set -euo pipefail
cd "$(dirname "$0")/.."

UPDATE_DOCS=""
SCENARIOS=""
for arg in "$@"; do
  case $arg in
    --update-docs) UPDATE_DOCS=1 ;;
    *) SCENARIOS=$arg ;;
  esac
done

if ! command -v docker >/dev/null 2>&1; then
  echo "== fault suite SKIPPED: no docker command on this machine"
  exit 0
fi
if ! docker info >/dev/null 2>&1; then
  echo "== fault suite SKIPPED: the Docker engine is not reachable (docker info failed)"
  exit 0
fi
# Compose v1 (docker-compose) or the v2 plugin (docker compose), whichever is here.
if command -v docker-compose >/dev/null 2>&1; then
  COMPOSE="docker-compose"
elif docker compose version >/dev/null 2>&1; then
  COMPOSE="docker compose"
else
  echo "== fault suite SKIPPED: neither docker-compose nor the docker compose plugin is installed"
  exit 0
fi

# The compose file names its containers janus-1..3: a cluster left from a
# walk-through (another compose project) would be in the way.
for name in janus-1 janus-2 janus-3; do
  if docker inspect "$name" >/dev/null 2>&1; then
    echo "== fault suite: removing the container $name left by an earlier run"
    docker rm -f "$name" >/dev/null
  fi
done

echo "== fault suite: building the static binary and the image (no registry needed: FROM scratch)"
bash scripts/build-static.sh
docker build -q -t janus:local . >/dev/null
echo "== fault suite: building the driver"
cargo build --release --locked -p janus-fault

mkdir -p target
REPORT=target/fault-report.md
# docker-compose.yml, plus what only the suite sets (health checks probe loopback only).
ARGS=(--project janus-fault --compose-file docker-compose.yml --compose-file tests/janus-fault/compose.fault.yml
  --compose-command "$COMPOSE" --report "$REPORT")
if [ -n "$SCENARIOS" ]; then ARGS+=(--scenarios "$SCENARIOS"); fi
status=0
"${CARGO_TARGET_DIR:-target}/release/janus-fault" "${ARGS[@]}" || status=$?

if [ -n "$UPDATE_DOCS" ] && [ -f "$REPORT" ]; then
  # Keep the hand-written part of the doc, replace everything from "## Last run" on.
  sed -n '/^## Last run/q;p' docs/fault-tests.md >target/fault-doc.md
  cat "$REPORT" >>target/fault-doc.md
  mv target/fault-doc.md docs/fault-tests.md
  echo "== wrote the numbers into docs/fault-tests.md"
fi
exit $status
