#!/usr/bin/env bash
# A two-stage WordCount over Kafka with 2 + 2 engine processes on this
# machine, checked against one process doing the whole job.
#
#   bench/kafka/two-stage-wordcount.sh [LINES]
#
# Needs: a Kafka broker at $BROKERS, or tansu (the project's test broker:
# $TANSU_BIN, or ~/.cache/tansu/*/bin/tansu, started here on $PORT). Builds
# the engine and bench's kafka-produce with the `kafka` feature.
#
# On N machines the commands are the same: run the `partial` command on as
# many machines as you like (one consumer group, `partial`, shares the
# `lines` partitions), and the `final` command on as many (group `final`
# shares the `partials` partitions); point --kafka-brokers at the cluster.
# Drop --kafka-until-end to keep them running.
set -euo pipefail
cd "$(dirname "$0")/../.."

LINES="${1:-20000}"
PORT="${PORT:-19092}"
work="$(mktemp -d)"
broker_pid=""
cleanup() {
    [ -n "$broker_pid" ] && kill "$broker_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

cargo build --release -p engine --features kafka --quiet
cargo build --release -p bench --features kafka --bin kafka-produce --quiet
engine="${CARGO_TARGET_DIR:-target}/release/engine"
produce="${CARGO_TARGET_DIR:-target}/release/kafka-produce"

if [ -z "${BROKERS:-}" ]; then
    tansu="${TANSU_BIN:-$(ls "$HOME"/.cache/tansu/*/bin/tansu 2>/dev/null | head -1)}"
    [ -x "$tansu" ] || { echo "no broker: set BROKERS=host:port or TANSU_BIN" >&2; exit 2; }
    "$tansu" broker --listener-url "tcp://127.0.0.1:$PORT" \
        --advertised-listener-url "tcp://127.0.0.1:$PORT" \
        --storage-engine memory://tansu/ >"$work/broker.log" 2>&1 &
    broker_pid=$!
    BROKERS="127.0.0.1:$PORT"
    sleep 1
    for topic in lines partials; do
        "$tansu" topic create "$topic" --partitions 4 --broker "tcp://$BROKERS" >/dev/null
    done
fi
echo "broker: $BROKERS"

# The input: lines of words, spread over the 4 partitions of `lines` with no
# regard for their words (one record per batch: tansu cannot fetch from the
# middle of a batch).
cargo run --release -q -p datasets -- words --out "$work/lines.txt" --records "$LINES" \
    --seed 7 --vocabulary 2000
"$produce" --brokers "$BROKERS" --topic lines --file "$work/lines.txt" --one-per-batch
echo "produced $LINES lines"

job=(--job wordcount --time-col @timestamp --window 4s --slide 1s --kafka-until-end
     --kafka-option session.timeout.ms=6000)

# One process doing it all: the reference.
"$engine" run --kafka-brokers "$BROKERS" --kafka-topic lines "${job[@]}" \
    --output csv --quiet > "$work/one.csv"

# Stage 1, two processes in group `partial`: each pane's partial counts,
# keyed by word, into `partials`.
partial=(run --kafka-brokers "$BROKERS" --kafka-topic lines --kafka-group partial
         --stage partial --output kafka --kafka-output-topic partials
         --kafka-option batch.num.messages=1 "${job[@]}" --quiet)
"$engine" "${partial[@]}" & p1=$!
"$engine" "${partial[@]}" & p2=$!
wait "$p1" "$p2"

# Stage 2, two processes in group `final`: the partials merged into windows.
final=(run --kafka-brokers "$BROKERS" --kafka-topic partials --kafka-group final
       --stage final "${job[@]}" --output csv --quiet)
"$engine" "${final[@]}" > "$work/final-1.csv" & f1=$!
"$engine" "${final[@]}" > "$work/final-2.csv" & f2=$!
wait "$f1" "$f2"

tail -n +2 "$work/one.csv" | sort > "$work/one.sorted"
cat "$work/final-1.csv" "$work/final-2.csv" | grep -v '^window_end,' | sort > "$work/two.sorted"
rows=$(wc -l < "$work/one.sorted")
if cmp -s "$work/one.sorted" "$work/two.sorted"; then
    echo "two stages, 2 + 2 processes: the same $rows rows as one process"
else
    echo "MISMATCH between the two-stage and the one-process word count:" >&2
    diff "$work/one.sorted" "$work/two.sorted" | head >&2
    exit 1
fi
