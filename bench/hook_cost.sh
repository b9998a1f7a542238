#!/usr/bin/env bash
# Measures, in one run, what libtapline.so costs the host program:
#  (a) a hooked write() on a non-socket fd (/dev/null): ns per call, with vs without;
#  (b) keep-alive loopback HTTP exchanges per second (C client, and Python requests)
#      with vs without the library.
# Each pair runs alternately, several rounds, best of each is kept. Not a test: it
# prints numbers. Usage: bench/hook_cost.sh [WRITES] [REQUESTS]
# BASE_LIB=OTHER/libtapline.so adds a third column, another build (e.g. main's) run in
# the same rounds, alternating with this one.
set -euo pipefail
cd "$(dirname "$0")/.."
WRITES=${1:-1000000}
REQUESTS=${2:-20000}
ROUNDS=${ROUNDS:-5}
LIB=$PWD/target/release/libtapline.so
[ -f "$LIB" ] || cargo build --release --workspace

work=$(mktemp -d)
server_pid=""
cleanup() { [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
gcc -O2 -o "$work/write_loop" bench/write_loop.c
gcc -O2 -o "$work/http_pingpong" bench/http_pingpong.c

BASE_LIB=${BASE_LIB:-}
pre() { LD_PRELOAD="$LIB" TAPLINE_SPOOL_DIR="$work/spool" "$@"; }
base() { LD_PRELOAD="$BASE_LIB" TAPLINE_SPOOL_DIR="$work/spool" "$@"; }
mkdir -p "$work/spool"

best_min() { sort -g | head -1; }
best_max() { sort -g | tail -1; }

# (a) write() on /dev/null
: >"$work/a_plain"; : >"$work/a_pre"; : >"$work/a_base"
for _ in $(seq "$ROUNDS"); do
    "$work/write_loop" "$WRITES" >>"$work/a_plain"
    pre "$work/write_loop" "$WRITES" >>"$work/a_pre"
    [ -z "$BASE_LIB" ] || base "$work/write_loop" "$WRITES" >>"$work/a_base"
done
a_plain=$(best_min <"$work/a_plain"); a_pre=$(best_min <"$work/a_pre"); a_base=$(best_min <"$work/a_base")

# (b) keep-alive exchanges per second, server without the library
mkfifo "$work/ready"
# Pin server and client to different cores when there are two: far less noise.
pin_server=(); pin_client=()
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then pin_server=(taskset -c 1); pin_client=(taskset -c 0); fi
env -u LD_PRELOAD "${pin_server[@]}" "$work/http_pingpong" server >"$work/ready" &
server_pid=$!
read -r _ port <"$work/ready"
: >"$work/b_plain"; : >"$work/b_pre"; : >"$work/b_base"
for _ in $(seq "$ROUNDS"); do
    "${pin_client[@]}" "$work/http_pingpong" client "$port" "$REQUESTS" >>"$work/b_plain"
    rm -rf "$work/spool"; mkdir -p "$work/spool"
    pre "${pin_client[@]}" "$work/http_pingpong" client "$port" "$REQUESTS" >>"$work/b_pre"
    if [ -n "$BASE_LIB" ]; then
        rm -rf "$work/spool"; mkdir -p "$work/spool"
        base "${pin_client[@]}" "$work/http_pingpong" client "$port" "$REQUESTS" >>"$work/b_base"
    fi
done
b_plain=$(best_max <"$work/b_plain"); b_pre=$(best_max <"$work/b_pre"); b_base=$(best_max <"$work/b_base")

py_client='
import sys, time, requests
port, n = sys.argv[1], int(sys.argv[2])
s = requests.Session()
url = f"http://127.0.0.1:{port}/ping"
s.get(url)
t = time.perf_counter()
for _ in range(n):
    s.get(url).content
print(round(n / (time.perf_counter() - t)))
'
pyn=$((REQUESTS / 10))
: >"$work/c_plain"; : >"$work/c_pre"; : >"$work/c_base"
for _ in $(seq "$ROUNDS"); do
    python3 -c "$py_client" "$port" "$pyn" >>"$work/c_plain"
    rm -rf "$work/spool"; mkdir -p "$work/spool"
    pre python3 -c "$py_client" "$port" "$pyn" >>"$work/c_pre"
    if [ -n "$BASE_LIB" ]; then
        rm -rf "$work/spool"; mkdir -p "$work/spool"
        base python3 -c "$py_client" "$port" "$pyn" >>"$work/c_base"
    fi
done
c_plain=$(best_max <"$work/c_plain"); c_pre=$(best_max <"$work/c_pre"); c_base=$(best_max <"$work/c_base")

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
echo "tapline hook cost ($(nproc) cores, best of $ROUNDS rounds, library: $LIB)"
printf '(a) write() to /dev/null, %d calls:  without %s ns/call   with %s ns/call   ratio %s  (+%s ns)\n' \
    "$WRITES" "$a_plain" "$a_pre" "$(ratio "$a_pre" "$a_plain")" \
    "$(awk -v a="$a_pre" -v b="$a_plain" 'BEGIN { printf "%.1f", a - b }')"
printf '(b) C keep-alive client, %d GETs:     without %s req/s   with %s req/s   ratio %s\n' \
    "$REQUESTS" "$b_plain" "$b_pre" "$(ratio "$b_pre" "$b_plain")"
printf '    Python requests Session, %d GETs: without %s req/s   with %s req/s   ratio %s\n' \
    "$pyn" "$c_plain" "$c_pre" "$(ratio "$c_pre" "$c_plain")"
if [ -n "$BASE_LIB" ]; then
    echo "base build, same rounds ($BASE_LIB):"
    printf '(a) write() to /dev/null:  base %s ns/call (+%s ns)   this %s ns/call (+%s ns)\n' \
        "$a_base" "$(awk -v a="$a_base" -v b="$a_plain" 'BEGIN { printf "%.1f", a - b }')" \
        "$a_pre" "$(awk -v a="$a_pre" -v b="$a_plain" 'BEGIN { printf "%.1f", a - b }')"
    printf '(b) C keep-alive client:   base %s req/s (ratio %s)   this %s req/s (ratio %s)\n' \
        "$b_base" "$(ratio "$b_base" "$b_plain")" "$b_pre" "$(ratio "$b_pre" "$b_plain")"
    printf '    Python requests:       base %s req/s (ratio %s)   this %s req/s (ratio %s)\n' \
        "$c_base" "$(ratio "$c_base" "$c_plain")" "$c_pre" "$(ratio "$c_pre" "$c_plain")"
fi
