#!/usr/bin/env bash
# End to end: a real `janus` process driven with curl and dig, as the README
# shows, and by the real client libraries py-eureka-client and
# nacos-sdk-python 1.x over HTTP (installed into target/e2e-venv from PyPI), and
# nacos-sdk-python 2.x over the Nacos gRPC port (its v2.nacos package, in
# target/e2e-venv-grpc: the same distribution name, so a venv of its own);
# then `janus agent` with the Python apps of examples/agent; then, against a
# second node with auth on, the same libraries with credentials (docs/auth.md).
# Installs dig (Debian's dnsutils) when it is missing. Prints one closing line,
# "e2e: N passed, M failed", and exits non-zero on any failure.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

if ! command -v dig >/dev/null; then
  echo "== installing dig (dnsutils)"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq dnsutils >/dev/null
fi
cargo build -q --locked -p janus-server
JANUS="${CARGO_TARGET_DIR:-$ROOT/target}/debug/janus"

VENV="$ROOT/target/e2e-venv"
if ! "$VENV/bin/python" -c "import py_eureka_client, nacos" 2>/dev/null \
  || ! cmp -s tests/clients/requirements.txt "$VENV/requirements.txt"; then
  echo "== installing the client libraries into $VENV"
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check -r tests/clients/requirements.txt
  cp tests/clients/requirements.txt "$VENV/requirements.txt"
fi
PY="$VENV/bin/python"
GVENV="$ROOT/target/e2e-venv-grpc"
if ! "$GVENV/bin/python" -c "import v2.nacos" 2>/dev/null \
  || ! cmp -s tests/clients/requirements-grpc.txt "$GVENV/requirements.txt"; then
  echo "== installing the gRPC client library into $GVENV"
  rm -rf "$GVENV"
  python3 -m venv "$GVENV"
  "$GVENV/bin/pip" install -q --disable-pip-version-check -r tests/clients/requirements-grpc.txt
  cp tests/clients/requirements-grpc.txt "$GVENV/requirements.txt"
fi
GPY="$GVENV/bin/python"

WORK=$(mktemp -d)
LOG="$WORK/janus.log"
CHILDREN=()
# Health checks may probe loopback only: a stray address is refused, not probed.
JANUS_HEALTH__PROBE_ALLOW=127.0.0.0/8 \
  "$JANUS" --http-addr 127.0.0.1:0 --dns-addr 127.0.0.1:0 --data-dir "$WORK/data" --log info >"$LOG" 2>&1 &
PID=$!
trap 'kill $PID "${CHILDREN[@]}" 2>/dev/null || true; rm -rf "$WORK"' EXIT
for _ in $(seq 1 100); do
  grep -q "dns serving" "$LOG" && grep -q "grpc serving" "$LOG" && grep -q "janus serving" "$LOG" && break
  sleep 0.1
done
HTTP=$(sed -n 's/.*janus serving http_addr=\([0-9.:]*\).*/\1/p' "$LOG" | head -1)
DNS=$(sed -n 's/.*dns serving addr=\([0-9.:]*\).*/\1/p' "$LOG" | head -1)
GRPC=$(sed -n 's/.*grpc serving grpc_addr=\([0-9.:]*\).*/\1/p' "$LOG" | head -1)
[ -n "$HTTP" ] && [ -n "$DNS" ] && [ -n "$GRPC" ] || { echo "janus did not start:"; cat "$LOG"; exit 1; }
DIG=(dig @"${DNS%:*}" -p "${DNS##*:}" +time=2 +tries=1)

passed=0 failed=0
check() { # name expected actual
  if [ "$2" = "$3" ]; then
    passed=$((passed + 1)); echo "ok    $1"
  else
    failed=$((failed + 1)); echo "FAIL  $1: expected [$2], got [$3]"
  fi
}
post() { curl -fsS -XPOST "http://$HTTP$1" -H 'content-type: application/json' -d "$2" >/dev/null; }

post /v1/namespaces/public/services/orders/instances '{"ip":"10.0.0.1","port":8080}'
post /v1/namespaces/public/services/orders/instances '{"ip":"10.0.0.2","port":8081,"weight":3}'
check "A lists both instances" "10.0.0.1 10.0.0.2" "$("${DIG[@]}" +short orders.svc.janus. A | sort | xargs)"
check "SRV carries ports and weights" "1 1 8080 0a000001.addr.janus. 1 3 8081 0a000002.addr.janus." \
  "$("${DIG[@]}" +short _orders._tcp.janus. SRV | sort -k3 | xargs)"
check "SRV targets resolve" "10.0.0.2" "$("${DIG[@]}" +short 0a000002.addr.janus. A)"
check "glue in the additional section" "2" "$("${DIG[@]}" +noall +additional _orders._tcp.janus. SRV | grep -c 'IN.A')"
check "TTL defaults to 0" "0" "$("${DIG[@]}" +noall +answer orders.svc.janus. A | awk 'NR==1 {print $2}')"
check "unknown service is NXDOMAIN" "NXDOMAIN" "$("${DIG[@]}" nobody.svc.janus. A | sed -n 's/.*status: \([A-Z]*\).*/\1/p')"
check "known name without AAAA is NODATA" "NOERROR 0" \
  "$("${DIG[@]}" orders.svc.janus. AAAA | sed -n 's/.*status: \([A-Z]*\).*/\1/p') $("${DIG[@]}" +short orders.svc.janus. AAAA | wc -l)"
check "outside the domain is REFUSED" "REFUSED" "$("${DIG[@]}" example.com. A | sed -n 's/.*status: \([A-Z]*\).*/\1/p')"
check "answers are authoritative" "1" "$("${DIG[@]}" orders.svc.janus. A | grep -c 'flags: qr aa')"

curl -fsS -XDELETE "http://$HTTP/v1/namespaces/public/services/orders/instances/10.0.0.2/8081" >/dev/null
check "a deregistration shows at once" "10.0.0.1" "$("${DIG[@]}" +short orders.svc.janus. A | xargs)"
curl -fsS -XPOST "http://$HTTP/nacos/v1/ns/instance?serviceName=payments&ip=10.0.0.9&port=9000" >/dev/null
check "Nacos registrations are in DNS" "10.0.0.9" "$("${DIG[@]}" +short payments.svc.janus. A)"
check "TCP answers the same" "10.0.0.9" "$("${DIG[@]}" +tcp +short payments.svc.janus. A)"
for i in $(seq 1 40); do post /v1/namespaces/public/services/big/instances "{\"ip\":\"10.7.0.$i\",\"port\":80}"; done
check "a large answer is truncated over UDP" "1" "$("${DIG[@]}" +ignore +noedns _big._tcp.janus. SRV | grep -c 'flags: qr aa tc')"
check "and complete over TCP" "40" "$("${DIG[@]}" +tcp +short _big._tcp.janus. SRV | wc -l)"
for i in $(seq 41 200); do post /v1/namespaces/public/services/big/instances "{\"ip\":\"10.7.0.$i\",\"port\":80}"; done
for t in TXT SRV; do # EDNS 65535 asked, dns.max_udp_payload (1232) answered: TC, no records
  answer=$("${DIG[@]}" +bufsize=65535 +ignore big.svc.janus. $t)
  size=$(sed -n 's/.*MSG SIZE  rcvd: \([0-9]*\).*/\1/p' <<<"$answer")
  check "200 $t records over UDP: TC, no records, $size <= 1232 bytes" "yes 1" \
    "$([ "${size:-65536}" -le 1232 ] && echo yes || echo no) $(grep -c 'flags: qr aa tc.* ANSWER: 0,' <<<"$answer")"
done

# --- real client libraries ---------------------------------------------------
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_for_line() { # file text
  for _ in $(seq 1 150); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
  echo "timed out waiting for '$2' in $1:"; cat "$1"; return 1
}
nacos_hosts() { # service → ip:port,…
  curl -fsS "http://$HTTP/nacos/v1/ns/instance/list?serviceName=$1" \
    | python3 -c 'import json, sys; print(",".join(h["ip"] + ":" + str(h["port"]) for h in json.load(sys.stdin)["hosts"]))'
}
eureka_apps() { curl -fsS -H 'accept: application/json' "http://$HTTP/eureka/apps" \
  | python3 -c 'import json, sys; print(",".join(sorted(a["name"] for a in json.load(sys.stdin)["applications"]["application"])))'; }
# Seconds from now until `service` has no instance left in the Nacos list
# (gives up after 15 s); "absent" if it was not listed to begin with.
seconds_until_gone() {
  local start now hosts
  start=$(date +%s%N)
  hosts=$(nacos_hosts "$1")
  [ -n "$hosts" ] || { echo absent; return; }
  for _ in $(seq 1 150); do
    hosts=$(nacos_hosts "$1")
    [ -z "$hosts" ] && break
    sleep 0.1
  done
  now=$(date +%s%N)
  awk -v ns=$((now - start)) 'BEGIN { printf "%.1f", ns / 1e9 }'
}
within() { # seconds limit
  [ "$1" = absent ] && { echo "not listed when killed"; return; }
  awk -v got="$1" -v limit="$2" 'BEGIN { print (got <= limit ? "yes" : "no (" got " s)") }'
}

EUREKA="http://$HTTP/eureka"
EPORT=$(free_port)
(cd tests/clients && exec "$PY" eureka_provider.py "$EUREKA" "$EPORT") >"$WORK/eureka-provider.log" 2>&1 &
EPID=$!
CHILDREN+=("$EPID")
wait_for_line "$WORK/eureka-provider.log" registered
check "py-eureka-client: discovered and called with do_service" "hello from eureka provider" \
  "$(cd tests/clients && "$PY" eureka_consumer.py "$EUREKA" 2>&1 | tail -1)"
check "a Eureka registration is in the Nacos list" "127.0.0.1:$EPORT" "$(nacos_hosts py-provider)"
check "a Eureka registration is in DNS" "1 1 $EPORT 7f000001.addr.janus." "$("${DIG[@]}" +short _py-provider._tcp.janus. SRV)"

NPORT=$(free_port)
(cd tests/clients && exec "$PY" nacos_provider.py "$HTTP" "$NPORT") >"$WORK/nacos-provider.log" 2>&1 &
NPID=$!
CHILDREN+=("$NPID")
wait_for_line "$WORK/nacos-provider.log" registered
check "nacos-sdk-python: registered" "registered" "$(grep -o 'registered\|refused' "$WORK/nacos-provider.log" | head -1)"
while read -r name verdict rest; do
  check "nacos-sdk-python: ${name#nacos-}" "ok" "$verdict${rest:+ $rest}"
done < <(cd tests/clients && "$PY" nacos_consumer.py "$HTTP" 2>&1 | grep -E ' ok$| FAILED')
check "a Nacos registration is seen by Eureka clients" "NACOS-PROVIDER,PY-PROVIDER" "$(eureka_apps | tr ',' '\n' | grep PROVIDER | xargs | tr ' ' ',')"
check "a Nacos registration is in DNS" "127.0.0.1" "$("${DIG[@]}" +short nacos-provider.svc.janus. A)"

# Kill both providers: they must leave discovery within the 3 s lease they declared.
# Both are timed at once from the kill (one after the other, the second could
# be gone before its timing started).
kill -9 "$EPID" "$NPID"
wait "$EPID" "$NPID" 2>/dev/null || true
seconds_until_gone nacos-provider >"$WORK/nacos-gone" &
NACOS_GONE=$!
gone=$(seconds_until_gone py-provider)
check "a killed py-eureka-client service is gone within its 3 s lease (after ${gone} s)" "yes" "$(within "$gone" 3.5)"
wait "$NACOS_GONE"
gone=$(cat "$WORK/nacos-gone")
check "a killed nacos-sdk-python service is gone within its 3 s lease (after ${gone} s)" "yes" "$(within "$gone" 3.5)"
check "and from Eureka" "" "$(eureka_apps | tr ',' '\n' | grep PROVIDER | xargs)"
check "and from DNS" "" "$("${DIG[@]}" +short nacos-provider.svc.janus. A; "${DIG[@]}" +short py-provider.svc.janus. A)"

# nacos-sdk-python 2.x over gRPC. Given the HTTP address, as applications give
# it, the SDK adds a port offset (1000 by default) to find the gRPC port; the
# script sets the offset to the distance between the two ephemeral ports.
grpc_client() { (cd tests/clients && exec "$GPY" nacos_grpc_client.py "$HTTP" "$GRPC" "$WORK/grpc-client" "$@"); }
grpc_query() { grpc_client query "$1" 2>&1 | grep -E '^(hosts|error) ' | head -1; }
status=0; grpc_client run >"$WORK/grpc-run.log" 2>&1 || status=$?
grpc_step() { sed -n "s/^$1 //p" "$WORK/grpc-run.log" | head -1; }
check "nacos-sdk-python gRPC: register" "ok" "$(grpc_step register)"
check "nacos-sdk-python gRPC: subscribe, the callback gets the instance" "10.0.0.31:7001" "$(grpc_step subscribe)"
check "nacos-sdk-python gRPC: list" "10.0.0.31:7001" "$(grpc_step list)"
check "nacos-sdk-python gRPC: an HTTP registration is pushed to the callback" "10.0.0.31:7001,10.0.0.33:7003" \
  "$(grpc_step push)"
check "nacos-sdk-python gRPC: deregister" "ok" "$(grpc_step deregister)"
check "nacos-sdk-python gRPC: the deregistration is pushed" "10.0.0.33:7003" "$(grpc_step push-after-deregister)"
check "nacos-sdk-python gRPC: list after deregister" "10.0.0.33:7003" "$(grpc_step list-after-deregister)"
check "nacos-sdk-python gRPC: list services" "has grpc-py" "$(grpc_step list-services)"
check "nacos-sdk-python gRPC: the run ends cleanly" "exit 0" "exit $status$(sed -n 's/^error / /p' "$WORK/grpc-run.log")"
check "nothing of it is left in the HTTP list" "" "$(nacos_hosts grpc-py)"

# An instance registered over gRPC lives as long as the client's connection:
# SIGKILL the client and the instance leaves every protocol, no lease to wait.
(cd tests/clients && exec "$GPY" nacos_grpc_client.py "$HTTP" "$GRPC" "$WORK/grpc-client" hold) >"$WORK/grpc-hold.log" 2>&1 &
GPID=$!
CHILDREN+=("$GPID")
wait_for_line "$WORK/grpc-hold.log" '^ready\|^refused\|^error'
check "nacos-sdk-python gRPC: registered by a client that stays" "ready" "$(grep -m1 '^ready\|^refused\|^error' "$WORK/grpc-hold.log")"
check "a gRPC registration is in the Nacos HTTP list" "10.0.0.32:7002" "$(nacos_hosts grpc-py-killed)"
check "a gRPC registration is in DNS" "10.0.0.32" "$("${DIG[@]}" +short grpc-py-killed.svc.janus. A)"
check "a gRPC registration is seen by another gRPC client" "hosts 10.0.0.32:7002" "$(grpc_query grpc-py-killed)"
kill -9 "$GPID" 2>/dev/null || true
wait "$GPID" 2>/dev/null || true
for _ in $(seq 1 50); do [ -z "$(nacos_hosts grpc-py-killed)" ] && break; sleep 0.1; done
check "a SIGKILLed gRPC client's instance leaves the HTTP list with its connection" "" "$(nacos_hosts grpc-py-killed)"
check "and DNS" "" "$("${DIG[@]}" +short grpc-py-killed.svc.janus. A)"
check "and gRPC" "hosts (none)" "$(grpc_query grpc-py-killed)"

# --- janus agent: the seeds' Python example without a registry library -------
# Two hello.py instances, each kept registered by its agent while /health
# passes; a caller reaches them through a third agent's proxy.
hello_ports() { curl -fsS "http://$HTTP/v1/namespaces/public/services/hello/instances" \
  | python3 -c 'import json, sys; print(",".join(sorted(str(i["port"]) for i in json.load(sys.stdin)["instances"])))'; }
wait_for_ports() { # expected
  for _ in $(seq 1 100); do [ "$(hello_ports)" = "$1" ] && break; sleep 0.1; done
  hello_ports
}
H1=$(free_port); H2=$(free_port); PROXY=$(free_port); ADMIN_PORT=$(free_port); AGENT_DNS=$(free_port)
python3 examples/agent/hello.py "$H1" >"$WORK/hello1.log" 2>&1 &
HELLO1=$!; CHILDREN+=("$HELLO1")
python3 examples/agent/hello.py "$H2" >"$WORK/hello2.log" 2>&1 &
HELLO2=$!; CHILDREN+=("$HELLO2")
start_agent() { # app port, log
  "$JANUS" agent --registry "$HTTP" --service hello --port "$1" --check-http "http://127.0.0.1:$1/health" \
    --check-interval-ms 200 --no-proxy --no-dns --admin-addr 127.0.0.1:0 >"$2" 2>&1 &
}
start_agent "$H1" "$WORK/agent1.log"; AGENT1=$!; CHILDREN+=("$AGENT1")
start_agent "$H2" "$WORK/agent2.log"; AGENT2=$!; CHILDREN+=("$AGENT2")
"$JANUS" agent --registry "$HTTP" --proxy-addr "127.0.0.1:$PROXY" --admin-addr "127.0.0.1:$ADMIN_PORT" \
  --dns-addr "127.0.0.1:$AGENT_DNS" \
  >"$WORK/agent-caller.log" 2>&1 &
CALLER_AGENT=$!; CHILDREN+=("$CALLER_AGENT")
both=$(printf '%s\n' "$H1" "$H2" | sort | paste -sd,)
check "janus agent registers both hello.py instances once /health passes" "$both" "$(wait_for_ports "$both")"
wait_for_line "$WORK/agent-caller.log" "agent started"
answered() { python3 examples/agent/caller.py "127.0.0.1:$PROXY" "$1" | sed -n 's/^127.0.0.1:\([0-9]*\) \[GET\] python server on port \1: \/greeting$/\1/p' | sort -u | paste -sd,; }
check "caller.py through the agent's proxy reaches both instances" "$both" "$(answered 30)"
check "the agent's local DNS answers SRV for the same instances" "$both" \
  "$(dig @127.0.0.1 -p "$AGENT_DNS" +time=2 +tries=1 +short hello.svc.janus. SRV | awk '{print $3}' | sort | paste -sd,)"
check "and over TCP" "$both" \
  "$(dig @127.0.0.1 -p "$AGENT_DNS" +tcp +time=2 +tries=1 +short hello.svc.janus. SRV | awk '{print $3}' | sort | paste -sd,)"
check "the agent's /health says UP" "UP" \
  "$(curl -fsS "http://127.0.0.1:$ADMIN_PORT/health" | python3 -c 'import json, sys; print(json.load(sys.stdin)["status"])')"
check "the agent's /metrics counts the proxied answers" "1" \
  "$(curl -fsS "http://127.0.0.1:$ADMIN_PORT/metrics" | grep -c '^janus_agent_proxy_answers_total{service="hello",class="2xx"}')"
kill -9 "$HELLO1"; wait "$HELLO1" 2>/dev/null || true
check "a killed hello.py is deregistered by its agent" "$H2" "$(wait_for_ports "$H2")"
check "and the caller gets only the live instance, with no error" "$H2 0" \
  "$(answered 10) $(python3 examples/agent/caller.py "127.0.0.1:$PROXY" 10 | grep -c '^error' || true)"
kill -TERM "$AGENT2"
status=0; wait "$AGENT2" || status=$?
check "SIGTERM stops the agent cleanly" "0" "$status"
check "and its app is deregistered at once, not by lease expiry" "" "$(hello_ports)"
check "with no instance left the proxy says so" "error 503" \
  "$(python3 examples/agent/caller.py "127.0.0.1:$PROXY" 1 | cut -d' ' -f1-2)"
kill -TERM "$AGENT1" "$CALLER_AGENT" "$HELLO2" 2>/dev/null || true

# --- auth on: the same client libraries with credentials (docs/auth.md) -------
ALOG="$WORK/janus-auth.log"
JANUS_AUTH__ENABLED=true JANUS_HEALTH__PROBE_ALLOW=127.0.0.0/8 JANUS_DNS__ENABLED=false \
  "$JANUS" --http-addr 127.0.0.1:0 --data-dir "$WORK/auth-data" --log info >"$ALOG" 2>&1 &
APID=$!
CHILDREN+=("$APID")
for _ in $(seq 1 100); do
  grep -q "grpc serving" "$ALOG" && grep -q "janus serving" "$ALOG" && [ -s "$WORK/auth-data/bootstrap-token" ] && break
  sleep 0.1
done
AHTTP=$(sed -n 's/.*janus serving http_addr=\([0-9.:]*\).*/\1/p' "$ALOG" | head -1)
AGRPC=$(sed -n 's/.*grpc serving grpc_addr=\([0-9.:]*\).*/\1/p' "$ALOG" | head -1)
ADMIN=$(cat "$WORK/auth-data/bootstrap-token" 2>/dev/null || true)
check "auth on: the bootstrap admin token is written, owner-only" "600" "$(stat -c %a "$WORK/auth-data/bootstrap-token" 2>&1)"
check "auth on: the log names the file, never the token" "1 0" \
  "$(grep -c 'bootstrap-token' "$ALOG") $(grep -c "${ADMIN:-no-token}" "$ALOG")"
admin() { curl -fsS -H "Authorization: Bearer $ADMIN" -H 'content-type: application/json' "$@" >/dev/null; }
admin -XPOST "http://$AHTTP/v1/auth/users" -d '{"name":"team-py","password":"correct horse battery"}'
admin -XPUT "http://$AHTTP/v1/auth/users/team-py/grants" -d '{"namespace":"public","role":"write"}'
check "auth on: no credentials is 401" "401" \
  "$(curl -s -o /dev/null -w '%{http_code}' "http://$AHTTP/nacos/v1/ns/instance/list?serviceName=x")"
auth_http() { (cd tests/clients && timeout 60 "$PY" auth_http_clients.py "$AHTTP" "$@" 2>&1 | tail -1); }
check "nacos-sdk-python 1.0.0 with username/password registers and lists" "nacos 127.0.0.1:7101" \
  "$(auth_http team-py 'correct horse battery' nacos)"
check "nacos-sdk-python 1.0.0 with a wrong password is refused" "nacos refused" \
  "$(auth_http team-py 'wrong horse battery' nacos | cut -d' ' -f1-2)"
check "py-eureka-client with basic auth registers" "eureka 1" "$(auth_http team-py 'correct horse battery' eureka)"
check "py-eureka-client with a wrong password is refused" "eureka refused" \
  "$(auth_http team-py 'wrong horse battery' eureka | cut -d' ' -f1-2)"
auth_grpc() { # user password
  (cd tests/clients && NACOS_USERNAME=$1 NACOS_PASSWORD=$2 timeout 60 "$GPY" nacos_grpc_client.py "$AHTTP" "$AGRPC" \
    "$WORK/grpc-auth" auth 2>&1 | grep -m1 '^auth\|^error' | cut -c1-60)
}
check "nacos-sdk-python 2.0.11 (gRPC) with username/password registers and lists" "auth 10.0.0.41:7201" \
  "$(auth_grpc team-py 'correct horse battery')"
check "nacos-sdk-python 2.0.11 (gRPC) with a wrong password is refused" "error" \
  "$(auth_grpc team-py 'wrong horse battery' | cut -d' ' -f1)"
kill -TERM $APID 2>/dev/null; wait $APID 2>/dev/null || true

kill -TERM $PID
status=0; wait $PID || status=$?
check "SIGTERM stops janus cleanly" "0" "$status"
echo "e2e: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
