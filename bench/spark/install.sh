#!/usr/bin/env bash
# Installs the Apache Spark peers of the side-by-side benchmarks:
#   - a Python virtual environment with pyspark (whose wheel ships every Spark
#     jar, spark-streaming included, so no Maven is needed), and
#   - the Java programs of this directory compiled against those jars.
#
#   bench/spark/install.sh            # venv at ${SPARK_VENV:-$HOME/.cache/engine-bench/spark-venv}
#
# Idempotent: a venv that already has the pinned pyspark is kept, and the
# classes are recompiled only when a .java file is newer than the stamp.
# Any failure (no network to PyPI, no java/javac, ...) prints one line to
# stderr starting with `spark peer unavailable:` and exits 3. Never uses sudo.
set -u -o pipefail

PYSPARK_VERSION="3.5.6"   # pinned: Spark 3.5 line, Scala 2.12, runs on Java 17
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${SPARK_VENV:-$HOME/.cache/engine-bench/spark-venv}"
CLASSES="$VENV/classes"

fail() {
    echo "spark peer unavailable: $*" >&2
    exit 3
}

command -v java >/dev/null 2>&1 || fail "no java on PATH (Java 17 is needed)"
command -v javac >/dev/null 2>&1 || fail "no javac on PATH (a JDK 17 is needed)"
JAVA_MAJOR="$(javac -version 2>&1 | sed -n 's/^javac \([0-9]*\).*/\1/p')"
[ -n "$JAVA_MAJOR" ] && [ "$JAVA_MAJOR" -ge 17 ] || fail "javac is version ${JAVA_MAJOR:-unknown}, 17 or newer is needed"

PYTHON="${PYTHON:-}"
if [ -z "$PYTHON" ]; then
    for p in python3.11 python3; do
        if command -v "$p" >/dev/null 2>&1; then PYTHON="$p"; break; fi
    done
fi
[ -n "$PYTHON" ] || fail "no python3 on PATH"

# 1. The virtual environment with pyspark.
have_pyspark() {
    [ -x "$VENV/bin/python" ] &&
        [ "$("$VENV/bin/python" -c 'import pyspark; print(pyspark.__version__)' 2>/dev/null)" = "$PYSPARK_VERSION" ]
}
if ! have_pyspark; then
    echo "spark install: creating $VENV with pyspark==$PYSPARK_VERSION (about 320 MB download)" >&2
    mkdir -p "$(dirname "$VENV")" || fail "cannot create $(dirname "$VENV")"
    if [ ! -x "$VENV/bin/python" ]; then
        "$PYTHON" -m venv "$VENV" >/dev/null 2>&1 || fail "cannot create a python venv at $VENV ($PYTHON -m venv failed)"
    fi
    LOG="$VENV/pip-install.log"
    "$VENV/bin/python" -m pip install --disable-pip-version-check --no-input --no-cache-dir -q \
        "pyspark==$PYSPARK_VERSION" >"$LOG" 2>&1 ||
        fail "pip install pyspark==$PYSPARK_VERSION failed (no network to PyPI?), see $LOG"
    have_pyspark || fail "pyspark==$PYSPARK_VERSION did not import after pip install, see $LOG"
fi

JARS="$("$VENV/bin/python" -c 'import os, pyspark; print(os.path.join(os.path.dirname(pyspark.__file__), "jars"))' 2>/dev/null)"
[ -d "$JARS" ] || fail "pyspark has no jars directory at ${JARS:-?}"
ls "$JARS"/spark-streaming_*.jar >/dev/null 2>&1 || fail "no spark-streaming jar in $JARS"
echo "$JARS" >"$VENV/jars-dir"

# 2. The Java programs.
STAMP="$CLASSES/.compiled"
need_compile=1
if [ -f "$STAMP" ]; then
    need_compile=0
    for f in "$HERE"/*.java; do
        [ "$f" -nt "$STAMP" ] && need_compile=1
    done
fi
if [ "$need_compile" = 1 ]; then
    echo "spark install: compiling $(cd "$HERE" && ls *.java | tr '\n' ' ')into $CLASSES" >&2
    rm -rf "$CLASSES" && mkdir -p "$CLASSES" || fail "cannot create $CLASSES"
    if ! javac --release 17 -nowarn -encoding UTF-8 -cp "$JARS/*" -d "$CLASSES" "$HERE"/*.java \
        >"$VENV/javac.log" 2>&1; then
        fail "javac failed, see $VENV/javac.log"
    fi
    touch "$STAMP"
fi

echo "spark install: ok ($VENV, pyspark $PYSPARK_VERSION)" >&2
exit 0
