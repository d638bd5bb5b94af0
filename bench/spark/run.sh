#!/usr/bin/env bash
# Runs one Apache Spark peer of the side-by-side benchmarks.
#
#   bench/spark/run.sh dstream    --input FILE --cores N [--batch-ms 1000 --window-s 30 --slide-s 1 ...]
#   bench/spark/run.sh structured --input FILE --cores N [--window-s 30 --slide-s 1 --rate 1000000 ...]
#
# Defaults filled in when not given: --out spark-MODE.csv, --checkpoint
# $TMPDIR/spark-peer-checkpoints. Other arguments are passed to the program
# (see DStreamWordCount.java / StructuredWordCount.java). Installs the peer
# first when needed (install.sh; needs PyPI once, then works offline). When
# the peer cannot be had: one line `spark peer unavailable: ...` on stderr and
# exit status 3.
#
# Environment: SPARK_VENV (venv location), SPARK_HEAP (default 4g),
# SPARK_CONF ("k=v k=v" extra Spark settings), JAVA (default java).
set -u -o pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${SPARK_VENV:-$HOME/.cache/engine-bench/spark-venv}"
export SPARK_VENV="$VENV"

usage() {
    echo "usage: $0 dstream|structured --input FILE --cores N [args...]" >&2
    exit 2
}
[ $# -ge 1 ] || usage
case "$1" in
    dstream) MAIN=DStreamWordCount ;;
    structured) MAIN=StructuredWordCount ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) usage ;;
esac
MODE="$1"
shift

# Install (or recompile) when needed; install.sh prints the unavailable line.
"$HERE/install.sh" 2>"${TMPDIR:-/tmp}/spark-peer-install.$$" || {
    rc=$?
    grep '^spark peer unavailable:' "${TMPDIR:-/tmp}/spark-peer-install.$$" >&2 ||
        echo "spark peer unavailable: install.sh failed (exit $rc)" >&2
    rm -f "${TMPDIR:-/tmp}/spark-peer-install.$$"
    exit 3
}
rm -f "${TMPDIR:-/tmp}/spark-peer-install.$$"
JARS="$(cat "$VENV/jars-dir")"
JAVA="${JAVA:-java}"
export SPARK_LOCAL_IP=127.0.0.1

CORES=2
HAVE_OUT=0
HAVE_CKPT=0
prev=""
for arg in "$@"; do
    case "$prev" in --cores) CORES="$arg" ;; esac
    case "$arg" in
        --cores=*) CORES="${arg#--cores=}" ;;
        --out|--out=*) HAVE_OUT=1 ;;
        --checkpoint|--checkpoint=*) HAVE_CKPT=1 ;;
    esac
    prev="$arg"
done
EXTRA=()
[ "$HAVE_OUT" = 1 ] || EXTRA+=(--out "spark-$MODE.csv")
[ "$HAVE_CKPT" = 1 ] || EXTRA+=(--checkpoint "${TMPDIR:-/tmp}/spark-peer-checkpoints")

# Spark settings as system properties (SparkConf reads spark.*).
PROPS=(
    "-Dspark.master=local[$CORES]"
    "-Dspark.ui.enabled=false"
    "-Dspark.sql.shuffle.partitions=$CORES"
    "-Dspark.default.parallelism=$CORES"
    "-Dspark.serializer=org.apache.spark.serializer.KryoSerializer"
    "-Dspark.driver.host=127.0.0.1"
    "-Dspark.driver.bindAddress=127.0.0.1"
    "-Dspark.sql.streaming.ui.enabled=false"
)
for kv in ${SPARK_CONF:-}; do PROPS+=("-D$kv"); done

# What Spark 3.5 needs on Java 17 (the list of its launcher's
# JavaModuleOptions).
OPENS=(
    -XX:+IgnoreUnrecognizedVMOptions
    --add-opens=java.base/java.lang=ALL-UNNAMED
    --add-opens=java.base/java.lang.invoke=ALL-UNNAMED
    --add-opens=java.base/java.lang.reflect=ALL-UNNAMED
    --add-opens=java.base/java.io=ALL-UNNAMED
    --add-opens=java.base/java.net=ALL-UNNAMED
    --add-opens=java.base/java.nio=ALL-UNNAMED
    --add-opens=java.base/java.util=ALL-UNNAMED
    --add-opens=java.base/java.util.concurrent=ALL-UNNAMED
    --add-opens=java.base/java.util.concurrent.atomic=ALL-UNNAMED
    --add-opens=java.base/jdk.internal.ref=ALL-UNNAMED
    --add-opens=java.base/sun.nio.ch=ALL-UNNAMED
    --add-opens=java.base/sun.nio.cs=ALL-UNNAMED
    --add-opens=java.base/sun.security.action=ALL-UNNAMED
    --add-opens=java.base/sun.util.calendar=ALL-UNNAMED
    --add-exports=java.base/sun.nio.ch=ALL-UNNAMED
    -Djdk.reflect.useDirectMethodHandle=false
    -Dio.netty.tryReflectionSetAccessible=true
)

exec "$JAVA" -Xms1g -Xmx"${SPARK_HEAP:-4g}" "${OPENS[@]}" \
    -Dlog4j2.configurationFile="file:$HERE/log4j2.properties" \
    "${PROPS[@]}" \
    -cp "$VENV/classes:$JARS/*" "$MAIN" --cores "$CORES" "${EXTRA[@]}" "$@"
