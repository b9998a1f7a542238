#!/usr/bin/env bash
# The JVMTI agent's class-file cost (bench/jvm_classfile.rs) on the java.base of each JDK
# here: JDK 17 (Debian) and Temurin 25 where present. Usage: bench/jvm_classfile.sh
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rustc --edition 2021 -C opt-level=3 -o "$work/jvm_classfile" bench/jvm_classfile.rs
for jdk in /usr/lib/jvm/java-17-openjdk-* /usr/lib/jvm/temurin-25-jdk-*; do
    [ -x "$jdk/bin/jimage" ] || continue
    name=$(basename "$jdk")
    "$jdk/bin/jimage" extract --include 'regex:/java.base/.*' --dir "$work/$name" "$jdk/lib/modules"
    echo "== $name"
    "$work/jvm_classfile" "$work/$name/java.base"
done
