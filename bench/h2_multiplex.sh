#!/usr/bin/env bash
# Measures, in one run, what libtapline.so costs an HTTP/2 client:
#  (a) multiplexed h2 requests per second on one connection (node's http2 client,
#      CONCURRENCY streams in flight, cleartext prior knowledge) against
#      tests/servers/h2_server.js on 127.0.0.1, with vs without the library;
#  (b) the framer's own cost per DATA frame (bench/h2_framer_cost.rs, no I/O).
# Each pair runs alternately, several rounds, best of each is kept. Not a test: it
# prints numbers. Usage: bench/h2_multiplex.sh [REQUESTS] [CONCURRENCY]
set -euo pipefail
cd "$(dirname "$0")/.."
REQUESTS=${1:-20000}
CONCURRENCY=${2:-50}
ROUNDS=${ROUNDS:-5}
LIB=$PWD/target/release/libtapline.so
[ -f "$LIB" ] || cargo build --release --workspace

work=$(mktemp -d)
server_pid=""
cleanup() { [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

pin_server=(); pin_client=()
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then pin_server=(taskset -c 1); pin_client=(taskset -c 0); fi
mkfifo "$work/ready"
env -u LD_PRELOAD "${pin_server[@]}" node tests/servers/h2_server.js >"$work/ready" &
server_pid=$!
read -r _ port <"$work/ready"
url="http://127.0.0.1:$port"

: >"$work/plain"; : >"$work/pre"
for _ in $(seq "$ROUNDS"); do
    "${pin_client[@]}" node bench/h2_multiplex_client.js "$url" "$REQUESTS" "$CONCURRENCY" >>"$work/plain"
    rm -rf "$work/spool"; mkdir -p "$work/spool"
    LD_PRELOAD="$LIB" TAPLINE_SPOOL_DIR="$work/spool" "${pin_client[@]}" \
        node bench/h2_multiplex_client.js "$url" "$REQUESTS" "$CONCURRENCY" >>"$work/pre"
done
plain=$(sort -g "$work/plain" | tail -1); pre=$(sort -g "$work/pre" | tail -1)
streams=$(target/release/tapline show --records "$work/spool" \
    | grep -c '"type":"h2_stream_end".*"dir":"ingress"' || true)
echo "h2 multiplexed requests/s, one connection, $CONCURRENCY streams in flight ($REQUESTS requests, best of $ROUNDS):"
echo "  without library: $plain"
echo "  with library:    $pre  (last run recorded $streams response streams)"
python3 -c "print(f'  ratio:           {$pre / $plain:.3f}')"

# (b) the framer alone
rustc --edition 2021 -O -L "dependency=target/release/deps" \
    --extern tapline_record="$(ls target/release/deps/libtapline_record-*.rlib | head -1)" \
    -o "$work/h2_framer_cost" bench/h2_framer_cost.rs 2>"$work/rustc.err" || { cat "$work/rustc.err"; exit 1; }
"$work/h2_framer_cost"
