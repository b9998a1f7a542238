#!/bin/sh
# tapline exec wrapper (AWS_LAMBDA_EXEC_WRAPPER=/opt/tapline/wrapper.sh).
#
# Lambda runs this script with the runtime's command line as arguments. It adds
# libtapline.so to LD_PRELOAD and execs the runtime. It never fails the start:
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
    case ":${LD_PRELOAD:-}:" in
        *":$lib:"*) ;;
        *) export LD_PRELOAD="$lib${LD_PRELOAD:+:$LD_PRELOAD}" ;;
    esac
fi

exec "$@"
