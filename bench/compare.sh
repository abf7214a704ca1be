#!/usr/bin/env bash
# Runs the identical Nacos-v1 scenarios against Janus and rnacos 0.8.8 on this
# machine with the same load generator (janus-bench), then Janus-only scenarios
# (watch latency, capacity, DNS visibility), then dnsperf against Janus and
# Knot DNS serving identical records, and writes docs/benchmarks.md.
#
# Each server runs pinned to CPU 0 and the load generator to CPU 1 (when the
# machine has two or more), and each scenario gets a freshly started server.
#
# Usage: bench/compare.sh [--quick] [--only SECTION,...]
#   --quick: 3 s per scenario, 100k capacity
#   --only:  run some sections (single, auth, ap, grpc, cp, watch, blackhole, capacity, join, dns, failover, watchers, unpinned, agent);
#            docs/benchmarks.md then holds only those
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
TOOLS="$ROOT/target/tools"
RNACOS_ROOT="$TOOLS/rnacos-0.8.8"
RNACOS="$RNACOS_ROOT/bin/rnacos"
RESULTS="$ROOT/bench/results"
JANUS_PORT=18848
JANUS_DNS_PORT=18600
KNOT_PORT=18601
RNACOS_PORT=18849
DURATION=10s
CONNS=64
CAPACITY=1000000
PUSH_SUBSCRIBERS=1000
PUSH_WRITES=100
ONLY=""
while [ $# -gt 0 ]; do
  case $1 in
    --quick) DURATION=3s; CAPACITY=100000; PUSH_WRITES=50 ;;
    --only) ONLY=",$2,"; shift ;;
    *) echo "usage: bench/compare.sh [--quick] [--only single,auth,ap,grpc,cp,watch,blackhole,capacity,join,dns,failover,watchers,unpinned,agent]" >&2; exit 64 ;;
  esac
  shift
done
want() { [ -z "$ONLY" ] || [[ $ONLY == *",$1,"* ]]; }

if [ "$(nproc)" -ge 2 ]; then SERVER_CPU=(taskset -c 0); BENCH_CPU=(taskset -c 1); else SERVER_CPU=(); BENCH_CPU=(); fi

# Debian packages the comparisons need (dig for checks, dnsperf, Knot, etcd 3.4 and its etcdctl).
missing=()
command -v dnsperf >/dev/null || missing+=(dnsperf)
command -v knotd >/dev/null || missing+=(knot)
command -v dig >/dev/null || missing+=(dnsutils)
command -v etcd >/dev/null || missing+=(etcd-server)
command -v etcdctl >/dev/null || missing+=(etcd-client)
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if { want single || want ap || want grpc || want unpinned; } && [ ! -x "$RNACOS" ]; then
  echo "== installing rnacos 0.8.8 into $RNACOS_ROOT"
  cargo install rnacos --version 0.8.8 --locked --root "$RNACOS_ROOT"
fi
echo "== building janus and janus-bench (release)"
cargo build --release --locked -p janus-server -p janus-bench
JANUS="${CARGO_TARGET_DIR:-$ROOT/target}/release/janus"
BENCH="${CARGO_TARGET_DIR:-$ROOT/target}/release/janus-bench"

rm -rf "$RESULTS"
mkdir -p "$RESULTS"
WORK=$(mktemp -d)
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  if [ ${#CLUSTER_PIDS[@]} -gt 0 ]; then kill "${CLUSTER_PIDS[@]}" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

wait_for() { # url
  for _ in $(seq 1 100); do
    if curl -fsS -o /dev/null "$1" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "server at $1 did not come up" >&2
  return 1
}

start_janus() { # extra env assignments...
  rm -rf "$WORK/janus-data"
  env "$@" "${SERVER_CPU[@]}" "$JANUS" --http-addr "127.0.0.1:$JANUS_PORT" --dns-addr "127.0.0.1:$JANUS_DNS_PORT" \
    --data-dir "$WORK/janus-data" --log warn >"$WORK/janus.log" 2>&1 &
  SERVER_PID=$!
  wait_for "http://127.0.0.1:$JANUS_PORT/ready"
}

start_rnacos() {
  rm -rf "$WORK/rnacos" && mkdir -p "$WORK/rnacos"
  (cd "$WORK/rnacos" && env RNACOS_HTTP_PORT=$RNACOS_PORT RNACOS_GRPC_PORT=$((RNACOS_PORT + 1000)) \
    RNACOS_HTTP_CONSOLE_PORT=$((RNACOS_PORT + 2000)) RNACOS_SDK_HOST=127.0.0.1 RNACOS_CONSOLE_HOST=127.0.0.1 \
    RNACOS_DATA_DIR="$WORK/rnacos/data" "${SERVER_CPU[@]}" "$RNACOS" >"$WORK/rnacos.log" 2>&1) &
  SERVER_PID=$!
  wait_for "http://127.0.0.1:$RNACOS_PORT/nacos/v1/ns/instance/list?serviceName=probe"
}

CLUSTER_PIDS=()
stop_server() {
  kill "$SERVER_PID" "${CLUSTER_PIDS[@]}" 2>/dev/null || true
  wait "$SERVER_PID" "${CLUSTER_PIDS[@]}" 2>/dev/null || true
  CLUSTER_PIDS=()
  pkill -f "$RNACOS_ROOT/bin/rnacos" 2>/dev/null || true
  pkill -f "knotd -c $WORK/knot" 2>/dev/null || true
  SERVER_PID=""
  sleep 0.5
}

# Three janus processes forming one cluster on loopback (all pinned to the server CPU).
CLUSTER_SECRET=janus-bench-cluster-secret
JANUS_CLUSTER_HTTP=(18851 18852 18853)
JANUS_CLUSTER_TARGETS="http://127.0.0.1:18851,http://127.0.0.1:18852,http://127.0.0.1:18853"
start_janus_cluster() { # extra env assignments...
  local members="1@127.0.0.1:17851,2@127.0.0.1:17852,3@127.0.0.1:17853"
  for i in 1 2 3; do
    rm -rf "$WORK/cluster-$i"
    env "$@" JANUS_NODE__ID=$i JANUS_NODE__DATA_DIR="$WORK/cluster-$i" JANUS_HTTP__ADDR="127.0.0.1:${JANUS_CLUSTER_HTTP[$((i - 1))]}" \
      JANUS_DNS__ENABLED=false JANUS_CLUSTER__MEMBERS="$members" JANUS_CLUSTER__ADDR="127.0.0.1:1785$i" \
      JANUS_CLUSTER__SECRET="$CLUSTER_SECRET" JANUS_AUTH__ENABLED=false JANUS_LOG__FILTER=warn "${SERVER_CPU[@]}" "$JANUS" >"$WORK/cluster-$i.log" 2>&1 &
    CLUSTER_PIDS+=($!)
  done
  for port in "${JANUS_CLUSTER_HTTP[@]}"; do wait_for "http://127.0.0.1:$port/ready"; done
}

# Three rnacos 0.8.8 processes forming one cluster (node 1 initialises the
# Raft group, 2 and 3 join it; ephemeral instances replicate by its
# Distro-like protocol). Checked before use: the Raft membership lists three
# nodes and an instance registered through node 1 is listed by node 3.
RNACOS_CLUSTER_HTTP=(18861 18862 18863)
RNACOS_CLUSTER_TARGETS="http://127.0.0.1:18861,http://127.0.0.1:18862,http://127.0.0.1:18863"
rnacos_members() { curl -fsS "http://127.0.0.1:18861/nacos/v1/raft/metrics" 2>/dev/null | grep -o '"members":\[[^]]*\]' || true; }
start_rnacos_node() { # id
  local i=$1 http=${RNACOS_CLUSTER_HTTP[$(($1 - 1))]} init=false join=127.0.0.1:19861
  if [ "$i" = 1 ]; then init=true; join=""; fi
  rm -rf "$WORK/rnacos-$i" && mkdir -p "$WORK/rnacos-$i"
  (cd "$WORK/rnacos-$i" && exec env RNACOS_HTTP_PORT=$http RNACOS_GRPC_PORT=$((http + 1000)) \
    RNACOS_HTTP_CONSOLE_PORT=$((http + 2000)) RNACOS_SDK_HOST=127.0.0.1 RNACOS_CONSOLE_HOST=127.0.0.1 \
    RNACOS_RAFT_NODE_ID=$i RNACOS_RAFT_NODE_ADDR=127.0.0.1:$((http + 1000)) RNACOS_RAFT_AUTO_INIT=$init \
    RNACOS_RAFT_JOIN_ADDR=$join RNACOS_DATA_DIR="$WORK/rnacos-$i/data" "${SERVER_CPU[@]}" "$RNACOS" \
    >"$WORK/rnacos-$i.log" 2>&1) &
  RNACOS_PID=$!
  wait_for "http://127.0.0.1:$http/nacos/v1/ns/instance/list?serviceName=probe"
}
# rnacos's Raft join sometimes never takes; its cluster runs are then left out
# of the report (a dash in the table) and the script says so, rather than stop.
RNACOS_CLUSTER_FAILURES=0
rnacos_cluster_failed() {
  RNACOS_CLUSTER_FAILURES=$((RNACOS_CLUSTER_FAILURES + 1))
  echo "rnacos cluster did not form; this run of it is left out"
}
start_rnacos_cluster() {
  start_rnacos_node 1
  CLUSTER_PIDS+=("$RNACOS_PID")
  for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:18861/nacos/v1/raft/metrics" 2>/dev/null | grep -q '"state":"Leader"' && break
    sleep 0.1
  done
  # Nodes 2 and 3 join node 1's Raft group once, at start: a join that did not
  # take (node 1 still busy) is retried by starting the node again.
  for i in 2 3; do
    local joined=""
    for _attempt in 1 2 3 4 5; do
      start_rnacos_node "$i"
      for _ in $(seq 1 50); do
        if rnacos_members | grep -q "$i"; then joined=1; break; fi
        sleep 0.2
      done
      if [ -n "$joined" ]; then break; fi
      kill "$RNACOS_PID" 2>/dev/null || true; wait "$RNACOS_PID" 2>/dev/null || true
    done
    CLUSTER_PIDS+=("$RNACOS_PID")
    if [ -z "$joined" ]; then echo "rnacos node $i did not join node 1's Raft group" >&2; return 1; fi
  done
  curl -fsS -o /dev/null -XPOST "http://127.0.0.1:18861/nacos/v1/ns/instance?serviceName=cluster-probe&ip=10.250.0.1&port=1" || true
  for _ in $(seq 1 100); do
    if curl -fsS "http://127.0.0.1:18863/nacos/v1/ns/instance/list?serviceName=cluster-probe" | grep -q 10.250.0.1; then
      echo "rnacos cluster formed (Raft members $(rnacos_members); node 3 lists node 1's registration)"
      return 0
    fi
    sleep 0.1
  done
  echo "the rnacos cluster did not form: node 3 never listed a registration made through node 1" >&2
  return 1
}

# start_rnacos_cluster, and once more from scratch if it did not form.
start_rnacos_cluster_twice() {
  start_rnacos_cluster || { stop_server; echo "rnacos cluster did not form; trying once more"; start_rnacos_cluster; }
}

# Three etcd 3.4 members on loopback, with etcd's defaults (fsync on every commit, as Janus).
ETCD_TARGETS="http://127.0.0.1:12371,http://127.0.0.1:12372,http://127.0.0.1:12373"
start_etcd_cluster() {
  local initial="e1=http://127.0.0.1:12381,e2=http://127.0.0.1:12382,e3=http://127.0.0.1:12383"
  for i in 1 2 3; do
    rm -rf "$WORK/etcd-$i"
    "${SERVER_CPU[@]}" etcd --name "e$i" --data-dir "$WORK/etcd-$i" \
      --listen-client-urls "http://127.0.0.1:1237$i" --advertise-client-urls "http://127.0.0.1:1237$i" \
      --listen-peer-urls "http://127.0.0.1:1238$i" --initial-advertise-peer-urls "http://127.0.0.1:1238$i" \
      --initial-cluster "$initial" --initial-cluster-state new --initial-cluster-token janus-bench \
      --logger zap --log-level warn >"$WORK/etcd-$i.log" 2>&1 &
    CLUSTER_PIDS+=($!)
  done
  for _ in $(seq 1 100); do
    if ETCDCTL_API=3 etcdctl --endpoints="${ETCD_TARGETS//http:\/\//}" endpoint health >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  echo "the etcd cluster did not become healthy" >&2
  return 1
}

COMMANDS=()
SECTION="Janus against rnacos 0.8.8 (Nacos v1 API, same load generator)"
RESULT_FILES=()
bench() { # label target scenario instances [extra args...]; a bare port means http://127.0.0.1:port
  local label=$1 target=$2 scenario=$3 instances=$4
  shift 4
  case $target in http*) ;; *) target="http://127.0.0.1:$target" ;; esac
  local out="$RESULTS/$(printf '%02d' ${#RESULT_FILES[@]})-${label//[^a-z0-9]/_}-$scenario-$instances.json"
  local cmd=("$BENCH" run --target "$target" --label "$label" --scenario "$scenario"
    --instances "$instances" --connections "$CONNS" --duration "$DURATION" --json "$out" "$@")
  "${BENCH_CPU[@]}" "${cmd[@]}" --section "$SECTION"
  RESULT_FILES+=("$out")
  local line="${cmd[*]}"
  line="${line//$ROOT\//}"
  [ -z "${AUTH_TOKEN:-}" ] || line="${line//$AUTH_TOKEN/<bootstrap token>}"
  line="${line//--pid $SERVER_PID/--pid <janus pid>}"
  COMMANDS+=("${line//--pid ${RNACOS_PID:-none}/--pid <rnacos pid>}")
}

# Sections in rounds: single runs of a cluster on two cores swing widely, so
# these sections run 3 rounds with the servers' order alternated. Round 1 fills
# the section's table (bench); every round's result also goes to DIR, and
# rounds_table prints the medians.
rounds_run() { # dir round label target scenario instances [bench args...]
  local dir=$1 round=$2 label=$3 target=$4 scenario=$5 instances=$6
  shift 6
  local file="$dir/$label-$scenario-$CONNS-$round.json"
  if [ "$round" -eq 1 ]; then
    bench "$label" "$target" "$scenario" "$instances" "$@"
    cp "${RESULT_FILES[-1]}" "$file"
  else
    "${BENCH_CPU[@]}" "$BENCH" run --target "$target" --label "$label" --scenario "$scenario" \
      --instances "$instances" --connections "$CONNS" --duration "$DURATION" --json "$file" --section rounds "$@" |
      tail -n 1
  fi
}
rounds_table() { # dir ours theirs: a markdown table of the medians of DIR's rounds
  python3 - "$@" <<'PYEOF'
import json, pathlib, statistics, sys
d, ours, theirs = pathlib.Path(sys.argv[1]), sys.argv[2], sys.argv[3]
runs = {}
for f in sorted(d.glob("*.json")):
    r = json.loads(f.read_text())
    runs.setdefault((r["scenario"], r["connections"]), {}).setdefault(r["label"], []).append(r)
def cell(rs, field, fmt):
    if not rs:
        return "–", None
    m = statistics.median(r[field] for r in rs)
    return fmt.format(m) + " (" + "/".join(fmt.format(r[field]) for r in rs) + ")", m
print(f"| scenario | conns | {ours} req/s | {theirs} req/s | {ours} / {theirs} | {ours} p50 ms | {theirs} p50 ms | {ours} p99 ms | {theirs} p99 ms |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for (scenario, conns), by in sorted(runs.items()):
    a, b = by.get(ours, []), by.get(theirs, [])
    at, am = cell(a, "throughput", "{:.0f}")
    bt, bm = cell(b, "throughput", "{:.0f}")
    ratio = f"**{am/bm:.2f}×**" if am and bm else "–"
    print(f"| {scenario.lower()} | {conns} | {at} | {bt} | {ratio} | {cell(a, 'p50_ms', '{:.2f}')[0]} | "
          f"{cell(b, 'p50_ms', '{:.2f}')[0]} | {cell(a, 'p99_ms', '{:.2f}')[0]} | {cell(b, 'p99_ms', '{:.2f}')[0]} |")
PYEOF
}

SCENARIOS=("register 0" "heartbeat 10000" "list 100" "list 1000" "mixed 100")
want single || SCENARIOS=()
for entry in "${SCENARIOS[@]}"; do
  read -r scenario instances <<<"$entry"
  echo "== $scenario ($instances): janus"
  start_janus
  bench janus "$JANUS_PORT" "$scenario" "$instances"
  stop_server
  echo "== $scenario ($instances): rnacos 0.8.8"
  start_rnacos
  bench rnacos "$RNACOS_PORT" "$scenario" "$instances"
  stop_server
done

SECTION="AP cluster: a 3-node Janus cluster against a 3-node rnacos 0.8.8 cluster (Nacos v1 API, requests spread over the nodes)"
AP_SCENARIOS=("register 0" "heartbeat 10000" "list 100")
want ap || AP_SCENARIOS=()
AP_ROUNDS="$RESULTS/ap-rounds"
mkdir -p "$AP_ROUNDS"
for round in 1 2 3; do
  for entry in "${AP_SCENARIOS[@]}"; do
    read -r scenario instances <<<"$entry"
    order=(janus rnacos)
    [ $((round % 2)) -eq 0 ] && order=(rnacos janus)
    for server in "${order[@]}"; do
      echo "== round $round: $scenario ($instances): $server 3-node cluster"
      if [ "$server" = janus ]; then
        start_janus_cluster
        rounds_run "$AP_ROUNDS" "$round" janus "$JANUS_CLUSTER_TARGETS" "$scenario" "$instances"
      elif start_rnacos_cluster_twice; then
        rounds_run "$AP_ROUNDS" "$round" rnacos "$RNACOS_CLUSTER_TARGETS" "$scenario" "$instances"
      else
        rnacos_cluster_failed
      fi
      stop_server
    done
  done
done
if want ap; then
COMMANDS+=("ap rounds 2 and 3: the same janus-bench runs as round 1 above, the servers' order alternated")
{
  echo
  echo "## AP cluster, 3 rounds: medians"
  echo
  echo "The AP cluster scenarios above in 3 rounds (the table above is round 1), the servers' order alternated from"
  echo "round to round, a fresh cluster each run; a cell is the median of the rounds (the rounds in brackets)."
  echo
  rounds_table "$AP_ROUNDS" janus rnacos
} >"$WORK/ap-rounds.md"
fi

SECTION="Auth on against auth off: the same Janus binary, one node, the Nacos v1 API; with auth on every request carries an accessToken (a global admin's token) that the node checks"
AUTH_SCENARIOS=("register 0" "heartbeat 10000" "list 100")
want auth || AUTH_SCENARIOS=()
for entry in "${AUTH_SCENARIOS[@]}"; do
  read -r scenario instances <<<"$entry"
  echo "== $scenario ($instances): janus, auth on"
  start_janus JANUS_AUTH__ENABLED=true
  for _ in $(seq 1 100); do [ -s "$WORK/janus-data/bootstrap-token" ] && break; sleep 0.1; done
  AUTH_TOKEN=$(cat "$WORK/janus-data/bootstrap-token")
  bench janus "$JANUS_PORT" "$scenario" "$instances" --token "$AUTH_TOKEN"
  stop_server
  echo "== $scenario ($instances): janus, auth off"
  start_janus
  bench janus-auth-off "$JANUS_PORT" "$scenario" "$instances"
  stop_server
done

SECTION="Nacos gRPC: Janus against rnacos 0.8.8 (the gRPC port, one connection per worker, same load generator)"
GRPC_SCENARIOS=("register 0" "list 100")
want grpc || GRPC_SCENARIOS=()
ulimit -n 20000 2>/dev/null || true
for entry in "${GRPC_SCENARIOS[@]}"; do
  read -r scenario instances <<<"$entry"
  echo "== gRPC $scenario ($instances): janus"
  start_janus
  bench janus "$JANUS_PORT" "$scenario" "$instances" --api nacos-grpc
  stop_server
  echo "== gRPC $scenario ($instances): rnacos 0.8.8"
  start_rnacos
  bench rnacos "$RNACOS_PORT" "$scenario" "$instances" --api nacos-grpc
  stop_server
done

SECTION="Nacos gRPC, AP cluster: a 3-node Janus cluster against a 3-node rnacos 0.8.8 cluster (connections spread over the nodes)"
want grpc || GRPC_SCENARIOS=()
for entry in "${GRPC_SCENARIOS[@]}"; do
  read -r scenario instances <<<"$entry"
  echo "== gRPC $scenario ($instances): janus 3-node cluster"
  start_janus_cluster
  bench janus "$JANUS_CLUSTER_TARGETS" "$scenario" "$instances" --api nacos-grpc
  stop_server
  echo "== gRPC $scenario ($instances): rnacos 3-node cluster"
  if start_rnacos_cluster_twice; then
    bench rnacos "$RNACOS_CLUSTER_TARGETS" "$scenario" "$instances" --api nacos-grpc
  else
    rnacos_cluster_failed
  fi
  stop_server
done

if want grpc; then
SECTION="Nacos gRPC pushes and memory"
echo "== gRPC push latency, $PUSH_SUBSCRIBERS subscribers: janus, then rnacos 0.8.8"
start_janus
bench janus "$JANUS_PORT" push 0 --api nacos-grpc --watchers "$PUSH_SUBSCRIBERS" --writes "$PUSH_WRITES"
stop_server
start_rnacos
bench rnacos "$RNACOS_PORT" push 0 --api nacos-grpc --watchers "$PUSH_SUBSCRIBERS" --writes "$PUSH_WRITES"
stop_server
echo "== gRPC push latency across nodes, $PUSH_SUBSCRIBERS subscribers: janus and rnacos 3-node clusters"
start_janus_cluster
bench janus "$JANUS_CLUSTER_TARGETS" push 0 --api nacos-grpc --watchers "$PUSH_SUBSCRIBERS" --writes "$PUSH_WRITES" --prefix cluster
stop_server
if start_rnacos_cluster_twice; then
  bench rnacos "$RNACOS_CLUSTER_TARGETS" push 0 --api nacos-grpc --watchers "$PUSH_SUBSCRIBERS" --writes "$PUSH_WRITES" --prefix cluster
else
  rnacos_cluster_failed
fi
stop_server
echo "== gRPC capacity: 100000 connection-bound instances over 1000 connections"
start_janus
CONNS=1000 bench janus "$JANUS_PORT" capacity 100000 --api nacos-grpc --pid "$SERVER_PID"
stop_server
start_rnacos
RNACOS_PID=$(pgrep -f "$RNACOS_ROOT/bin/rnacos" | head -1)
CONNS=1000 bench rnacos "$RNACOS_PORT" capacity 100000 --api nacos-grpc --pid "$RNACOS_PID"
stop_server
fi

SECTION="CP writes: a 3-node Janus cluster against a 3-node etcd 3.4 cluster"
CP_CLIENTS=(1 16 64)
want cp || CP_CLIENTS=()
CP_ROUNDS="$RESULTS/cp-rounds"
mkdir -p "$CP_ROUNDS"
ETCD_VERSION=$(etcd --version 2>/dev/null | awk '/etcd Version/ {print $3}')
for round in 1 2 3; do
  for clients in "${CP_CLIENTS[@]}"; do
    order=(janus etcd)
    [ $((round % 2)) -eq 0 ] && order=(etcd janus)
    for server in "${order[@]}"; do
      if [ "$server" = janus ]; then
        echo "== round $round: cp register, $clients clients: janus 3-node cluster (persistent instances, native API)"
        start_janus_cluster JANUS_HEALTH__ENABLED=false
        CONNS=$clients rounds_run "$CP_ROUNDS" "$round" janus "$JANUS_CLUSTER_TARGETS" register 0 \
          --api native --namespace bench-cp --create-namespace cp
      else
        echo "== round $round: put, $clients clients: etcd $ETCD_VERSION 3-node cluster (gRPC KV.Put)"
        start_etcd_cluster
        CONNS=$clients rounds_run "$CP_ROUNDS" "$round" etcd "$ETCD_TARGETS" register 0 --api etcd --namespace bench-cp
      fi
      stop_server
    done
  done
done
if want cp; then
COMMANDS+=("cp rounds 2 and 3: the same janus-bench runs as round 1 above, the servers' order alternated")
{
  echo
  echo "## CP writes, 3 rounds: medians"
  echo
  echo "The cp scenarios above in 3 rounds (the table above is round 1), Janus and etcd alternated from round to"
  echo "round, a fresh cluster each run; a cell is the median of the rounds (the rounds in brackets)."
  echo
  rounds_table "$CP_ROUNDS" janus etcd
} >"$WORK/cp-rounds.md"
fi
SECTION="Janus only"

if want watch; then
echo "== watch latency: janus (native API, blocking queries)"
start_janus
bench janus "$JANUS_PORT" watch 1 --api native --watchers 16 --writes 500
stop_server
fi

if want watch; then
echo "== cross-node watch latency: janus 3-node cluster (written through node 1, watched on nodes 2 and 3)"
start_janus_cluster
bench janus "$JANUS_CLUSTER_TARGETS" watch 1 --api native --watchers 16 --writes 500 --prefix cluster
stop_server
fi

if want blackhole; then
echo "== replication to a healthy peer with another peer blackholed (SIGSTOP: it accepts connections, answers nothing)"
start_janus_cluster
TWO="http://127.0.0.1:${JANUS_CLUSTER_HTTP[0]},http://127.0.0.1:${JANUS_CLUSTER_HTTP[1]}"
bench "janus, baseline for the blackholed run" "$TWO" watch 1 --api native --watchers 16 --writes 500 --prefix healthy
kill -STOP "${CLUSTER_PIDS[2]}"
sleep 5 # past the failure detector (3 failed probes, 1 s apart), so no write is forwarded to it
bench "janus, node 3 blackholed" "$TWO" watch 1 --api native --watchers 16 --writes 500 --prefix blackholed
kill -CONT "${CLUSTER_PIDS[2]}"
stop_server
fi

if want capacity; then
echo "== capacity: janus holding $CAPACITY instances (leases long enough not to expire during the run)"
start_janus JANUS_LEASE__UNHEALTHY_AFTER_MS=3600000 JANUS_LEASE__DELETE_AFTER_MS=7200000
bench janus "$JANUS_PORT" capacity "$CAPACITY" --pid "$SERVER_PID"
stop_server
fi

DNS_MD="$WORK/dns.md"
: >"$DNS_MD"
# Sections written before this point, in the appendix too.
for rounds in ap-rounds cp-rounds; do
  [ ! -f "$WORK/$rounds.md" ] || cat "$WORK/$rounds.md" >>"$DNS_MD"
done
if want dns; then
echo "== DNS: janus and Knot DNS serving identical records, measured with dnsperf"
LONG_LEASES=(JANUS_LEASE__UNHEALTHY_AFTER_MS=3600000 JANUS_LEASE__DELETE_AFTER_MS=7200000)
register() { # service ip
  curl -fsS -o /dev/null -XPOST "http://127.0.0.1:$JANUS_PORT/nacos/v1/ns/instance?serviceName=$1&ip=$2&port=8080"
}
hex() { printf '%02x%02x%02x%02x' ${1//./ }; }
ZONE="$WORK/knot/janus.zone"
mkdir -p "$WORK/knot/db" "$WORK/knot/run"
{
  echo '$ORIGIN janus.'
  echo '$TTL 0'
  echo '@ SOA ns.janus. hostmaster.janus. 1 3600 600 86400 0'
  echo '@ NS ns.janus.'
  echo 'ns A 127.0.0.1'
} >"$ZONE"
add() { # service count: registers in janus and writes the same SRV + glue into the zone
  for i in $(seq 1 "$2"); do
    ip="10.$((100 + $2 % 100)).$((i / 256)).$((i % 256))"
    echo "$1 $ip"
    printf '_%s._tcp SRV 1 1 8080 %s.addr\n%s.addr A %s\n' "$1" "$(hex "$ip")" "$(hex "$ip")" "$ip" >>"$ZONE"
  done
}
start_janus "${LONG_LEASES[@]}"
while read -r svc ip; do register "$svc" "$ip"; done < <(add srv3 3; add srv100 100)
register one 10.99.0.1
echo 'one.svc A 10.99.0.1' >>"$ZONE"
bench janus "$JANUS_PORT" dns-visibility 0 --dns "127.0.0.1:$JANUS_DNS_PORT" --writes 1000
printf '_srv3._tcp.janus. SRV\n' >"$WORK/q-srv3"
printf '_srv100._tcp.janus. SRV\n' >"$WORK/q-srv100"
printf 'one.svc.janus. A\n' >"$WORK/q-a1"
DNSPERF=(dnsperf -s 127.0.0.1 -l "${DURATION%s}" -c 8 -Q 1000000)
declare -A QPS
dnsperf_run() { # label port mix
  local qps
  qps=$("${BENCH_CPU[@]}" "${DNSPERF[@]}" -p "$2" -d "$WORK/q-$3" 2>&1 | awk '/Queries per second/ {print $4}')
  QPS[$1-$3]=${qps%.*}
  echo "$1 $3: ${QPS[$1-$3]} queries/s"
}
for mix in srv3 srv100 a1; do dnsperf_run janus "$JANUS_DNS_PORT" "$mix"; done
stop_server
cat >"$WORK/knot/knot.conf" <<KNOT
server:
    listen: 127.0.0.1@$KNOT_PORT
    rundir: $WORK/knot/run
database:
    storage: $WORK/knot/db
zone:
  - domain: janus.
    storage: $WORK/knot
    file: janus.zone
log:
  - target: stderr
    any: warning
KNOT
"${SERVER_CPU[@]}" knotd -c "$WORK/knot/knot.conf" >"$WORK/knot/knotd.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 50); do dig +short -p "$KNOT_PORT" @127.0.0.1 one.svc.janus. A | grep -q 10.99.0.1 && break; sleep 0.1; done
for mix in srv3 srv100 a1; do dnsperf_run knot "$KNOT_PORT" "$mix"; done
stop_server
{
  echo "## DNS: Janus against Knot DNS $(knotd --version 2>/dev/null | awk '{print $NF}') (dnsperf, identical records)"
  echo
  echo "Both servers pinned to CPU 0, dnsperf to CPU 1 (\`${DNSPERF[*]} -d <query file>\`), plain UDP without EDNS as dnsperf sends by default."
  echo "Knot serves a static zone holding the same SRV, glue and A records that Janus serves from its registry."
  echo "An answer that does not fit 512 bytes (SRV of 100 instances) is TC with no records from both servers; the client retries over TCP."
  echo
  echo "| query | janus queries/s | knot queries/s | janus / knot |"
  echo "|---|---:|---:|---:|"
  for mix in srv3 srv100 a1; do
    case $mix in srv3) q='SRV `_srv3._tcp.janus.` (3 instances)';; srv100) q='SRV `_srv100._tcp.janus.` (100 instances)';; a1) q='A `one.svc.janus.` (1 instance)';; esac
    ratio=$(awk -v j="${QPS[janus-$mix]}" -v k="${QPS[knot-$mix]}" 'BEGIN { printf "%.2f", (k > 0 ? j / k : 0) }')
    echo "| $q | ${QPS[janus-$mix]} | ${QPS[knot-$mix]} | **${ratio}×** |"
  done
} >"$DNS_MD"
fi

if want join; then
echo "== join: a node restarting empty in a 3-node cluster holding $CAPACITY instances"
JOIN=$("$BENCH" join --janus "$JANUS" --work "$WORK/join" --instances "$CAPACITY" | tail -n 1)
{
  echo
  echo "## AP catch-up of a restarted node (Janus only)"
  echo
  echo "\`janus-bench join --instances $CAPACITY\`: three \`janus\` processes (default AP settings, long leases), $CAPACITY"
  echo "instances registered through nodes 1 and 2; node 3 is killed with SIGKILL and started again with an empty memory,"
  echo "and the time until its \`/ready\` answers 200 (it has loaded every instance from a peer) is measured."
  echo
  echo "$JOIN"
} >>"$DNS_MD"
fi

if want failover; then
echo "== cp failover: kill -9 of the Raft leader, 10 times"
FAILOVER=$("$BENCH" failover --janus "$JANUS" --work "$WORK/failover" --trials 10 | tail -n 1)
{
  echo
  echo "## CP failover (Janus only)"
  echo
  echo "\`janus-bench failover --trials 10\`: three \`janus\` processes on loopback with the default Raft timing"
  echo "(heartbeat 100 ms, election timeout 300–600 ms). Each trial kills the leader with SIGKILL and registers"
  echo "persistent instances through a surviving node until one is acknowledged; the killed node then restarts and rejoins."
  echo
  echo "$FAILOVER"
} >>"$DNS_MD"
fi

if want watchers; then
echo "== watchers: what 16,384 held blocking queries cost"
ulimit -n 20000 2>/dev/null || true
start_janus
WATCHERS=$("${BENCH_CPU[@]}" "$BENCH" watchers --addr "127.0.0.1:$JANUS_PORT" --pid "$SERVER_PID" --count 16384 --settle 10s | tail -n 1)
stop_server
{
  echo
  echo "## Held blocking queries (Janus only)"
  echo
  echo "\`janus-bench watchers --count 16384 --settle 10s\`: one \`janus\` (default settings, pinned to CPU 0); 16,384"
  echo "connections each hold a blocking query (\`GET …/instances?index=N&wait=10m\`) on one service; one write releases"
  echo "them all (every answer must list that write's instance) and they are closed. The held reading is taken once"
  echo "the server's \`janus_http_connections\` gauge shows them all. A light load (4 keep-alive clients × 20 heartbeats/s"
  echo "of the watched instance, which keeps its lease) runs throughout; each RSS reading (idle, held, after release)"
  echo "is the median of the last 3 s of a 10 s wait."
  echo
  echo "| watchers | RSS idle | RSS held | per watcher | RSS after release |"
  echo "|---|---|---|---|---|"
  echo "$WATCHERS"
} >>"$DNS_MD"
fi

if want unpinned; then
echo "== unpinned: the servers and the load generator share both cores, 3 rounds alternated"
UNPINNED="$RESULTS/unpinned"
mkdir -p "$UNPINNED"
PINNED_SERVER=("${SERVER_CPU[@]}")
HELLO_PORT=18099
unpinned_run() { # file target scenario instances [load generator pinning...]
  local file=$1 target=$2 scenario=$3 instances=$4
  shift 4
  "$@" "$BENCH" run --target "http://127.0.0.1:$target" --label "${file%%-*}" --scenario "$scenario" \
    --instances "$instances" --connections "$CONNS" --duration "$DURATION" --json "$UNPINNED/$file.json" \
    --section unpinned | tail -n 1
}
for round in 1 2 3; do
  for entry in "register 0" "heartbeat 10000" "list 100"; do
    read -r scenario instances <<<"$entry"
    order=(janus rnacos janus1)
    [ $((round % 2)) -eq 0 ] && order=(rnacos janus1 janus)
    for server in "${order[@]}"; do
      echo "== unpinned round $round: $scenario ($instances) on $server"
      case $server in
        janus) SERVER_CPU=(); start_janus; unpinned_run "janus-$scenario-$round" "$JANUS_PORT" "$scenario" "$instances" ;;
        janus1) SERVER_CPU=("${PINNED_SERVER[@]}"); start_janus
          unpinned_run "janus1-$scenario-$round" "$JANUS_PORT" "$scenario" "$instances" "${BENCH_CPU[@]}" ;;
        rnacos) SERVER_CPU=(); start_rnacos; unpinned_run "rnacos-$scenario-$round" "$RNACOS_PORT" "$scenario" "$instances" ;;
      esac
      stop_server
    done
  done
  echo "== unpinned round $round: the hyper hello-world ceiling"
  "$BENCH" hello --addr "127.0.0.1:$HELLO_PORT" 2>/dev/null &
  HELLO_PID=$!
  wait_for "http://127.0.0.1:$HELLO_PORT/"
  unpinned_run "hello-register-$round" "$HELLO_PORT" register 0
  kill "$HELLO_PID" 2>/dev/null || true; wait "$HELLO_PID" 2>/dev/null || true
done
SERVER_CPU=("${PINNED_SERVER[@]}")
COMMANDS+=("unpinned: janus-bench run --target <server> --scenario register|heartbeat|list --instances 0|10000|100 --connections $CONNS --duration $DURATION, neither side pinned (Janus on 1 core: server taskset -c 0, load generator -c 1); janus-bench hello --addr 127.0.0.1:$HELLO_PORT for the ceiling; 3 rounds")
{
  echo
  echo "## Unpinned: Janus and rnacos 0.8.8 on both cores, against the hyper hello-world ceiling"
  echo
  echo "The servers and the load generator (\`janus-bench run\`, $CONNS connections, Nacos v1 API, $DURATION per run) share both"
  echo "cores, as on a host where the registry is one process among others; \"Janus, 1 core\" is the pinned setting of the"
  echo "other sections (server on CPU 0, load generator on CPU 1). Each scenario ran in 3 rounds, the servers' order"
  echo "alternated from round to round, a fresh server each run; a cell is the median of the 3 rounds (the rounds in"
  echo "brackets). The ceiling is \`janus-bench hello\` (hyper answering \`200 ok\` to everything, multi-thread runtime)"
  echo "under the same register requests, in the same rounds."
  echo
  python3 - "$UNPINNED" <<'PYEOF'
import json, pathlib, statistics, sys
d = pathlib.Path(sys.argv[1])
def runs(server, scenario):
    out = []
    for r in (1, 2, 3):
        f = d / f"{server}-{scenario}-{r}.json"
        out.append(json.loads(f.read_text())["throughput"] if f.exists() else None)
    return out
def cell(values):
    got = [v for v in values if v is not None]
    if not got:
        return "-", None
    median = statistics.median(got)
    return f"{median/1000:.1f}k/s ({'/'.join(f'{v/1000:.1f}' for v in got)})", median
ceiling_text, ceiling = cell(runs("hello", "register"))
print("| scenario | Janus, 2 cores | Janus, 1 core | rnacos, 2 cores | Janus / rnacos | Janus 2 cores / 1 core | Janus / ceiling |")
print("|---|---:|---:|---:|---:|---:|---:|")
for scenario in ("register", "heartbeat", "list"):
    j_text, j = cell(runs("janus", scenario))
    j1_text, j1 = cell(runs("janus1", scenario))
    r_text, r = cell(runs("rnacos", scenario))
    ratio = lambda a, b: f"{a/b:.2f}x" if a and b else "-"
    print(f"| {scenario} | {j_text} | {j1_text} | {r_text} | {ratio(j, r)} | {ratio(j, j1)} | {ratio(j, ceiling)} |")
print()
print(f"hyper hello world under the register requests (the ceiling): {ceiling_text}.")
PYEOF
} >>"$DNS_MD"
fi

if want agent; then
echo "== agent: what janus agent's proxy adds to a call at 1,000 requests/s"
start_janus
BACKEND_PORT=18091; AGENT_PROXY_PORT=18092
# The agent and the load generator (the app) run unpinned, as a sidecar runs
# next to its app: the OS places them (see the section's text).
"$JANUS" agent --registry "127.0.0.1:$JANUS_PORT" --service bench-echo --port $BACKEND_PORT \
  --check-tcp "127.0.0.1:$BACKEND_PORT" --check-interval-ms 500 --proxy-addr "127.0.0.1:$AGENT_PROXY_PORT" \
  --no-dns --admin-addr 127.0.0.1:0 --log warn >"$WORK/agent.log" 2>&1 &
AGENT_PID=$!
AGENT_CMD="janus-bench proxy --serve 127.0.0.1:$BACKEND_PORT --direct http://127.0.0.1:$BACKEND_PORT/echo --proxied http://127.0.0.1:$AGENT_PROXY_PORT/bench-echo/echo --rate 1000 --duration $DURATION --rounds 3"
COMMANDS+=("$AGENT_CMD")
# shellcheck disable=SC2086
AGENT_TABLE=$("$BENCH" ${AGENT_CMD#janus-bench } --json "$RESULTS/agent-proxy.json")
kill "$AGENT_PID" 2>/dev/null || true; wait "$AGENT_PID" 2>/dev/null || true
stop_server
{
  echo
  echo "## What janus agent's proxy adds (Janus only)"
  echo
  echo "\`$AGENT_CMD\`: \`janus\` pinned to CPU 0; \`janus agent\` and the load generator with its backend (a minimal"
  echo "hyper server answering \`200 ok\`, on the generator's one thread) unpinned, as a sidecar runs next to its app."
  echo "An open-loop load of 1,000 GET/s, each request's latency counted from its dispatch (the dispatcher never waits"
  echo "for answers), alternates between the backend called directly and through the agent's proxy"
  echo "(\`127.0.0.1:$AGENT_PROXY_PORT/bench-echo/…\`, the instance the agent registered for the backend); 3 rounds each,"
  echo "the percentiles over all rounds of a path."
  echo
  echo "$AGENT_TABLE"
} >>"$DNS_MD"
fi

PREAMBLE="$WORK/preamble.md"
{
  echo "# Benchmarks"
  echo
  echo "Written by \`bench/compare.sh\` on $(date -u +%Y-%m-%d) at commit \`$(git rev-parse --short HEAD)\`."
  echo
  echo "- Machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(free -g | awk '/Mem:/ {print $2}') GiB."
  echo "- Each server runs pinned to CPU 0 (\`taskset -c 0\`), the load generator to CPU 1; every scenario starts a fresh server."
  echo "- Load: \`janus-bench\`, $CONNS keep-alive HTTP/1.1 connections, 1 s warm-up then $DURATION measured; the identical Nacos v1 requests go to both servers."
  echo "- rnacos 0.8.8 is installed by the script (\`cargo install rnacos --version 0.8.8 --locked\`) and run with its defaults on loopback."
  if [ "$RNACOS_CLUSTER_FAILURES" -gt 0 ]; then
    echo "- rnacos cluster runs left out (a dash in the tables): $RNACOS_CLUSTER_FAILURES, where its Raft join did not take in five attempts."
  fi
  echo "- Scenarios: register (each request a new instance, over 64 services); heartbeat (light beats over 10,000 registered instances); list (one service of 100 or 1000 instances); mixed (1 register : 1 heartbeat : 8 lists of a 100-instance service)."
  echo "- AP cluster: three \`janus\` processes and three rnacos 0.8.8 processes forming clusters (rnacos: node 1 starts the Raft group, nodes 2 and 3 join it; the script checks the membership and that node 3 lists an instance registered through node 1), all on CPU 0; the load generator's 64 connections spread round-robin over the three nodes."
  echo "- Cross-node watch: written through node 1, 16 blocked watchers on nodes 2 and 3; each write's latency counts from when it was sent to when a watcher's answer holds it (writes coalesced into one wake each count). Blackholed: the same with 16 watchers on node 2 while node 3 is stopped with SIGSTOP (it accepts connections and answers nothing), measured once the others have declared it down."
  echo "- Nacos gRPC: the same servers on their gRPC port (HTTP port + 1000), $CONNS connections each set up as the SDKs do (server check, bi-stream with ConnectionSetupRequest), then unary requests: register (\`InstanceRequest\` of a new instance over 64 services; Nacos keeps one instance per connection and service, so each also replaces the connection's previous one there, on both servers), list (\`ServiceQueryRequest\` of a 100-instance service registered over HTTP). Push: $PUSH_SUBSCRIBERS connections subscribe to one service; a writer connection registers an instance with a new port every 100 ms ($PUSH_WRITES times, each replacing its previous one); latency from the write being sent to the \`NotifySubscriberRequest\` listing it at each subscriber (acknowledged at once); across nodes the writer uses node 1 and the subscribers nodes 2 and 3. Capacity: 100,000 instances batch-registered (100 per service) over 1,000 connections, held while the server's RSS is read."
  echo "- CP writes: three \`janus\` processes forming one Raft group, and three \`etcd\` $(etcd --version | awk '/etcd Version/ {print $3}') members (Debian's \`etcd-server\`, default settings), all on CPU 0; \`conns\` clients spread round-robin over the three nodes, each with one request in flight. Janus: \`POST /v1/namespaces/bench-cp/services/…/instances\` of a new persistent instance (HTTP/1.1, JSON). etcd: \`KV.Put\` over gRPC (HTTP/2) of a key naming the same service and address, whose value is the same JSON body. Both acknowledge only after a majority made the entry durable (fsync). Janus runs with its server-side health checks off (\`JANUS_HEALTH__ENABLED=false\`): etcd has none, and the tens of thousands of instances a run registers would each be probed every ~5 s."
  echo
  echo "Commands (relative to the repository root):"
  echo
  echo '```'
  for c in "${COMMANDS[@]}"; do echo "$c"; done
  echo '```'
} >"$PREAMBLE"
"$BENCH" report --out "$ROOT/docs/benchmarks.md" --preamble "$PREAMBLE" --appendix "$DNS_MD" "${RESULT_FILES[@]}"
echo "== wrote docs/benchmarks.md"
cat "$ROOT/docs/benchmarks.md"
