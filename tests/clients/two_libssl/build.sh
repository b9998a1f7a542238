#!/bin/sh
# Builds the two-libssl test program into $1.
set -e
src=$(dirname "$0"); out=$1
mkdir -p "$out"
cc -shared -fPIC -o "$out/libfakessl.so" "$src/fakessl.c"
cc -shared -fPIC -o "$out/libshim_fake.so" "$src/shim_fake.c" -L"$out" -lfakessl -Wl,-rpath,"$out"
cc -shared -fPIC -o "$out/libshim_real.so" "$src/shim_real.c" -lssl -lcrypto
cc -o "$out/two_libssl" "$src/main.c" -ldl
