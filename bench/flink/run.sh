#!/usr/bin/env bash
# Runs one Apache Flink peer job of the side-by-side benchmarks.
#
#   bench/flink/run.sh datastream --workload wordcount --input FILE --out DIR --parallelism N [--rate R]
#   bench/flink/run.sh sql        --workload aggregate --input FILE --out DIR --parallelism N
#
# Other arguments go to the program (FlinkPeer.java; `--help` lists them).
# Installs the peer first when needed (install.sh; needs PyPI once, then
# works offline). When the peer cannot be had: one line
# `flink peer unavailable: ...` on stderr and exit status 3.
#
# Environment: FLINK_VENV (venv location), FLINK_HEAP (default 4g),
# FLINK_JAVA_OPTS (extra JVM flags, e.g. a flight recording), JAVA (default
# java).
set -u -o pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${FLINK_VENV:-$HOME/.cache/engine-bench/flink-venv}"
export FLINK_VENV="$VENV"

usage() {
    echo "usage: $0 datastream|sql --workload wordcount|aggregate --input FILE --out DIR [args...]" >&2
    exit 2
}
[ $# -ge 1 ] || usage
case "$1" in
    datastream|sql) API="$1" ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) usage ;;
esac
shift

# Install (or recompile) when needed; install.sh prints the unavailable line.
LOG="${TMPDIR:-/tmp}/flink-peer-install.$$"
"$HERE/install.sh" 2>"$LOG" || {
    rc=$?
    grep '^flink peer unavailable:' "$LOG" >&2 ||
        echo "flink peer unavailable: install.sh failed (exit $rc)" >&2
    rm -f "$LOG"
    exit 3
}
rm -f "$LOG"
JARS="$(cat "$VENV/jars-dir")"
JAVA="${JAVA:-java}"

# What Flink needs on Java 17 (its default env.java.opts.all).
OPENS=(
    --add-exports=java.base/sun.net.util=ALL-UNNAMED
    --add-exports=java.rmi/sun.rmi.registry=ALL-UNNAMED
    --add-exports=jdk.compiler/com.sun.tools.javac.api=ALL-UNNAMED
    --add-exports=jdk.compiler/com.sun.tools.javac.file=ALL-UNNAMED
    --add-exports=jdk.compiler/com.sun.tools.javac.parser=ALL-UNNAMED
    --add-exports=jdk.compiler/com.sun.tools.javac.tree=ALL-UNNAMED
    --add-exports=jdk.compiler/com.sun.tools.javac.util=ALL-UNNAMED
    --add-exports=java.security.jgss/sun.security.krb5=ALL-UNNAMED
    --add-opens=java.base/java.lang=ALL-UNNAMED
    --add-opens=java.base/java.net=ALL-UNNAMED
    --add-opens=java.base/java.io=ALL-UNNAMED
    --add-opens=java.base/java.nio=ALL-UNNAMED
    --add-opens=java.base/sun.nio.ch=ALL-UNNAMED
    --add-opens=java.base/java.lang.reflect=ALL-UNNAMED
    --add-opens=java.base/java.text=ALL-UNNAMED
    --add-opens=java.base/java.time=ALL-UNNAMED
    --add-opens=java.base/java.util=ALL-UNNAMED
    --add-opens=java.base/java.util.concurrent=ALL-UNNAMED
    --add-opens=java.base/java.util.concurrent.atomic=ALL-UNNAMED
    --add-opens=java.base/java.util.concurrent.locks=ALL-UNNAMED
)

HEAP="${FLINK_HEAP:-4g}"
# shellcheck disable=SC2086 # FLINK_JAVA_OPTS is a list of flags
exec "$JAVA" -Xms"$HEAP" -Xmx"$HEAP" "${OPENS[@]}" ${FLINK_JAVA_OPTS:-} \
    -Dlog4j2.configurationFile="file:$HERE/log4j2.properties" \
    -cp "$VENV/classes:$JARS/*" FlinkPeer --api "$API" "$@"
