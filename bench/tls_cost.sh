#!/usr/bin/env bash
# What a captured HTTPS request costs, in one run: keep-alive HTTPS clients (Python
# requests, and curl with N URLs on one connection) against a loopback HTTPS server,
# with vs without libtapline.so, alternating rounds, best of each kept. Prints
# requests/second and the ratio. Not a test.
# Usage: bench/tls_cost.sh [REQUESTS]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-2000}
ROUNDS=${ROUNDS:-3}
LIB=$PWD/target/release/libtapline.so
[ -f "$LIB" ] || cargo build --release --workspace
work=$(mktemp -d)
server_pid=""
cleanup() { [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

# A throw-away CA ($work/cert.pem, what clients trust) and a server certificate.
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/ca.key" -out "$work/cert.pem" \
    -days 1 -subj "/CN=tapline bench CA" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout "$work/key.pem" -out "$work/server.csr" \
    -subj "/CN=localhost" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$work/san.ext"
openssl x509 -req -in "$work/server.csr" -CA "$work/cert.pem" -CAkey "$work/ca.key" \
    -CAcreateserial -days 1 -extfile "$work/san.ext" -out "$work/server.pem" 2>/dev/null
env -u LD_PRELOAD python3 tests/servers/http_server.py --port 0 --cert "$work/server.pem" \
    --key "$work/key.pem" >"$work/server.out" 2>/dev/null &
server_pid=$!
for _ in $(seq 100); do grep -q READY "$work/server.out" 2>/dev/null && break; sleep 0.1; done
port=$(awk '/READY/ {print $2}' "$work/server.out")

py_client='
import sys, time, requests
port, n, ca = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = requests.Session()
url = f"https://localhost:{port}/hello"
s.get(url, verify=ca)
t = time.perf_counter()
for _ in range(n):
    s.get(url, verify=ca).content
print(round(n / (time.perf_counter() - t)))
'
curl_urls() { for _ in $(seq "$N"); do echo "url = \"https://localhost:$port/hello\""; echo "output = /dev/null"; done; }
curl_urls >"$work/curl.cfg"
curl_rate() {
    local t0 t1
    t0=$(date +%s%N)
    "$@" curl -s --cacert "$work/cert.pem" -K "$work/curl.cfg"
    t1=$(date +%s%N)
    awk -v n="$N" -v ns="$((t1 - t0))" 'BEGIN { printf "%d\n", n / (ns / 1e9) }'
}
pre() { LD_PRELOAD="$LIB" TAPLINE_SPOOL_DIR="$work/spool" "$@"; }
: >"$work/p0"; : >"$work/p1"; : >"$work/c0"; : >"$work/c1"
for _ in $(seq "$ROUNDS"); do
    python3 -c "$py_client" "$port" "$N" "$work/cert.pem" >>"$work/p0"
    rm -rf "$work/spool"
    pre python3 -c "$py_client" "$port" "$N" "$work/cert.pem" >>"$work/p1"
    curl_rate env >>"$work/c0"
    rm -rf "$work/spool"
    curl_rate pre >>"$work/c1"
done
best() { sort -g "$1" | tail -1; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
echo "captured HTTPS requests ($(nproc) cores, best of $ROUNDS rounds, $N keep-alive GETs each)"
printf 'Python requests: without %s req/s   with %s req/s   ratio %s\n' "$(best "$work/p0")" "$(best "$work/p1")" "$(ratio "$(best "$work/p1")" "$(best "$work/p0")")"
printf 'curl (libcurl):  without %s req/s   with %s req/s   ratio %s\n' "$(best "$work/c0")" "$(best "$work/c1")" "$(ratio "$(best "$work/c1")" "$(best "$work/c0")")"
