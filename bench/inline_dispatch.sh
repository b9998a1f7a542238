#!/bin/sh
# Per-call cost of the inline hooks (dispatch: stub, handler, trampoline, no capture).
# Usage: bench/inline_dispatch.sh   (after cargo build --release)
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cc -O2 -rdynamic -fno-inline -o "$tmp/dispatch" "$root/bench/static_openssl_dispatch.c"
n=${1:-20000000}
base=$("$tmp/dispatch" "$n")
hooked=$(LD_PRELOAD="$root/target/release/libtapline.so" TAPLINE_SPOOL_DIR="$tmp" "$tmp/dispatch" "$n")
echo "without: $base"
echo "with:    $hooked"
