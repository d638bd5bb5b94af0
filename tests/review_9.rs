//! Findings of the review of issue 9 (ids released and reused, one windowing
//! core), each a regression test of a bug the review found.

use std::fmt::Write as _;

use crate::util::{p, run, stat, stderr, stdout, TempDir};

/// `--lookup` over more keys than the reclaim threshold, with a table in
/// which a key maps to itself (`C,C`: the raw key and the group share an
/// id). After the first reclaim the raw key `C` is the only high id held;
/// the mapper resolves every id up to it, caching "no group" for the free
/// ids below, and the new keys that later get those ids are dropped as
/// unmatched although the table has them.
#[test]
fn lookup_keys_given_reused_ids_are_not_dropped_as_unmatched() {
    let dir = TempDir::new("review9-lookup-reuse");
    let mut table = String::from("key,group\n");
    for i in 0..70_000 {
        writeln!(table, "r{i},A").unwrap();
    }
    for i in 1..10 {
        writeln!(table, "n{i},A").unwrap();
    }
    table.push_str("C,C\n");
    let table = dir.file("table.csv", table.as_bytes());
    // Three 16 MiB segments: 70 000 raw keys then `C` (reclaimed after the
    // first), `C` and `n1` (resolves the free ids), `C` and `n2`…`n9`.
    let pad = "x".repeat(180);
    let mut input = String::new();
    for i in 0..70_000 {
        writeln!(input, r#"{{"k":"r{i}","t":0,"p":"{pad}"}}"#).unwrap();
    }
    let filler = |input: &mut String, up_to: usize| {
        while input.len() < up_to {
            writeln!(input, r#"{{"k":"C","t":0,"p":"{pad}"}}"#).unwrap();
        }
    };
    filler(&mut input, 24 << 20);
    input.push_str("{\"k\":\"n1\",\"t\":0}\n");
    filler(&mut input, 40 << 20);
    for i in 2..10 {
        writeln!(input, r#"{{"k":"n{i}","t":0}}"#).unwrap();
    }
    let c_lines = input
        .lines()
        .filter(|l| l.starts_with(r#"{"k":"C""#))
        .count();
    let input = dir.file("events.ndjson", input.as_bytes());
    let stats = dir.path("stats.json");
    let out = run(&[
        "--input",
        p(&input),
        "--key-col",
        "k",
        "--time-col",
        "t",
        "--lookup",
        p(&table),
        "--output",
        "csv",
        "--quiet",
        "--stats-json",
        p(&stats),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        format!("window_end,key,count\n1000,A,70009\n1000,C,{c_lines}\n")
    );
    let json = std::fs::read_to_string(&stats).unwrap();
    assert_eq!(stat(&json, "unmatched"), 0.0);
}

/// `--keep-empty --key-ttl` against a hand-computed expectation (1 s
/// batches, 2 s windows sliding by 1 s, TTL 3 s). A key kept with count 0
/// leaves the output and the state at the first window end `t` with
/// `(last pane + 1) · 1 s <= t − 3 s`: `b` (last event at 500 ms, pane
/// ending 1 000) leaves at 4 000; `a` (2 500, pane ending 3 000) is 0 at
/// 5 000 and leaves exactly at 6 000, the boundary; `c` comes and goes.
#[test]
fn keep_empty_key_ttl_rows_match_a_hand_computed_expectation() {
    let dir = TempDir::new("review9-key-ttl");
    let input = dir.file(
        "ttl.csv",
        b"ts,key,value\n0,a,1\n500,b,2\n2500,a,3\n6000,c,4\n9000,c,5\n",
    );
    let expected = "window_end,key,count,sum,max\n\
                    1000,a,1,1,1\n1000,b,1,2,2\n\
                    2000,a,1,1,1\n2000,b,1,2,2\n\
                    3000,a,1,3,3\n3000,b,0,0,\n\
                    4000,a,1,3,3\n\
                    5000,a,0,0,\n\
                    7000,c,1,4,4\n\
                    8000,c,1,4,4\n\
                    9000,c,0,0,\n\
                    10000,c,1,5,5\n\
                    11000,c,1,5,5\n";
    for threads in ["1", "3"] {
        let out = run(&[
            "--input",
            p(&input),
            "--time-col",
            "ts",
            "--key-col",
            "key",
            "--value-col",
            "value",
            "--batch",
            "1s",
            "--window",
            "2s",
            "--slide",
            "1s",
            "--keep-empty",
            "--key-ttl",
            "3s",
            "--agg",
            "count,sum,max",
            "--output",
            "csv",
            "--threads",
            threads,
            "--quiet",
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(stdout(&out), expected, "--threads {threads}");
    }
}
