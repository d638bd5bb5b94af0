//! The Yahoo Streaming Benchmark's filter and campaign lookup through the
//! binary (`--where`, `--lookup`), against a direct count.

use std::collections::BTreeMap;
use std::path::Path;

use crate::cli::{assert_usage_error, csv_rows};
use crate::util::{p, run, stderr, stdout, TempDir};

/// `"name":"text"` of a generated YSB line (no escapes in generated data).
fn ysb_member<'a>(line: &'a str, name: &str) -> &'a str {
    let start = line.find(&format!("\"{name}\":\"")).unwrap() + name.len() + 4;
    let len = line[start..].find('"').unwrap();
    &line[start..start + len]
}

#[test]
fn ysb_filter_and_campaign_lookup_equal_a_direct_count() {
    let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../datasets/samples");
    let events = samples.join("ysb.ndjson");
    let ads = samples.join("ysb-campaigns.csv");
    let campaign_of: BTreeMap<String, String> = std::fs::read_to_string(&ads)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| {
            let (ad, campaign) = l.split_once(',').unwrap();
            (ad.to_owned(), campaign.to_owned())
        })
        .collect();
    let mut expected: BTreeMap<(i64, String), u64> = BTreeMap::new();
    let mut views = 0;
    for line in std::fs::read_to_string(&events).unwrap().lines() {
        if ysb_member(line, "event_type") != "view" {
            continue;
        }
        views += 1;
        let t: i64 = ysb_member(line, "event_time").parse().unwrap();
        let campaign = &campaign_of[ysb_member(line, "ad_id")];
        *expected
            .entry(((t / 10_000 + 1) * 10_000, campaign.clone()))
            .or_default() += 1;
    }
    assert!(views > 50 && expected.len() > 20, "a meaningful sample");
    // The YSB job on the sample, through the lookup table `table`.
    let ysb = |table: &Path, extra: &[&str]| {
        let args = [
            "--input",
            p(&events),
            "--key-col",
            "ad_id",
            "--time-col",
            "event_time",
            "--where",
            "event_type=view",
            "--lookup",
            p(table),
            "--batch",
            "10s",
            "--output",
            "csv",
        ];
        run(&[&args[..], extra].concat())
    };
    let out = ysb(&ads, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let (header, rows) = csv_rows(&stdout(&out));
    assert_eq!(header, ["window_end", "key", "count"]);
    let got: BTreeMap<(i64, String), u64> = rows
        .into_iter()
        .map(|(k, v)| (k, v[0].parse().unwrap()))
        .collect();
    assert_eq!(got, expected);

    // An ad missing from the table: its events are dropped and counted.
    let dir = TempDir::new("ysb");
    let text = std::fs::read_to_string(&events).unwrap();
    let views_of = |ad: &str| {
        text.lines()
            .filter(|l| ysb_member(l, "event_type") == "view" && ysb_member(l, "ad_id") == ad)
            .count()
    };
    let dropped_ad = text
        .lines()
        .map(|l| ysb_member(l, "ad_id"))
        .find(|ad| views_of(ad) > 0)
        .unwrap();
    let dropped = views_of(dropped_ad);
    let table: String = std::fs::read_to_string(&ads)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with(dropped_ad))
        .flat_map(|l| [l, "\n"])
        .collect();
    let short = dir.file("short.csv", table.as_bytes());
    let stats = dir.0.join("stats.json");
    let out = ysb(&short, &["--stats-json", p(&stats)]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json = std::fs::read_to_string(&stats).unwrap();
    assert!(
        json.contains(&format!("\"unmatched\":{dropped},")),
        "{dropped} expected: {json}"
    );
    assert!(stderr(&out).contains(&format!("dropped {dropped} events")));
}

#[test]
fn a_where_that_matches_nothing_is_reported() {
    let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../datasets/samples");
    let out = run(&[
        "--input",
        p(&samples.join("ysb.ndjson")),
        "--key-col",
        "ad_id",
        "--where",
        "event_tpye=view",
        "--rate",
        "1000",
        "--output",
        "csv",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no record has event_tpye = \"view\" (--where)"),
        "{}",
        stderr(&out)
    );
    // A filter that matches stays quiet.
    let out = run(&[
        "--input",
        p(&samples.join("ysb.ndjson")),
        "--key-col",
        "ad_id",
        "--where",
        "event_type=view",
        "--rate",
        "1000",
        "--output",
        "csv",
    ]);
    assert!(!stderr(&out).contains("no record has"), "{}", stderr(&out));
}

#[test]
fn where_and_lookup_mistakes_exit_2_naming_the_flag() {
    let dir = TempDir::new("where");
    let csv = dir.file("e.csv", b"ts,key,value\n1,a,2\n");
    let bad_table = dir.file("t.csv", b"only_one_column\n");
    for (args, needle) in [
        (
            vec!["--key-col", "key", "--where", "novalue"],
            "--where novalue",
        ),
        (
            vec!["--key-col", "key", "--where", "nope=1"],
            "unknown column `nope` (--where)",
        ),
        (
            vec!["--key-col", "key", "--lookup", "/no/such.csv"],
            "/no/such.csv",
        ),
        (
            vec!["--key-col", "key", "--lookup", p(&bad_table)],
            "two columns",
        ),
        (
            vec!["--job", "wordcount", "--where", "a=b"],
            "--job aggregate",
        ),
    ] {
        assert_usage_error(&[&["--input", p(&csv)][..], &args].concat(), needle);
    }
}

#[test]
fn ysb_with_the_original_generators_spacing_gives_the_same_windows() {
    use datasets::Generator;
    // The original benchmark's events have a space after every colon and
    // comma; the parser's fast path takes both spellings (and CRLF).
    let mut stream = datasets::YsbStream::new(&datasets::YsbConfig {
        rate: 2_000,
        ..datasets::YsbConfig::default()
    });
    let mut compact = Vec::new();
    for _ in 0..30_000 {
        stream.append_record(&mut compact);
    }
    let mut table = Vec::new();
    stream.write_campaigns_csv(&mut table).unwrap();
    let text = String::from_utf8(compact).unwrap();
    assert!(text.contains(r#""ad_id":""#) && !text.contains(": "));
    let spaced = text.replace("\":\"", "\": \"").replace("\",\"", "\", \"");
    // Seven members: seven colons and six commas.
    assert_eq!(spaced.len(), text.len() + 13 * 30_000);
    let crlf = spaced.replace('\n', "\r\n");
    let dir = TempDir::new("ysb-spellings");
    let table = dir.file("campaigns.csv", &table);
    let run_on = |name: &str, events: &str| {
        let input = dir.file(name, events.as_bytes());
        let out = run(&[
            "--input",
            p(&input),
            "--key-col",
            "ad_id",
            "--time-col",
            "event_time",
            "--where",
            "event_type=view",
            "--lookup",
            p(&table),
            "--batch",
            "10s",
            "--threads",
            "2",
            "--output",
            "csv",
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(
            stderr(&out).contains("skipped 0 malformed"),
            "{}",
            stderr(&out)
        );
        stdout(&out)
    };
    let expected = run_on("compact.ndjson", &text);
    assert!(expected.lines().count() > 100, "{expected}");
    assert_eq!(run_on("spaced.ndjson", &spaced), expected);
    assert_eq!(run_on("crlf.ndjson", &crlf), expected);
}
