#!/usr/bin/env bash
# End to end: a real `janus` process driven with curl and dig, as the README
# shows. Installs dig (Debian's dnsutils) when it is missing. Prints one
# closing line, "e2e: N passed, M failed", and exits non-zero on any failure.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

if ! command -v dig >/dev/null; then
  echo "== installing dig (dnsutils)"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq dnsutils >/dev/null
fi
cargo build -q --locked -p janus-server
JANUS="$ROOT/target/debug/janus"

LOG=$(mktemp)
"$JANUS" --http-addr 127.0.0.1:0 --dns-addr 127.0.0.1:0 --log info >"$LOG" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true; rm -f "$LOG"' EXIT
for _ in $(seq 1 100); do grep -q "dns serving" "$LOG" && grep -q "janus serving" "$LOG" && break; sleep 0.1; done
HTTP=$(sed -n 's/.*janus serving http_addr=\([0-9.:]*\).*/\1/p' "$LOG" | head -1)
DNS=$(sed -n 's/.*dns serving addr=\([0-9.:]*\).*/\1/p' "$LOG" | head -1)
[ -n "$HTTP" ] && [ -n "$DNS" ] || { echo "janus did not start:"; cat "$LOG"; exit 1; }
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

kill -TERM $PID
status=0; wait $PID || status=$?
check "SIGTERM stops janus cleanly" "0" "$status"
echo "e2e: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
