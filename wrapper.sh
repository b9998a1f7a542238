#!/bin/sh
# tapline exec wrapper (AWS_LAMBDA_EXEC_WRAPPER=/opt/tapline/wrapper.sh).
#
# Lambda runs this script with the runtime's command line as arguments. It adds
# libtapline.so to LD_PRELOAD and execs the runtime (a java runtime with
# -agentpath:<libtapline.so> after the java binary). It never fails the start:
# if the library is missing or tapline is disabled, the runtime runs untouched.
# POSIX sh (dash): no bashisms.

lib="${TAPLINE_LIB:-}"
if [ -z "$lib" ]; then
    here=$(dirname -- "$0")
    if [ -f "$here/libtapline.so" ]; then
        lib="$here/libtapline.so"
    else
        lib="/opt/tapline/libtapline.so"
    fi
fi

if [ "${TAPLINE_DISABLE:-}" != "1" ] && [ -f "$lib" ]; then
    case "$lib" in
        /*) ;;
        *) lib="$(pwd)/$lib" ;;
    esac
    case ":${LD_PRELOAD:-}:" in
        *":$lib:"*) ;;
        *) export LD_PRELOAD="$lib${LD_PRELOAD:+:$LD_PRELOAD}" ;;
    esac
    # A Java runtime: Lambda hands us its command line with the java binary first
    # (/var/lang/bin/java ... AWSLambda handler). -agentpath right after it makes the
    # JVM load the library as its JVMTI agent too (Java does TLS in Java). Not via
    # JAVA_TOOL_OPTIONS: the JVM would print "Picked up JAVA_TOOL_OPTIONS" on stderr.
    # Not twice; not with TAPLINE_JAVA=0.
    if [ "${TAPLINE_JAVA:-}" != "0" ] && [ $# -gt 0 ] && [ "${1##*/}" = "java" ]; then
        agent="-agentpath:$lib"
        for arg in "$@"; do
            case "$arg" in
                -agentpath:*libtapline*) agent="" ;;
            esac
        done
        if [ -n "$agent" ]; then
            java=$1
            shift
            exec "$java" "$agent" "$@"
        fi
    fi
fi

exec "$@"
