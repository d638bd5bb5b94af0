#!/usr/bin/env bash
# Installs the Apache Flink peer of the side-by-side benchmarks:
#   - a Python virtual environment with apache-flink-libraries, the wheel that
#     `pip install apache-flink` pulls in for Flink's jars
#     (site-packages/pyflink/lib: flink-dist, the table planner, connectors);
#     the Python API's own dependencies (apache-beam, pandas, pyarrow, ...)
#     are not needed by Java programs and are not installed, and
#   - the Java programs of this directory compiled against those jars.
#
#   bench/flink/install.sh            # venv at ${FLINK_VENV:-$HOME/.cache/engine-bench/flink-venv}
#
# Idempotent: a venv that already has the pinned version is kept, and the
# classes are recompiled only when a .java file is newer than the stamp.
# Any failure (no network to PyPI, no java/javac, ...) prints one line to
# stderr starting with `flink peer unavailable:` and exits 3. Never uses sudo.
set -u -o pipefail

FLINK_VERSION="2.3.0"   # pinned: the newest Flink release on PyPI when written; runs on Java 17
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${FLINK_VENV:-$HOME/.cache/engine-bench/flink-venv}"
CLASSES="$VENV/classes"

fail() {
    echo "flink peer unavailable: $*" >&2
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

# 1. The virtual environment with Flink's jars.
jars_version() {
    "$VENV/bin/python" - <<'PY' 2>/dev/null
import glob, os, pyflink.version
lib = os.path.join(os.path.dirname(pyflink.version.__file__), "lib")
dist = glob.glob(os.path.join(lib, "flink-dist-*.jar"))
print(os.path.basename(dist[0])[len("flink-dist-"):-len(".jar")] if dist else "")
PY
}
have_flink() {
    [ -x "$VENV/bin/python" ] && [ "$(jars_version)" = "$FLINK_VERSION" ]
}
if ! have_flink; then
    echo "flink install: creating $VENV with apache-flink-libraries==$FLINK_VERSION (about 310 MB download)" >&2
    mkdir -p "$(dirname "$VENV")" || fail "cannot create $(dirname "$VENV")"
    if [ ! -x "$VENV/bin/python" ]; then
        "$PYTHON" -m venv "$VENV" >/dev/null 2>&1 || fail "cannot create a python venv at $VENV ($PYTHON -m venv failed)"
    fi
    LOG="$VENV/pip-install.log"
    "$VENV/bin/python" -m pip install --disable-pip-version-check --no-input --no-cache-dir -q \
        "apache-flink-libraries==$FLINK_VERSION" >"$LOG" 2>&1 ||
        fail "pip install apache-flink-libraries==$FLINK_VERSION failed (no network to PyPI?), see $LOG"
    have_flink || fail "apache-flink-libraries==$FLINK_VERSION has no flink-dist-$FLINK_VERSION.jar after pip install, see $LOG"
fi

# pyflink is a namespace package (no __init__.py): locate it by its version.py.
JARS="$("$VENV/bin/python" -c 'import os, pyflink.version as v; print(os.path.join(os.path.dirname(v.__file__), "lib"))' 2>/dev/null)"
[ -d "$JARS" ] || fail "pyflink has no lib directory at ${JARS:-?}"
ls "$JARS"/flink-table-planner-loader-*.jar >/dev/null 2>&1 || fail "no flink-table-planner-loader jar in $JARS"
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
    echo "flink install: compiling $(cd "$HERE" && ls *.java | tr '\n' ' ')into $CLASSES" >&2
    rm -rf "$CLASSES" && mkdir -p "$CLASSES" || fail "cannot create $CLASSES"
    if ! javac --release 17 -nowarn -encoding UTF-8 -cp "$JARS/*" -d "$CLASSES" "$HERE"/*.java \
        >"$VENV/javac.log" 2>&1; then
        fail "javac failed, see $VENV/javac.log"
    fi
    touch "$STAMP"
fi

echo "flink install: ok ($VENV, Flink $FLINK_VERSION)" >&2
exit 0
