//! The fast path against the general scanner, at every SIMD level this CPU
//! has (the portable one included), on random and adversarial chunks.

use proptest::prelude::*;

use super::fast::{classify_for_tests, scan, time, Line, Wanted, WINDOW};
use super::general::members;
use super::{rows_at, Names, Rows};
use crate::batch::Column;
use crate::dictionary::Dictionary;
use crate::ingest::{lines, parse_time, with_cache, ParseBuffer};
use crate::simd::Level;

/// The levels this CPU runs, narrowest first (always the portable one).
fn levels() -> Vec<Level> {
    let levels: Vec<Level> = Level::ALL
        .into_iter()
        .filter(|l| l.is_supported())
        .collect();
    assert_eq!(levels[0], Level::Portable);
    levels
}

type Values = [Option<Vec<u8>>; 4];

/// How `scan` hands over each line of `chunk` at `level`: its values when
/// plain, else the line itself.
fn scanned(
    level: Level,
    chunk: &[u8],
    names: [Option<&str>; 4],
    max_line_bytes: usize,
) -> Vec<Result<Values, Vec<u8>>> {
    let wanted = Wanted::new(names);
    let mut got = Vec::new();
    scan(level, chunk, &wanted, max_line_bytes, |line| {
        got.push(match line {
            Line::Fast(values) => Ok(values.map(|v| v.map(<[u8]>::to_vec))),
            Line::Slow(raw) => Err(raw.to_vec()),
        });
        Ok::<(), ()>(())
    })
    .unwrap();
    got
}

/// Checks `scan` on `chunk` at every level: the lines are those of
/// [`lines`], each handed over whole or, when plain, valid (UTF-8, not too
/// long, accepted by the general scanner) with the general scanner's
/// values; every level takes the same lines. Returns how many are plain.
fn check_chunk(chunk: &[u8], names: [Option<&str>; 4], max_line_bytes: usize) -> usize {
    let expected: Vec<&[u8]> = lines(chunk).collect();
    let mut first: Option<Vec<Result<Values, Vec<u8>>>> = None;
    for level in levels() {
        let got = scanned(level, chunk, names, max_line_bytes);
        assert_eq!(got.len(), expected.len(), "{level:?}: line count");
        for (line, raw) in got.iter().zip(&expected) {
            match line {
                Err(whole) => assert_eq!(whole, raw, "{level:?}"),
                Ok(values) => {
                    let text = std::str::from_utf8(raw)
                        .unwrap_or_else(|_| panic!("{level:?}: plain but not UTF-8: {raw:?}"));
                    assert!(raw.len() <= max_line_bytes, "{level:?}: too long {text}");
                    let general = members(text, names)
                        .unwrap_or_else(|e| panic!("{level:?}: plain but invalid ({e}): {text}"));
                    let general = [0, 1, 2, 3]
                        .map(|i| general[i].as_ref().map(|v| v.text().as_bytes().to_vec()));
                    assert_eq!(values, &general, "{level:?}: {text}");
                }
            }
        }
        match &first {
            None => first = Some(got),
            Some(first) => assert_eq!(first, &got, "{level:?} takes other lines"),
        }
    }
    first.unwrap().iter().filter(|l| l.is_ok()).count()
}

/// The values of `line` when the fast path takes it (at every level, with
/// the same values), `None` when it leaves it to the general scanner.
pub(super) fn plain_values(line: &str, names: [Option<&str>; 4]) -> Option<Values> {
    let chunk = format!("{line}\n");
    check_chunk(chunk.as_bytes(), names, 1 << 20);
    let mut got = scanned(Level::Portable, chunk.as_bytes(), names, 1 << 20);
    got.pop().and_then(Result::ok)
}

/// An empty buffer, with a value column when `fields` has a value.
fn fresh(fields: &Names) -> ParseBuffer {
    let mut out = ParseBuffer::default();
    if fields.value.is_some() {
        out.values = Some(Column::F64(Vec::new()));
    }
    out
}

/// What the parser makes of `chunk` with the general scanner alone.
fn general_rows(
    chunk: &[u8],
    fields: &Names,
    max_line_bytes: usize,
    dict: &Dictionary,
) -> ParseBuffer {
    let mut out = fresh(fields);
    with_cache(dict, |cache| {
        let mut rows = Rows {
            fields,
            dict,
            cache,
            out: &mut out,
            max_line_bytes,
        };
        for raw in lines(chunk) {
            let index = rows.out.lines;
            rows.out.lines += 1;
            rows.general(index, raw).unwrap();
        }
    });
    out
}

/// Checks that the parser makes of `chunk` at every level exactly what the
/// general scanner alone makes of it: events, counts and errors.
fn check_rows(chunk: &[u8], fields: &Names, max_line_bytes: usize) {
    let dict = Dictionary::new();
    let expected = general_rows(chunk, fields, max_line_bytes, &dict);
    for level in levels() {
        let mut out = fresh(fields);
        rows_at(level, chunk, fields, max_line_bytes, &dict, &mut out).unwrap();
        assert_eq!(
            out,
            expected,
            "{level:?}: {}",
            String::from_utf8_lossy(chunk)
        );
    }
}

/// Bytes that make a line unusual, or break it.
const ODD: &[&[u8]] = &[
    b"\"",
    b"\\",
    b":",
    b",",
    b"{",
    b"}",
    b"[",
    b"]",
    b" ",
    b"  ",
    b"\t",
    b"\r",
    b"\n",
    b"\x01",
    b"\x1f",
    b"\x7f",
    b"0",
    b"-",
    b"n",
    b"u",
    b"\\u00e9",
    b"\\\"",
    b"\xc3\xa9",
    b"\xff",
    b"\xc3",
    b"null",
    b"\":\"",
    b"\",\"",
    b"\"}",
    b"\xef\xbb\xbf",
];

const NAMES: [&str; 12] = [
    "ad_id",
    "event_type",
    "event_time",
    "v",
    "user_id",
    "ip_address",
    "",
    "ké",
    "event_tim",
    "a member name longer than sixteen bytes",
    "a member name longer than sixteen bytez",
    "event_timeevent_timeevent_timeevent_timeevent_timeevent_timeevent_time",
];

const VALUES: [&str; 16] = [
    "\"view\"",
    "\"click\"",
    "\"\"",
    "\"1700000000000\"",
    "1700000000123",
    "\"0b5d651e-735a-4ee2-977b-dee7e18b678e\"",
    "\"é ü\"",
    "12",
    "-3.5e2",
    "null",
    "true",
    "false",
    "\"a, b: c}\"",
    "\"0\"",
    "[1, {\"v\": 2}]",
    "{}",
];

/// A line of members in the compact or the spaced spelling, now and then
/// with other spacing, then now and then broken or made unusual by a few
/// edits with [`ODD`] bytes.
fn random_line(rng: &mut datasets::Rng, spaced: bool) -> Vec<u8> {
    let pick = |rng: &mut datasets::Rng, n: usize| rng.below(n as u64) as usize;
    let (colon, comma) = match rng.below(20) {
        0 => (" : ", " ,  "),
        1 => (":  ", ",\t"),
        _ if spaced => (": ", ", "),
        _ => (":", ","),
    };
    let mut line = String::from(if rng.below(30) == 0 { " {" } else { "{" });
    let members = pick(rng, 9);
    // Mostly distinct names (a wanted name given twice is malformed) and
    // strings (a nested value is not plain).
    let mut names = NAMES;
    for i in (1..names.len()).rev() {
        names.swap(i, pick(rng, i + 1));
    }
    for (m, name) in names.iter().enumerate().take(members) {
        if m > 0 {
            line.push_str(comma);
        }
        line.push('"');
        line.push_str(if rng.below(10) == 0 {
            NAMES[pick(rng, NAMES.len())]
        } else {
            name
        });
        line.push('"');
        line.push_str(colon);
        line.push_str(if rng.below(3) == 0 {
            VALUES[pick(rng, VALUES.len())]
        } else {
            VALUES[pick(rng, 7)]
        });
    }
    line.push_str(if rng.below(30) == 0 { "} " } else { "}" });
    let mut line = line.into_bytes();
    if rng.below(3) == 0 {
        for _ in 0..=rng.below(3) {
            let at = pick(rng, line.len() + 1);
            match rng.below(3) {
                0 if at < line.len() => drop(line.remove(at)),
                1 if at < line.len() => {
                    line.splice(at..=at, ODD[pick(rng, ODD.len())].iter().copied());
                }
                _ => drop(line.splice(at..at, ODD[pick(rng, ODD.len())].iter().copied())),
            }
        }
    }
    line
}

/// A chunk of random lines (both spellings), with `\n` or `\r\n`, blank
/// lines now and then, and maybe no final newline.
fn random_chunk(rng: &mut datasets::Rng, lines: usize) -> Vec<u8> {
    let mut chunk = Vec::new();
    let spaced = rng.below(2) == 0;
    for _ in 0..lines {
        match rng.below(40) {
            0 => chunk.extend_from_slice(b"  "),
            1 => {}
            _ => chunk.extend(random_line(rng, spaced)),
        }
        chunk.extend_from_slice(if rng.below(25) == 0 { b"\r\n" } else { b"\n" });
    }
    if rng.below(4) == 0 {
        chunk.pop();
    }
    chunk
}

fn ysb_names() -> Names {
    Names {
        key: "ad_id".into(),
        value: Some("v".into()),
        time: Some("event_time".into()),
        filter: Some(("event_type".into(), "view".into())),
    }
}

#[test]
fn random_lines_take_the_fast_path_exactly_when_plain() {
    let mut rng = datasets::Rng::new(7);
    let names = ysb_names();
    let (mut plain, mut all) = (0, 0);
    for round in 0..300 {
        let chunk = random_chunk(&mut rng, 1 + round % 120);
        all += lines(&chunk).count();
        plain += check_chunk(&chunk, Names::slots(&names), 1 << 20);
        // A short limit makes some plain lines too long.
        check_chunk(&chunk, Names::slots(&names), 60);
    }
    assert!(plain * 3 > all, "the fast path is taken: {plain} of {all}");
    assert!(
        plain * 10 < all * 9,
        "unusual lines are generated: {plain} of {all}"
    );
}

#[test]
fn random_chunks_parse_as_with_the_general_scanner_alone() {
    let mut rng = datasets::Rng::new(8);
    let key_is_filter = Names {
        key: "event_type".into(),
        value: None,
        time: None,
        filter: Some(("event_type".into(), "view".into())),
    };
    let float_value = Names {
        key: "user_id".into(),
        value: Some("event_time".into()),
        time: None,
        filter: None,
    };
    for round in 0..200 {
        let chunk = random_chunk(&mut rng, 1 + round % 80);
        check_rows(&chunk, &ysb_names(), 1 << 20);
        check_rows(&chunk, &key_is_filter, 1 << 20);
        check_rows(&chunk, &float_value, 100);
    }
}

#[test]
fn lines_across_windows_and_longer_than_a_window() {
    let fields = ysb_names();
    let names = fields.slots();
    let member = r#""ad_id":"0b5d651e-735a-4ee2-977b-dee7e18b678e","#;
    for members in [0, 1, 60, 200, 700] {
        let long = format!(r#"{{{}"event_type":"view","v":1}}"#, member.repeat(members));
        let mut chunk = Vec::new();
        // Lines of every length around the window's edges.
        for pad in 0..70 {
            chunk.extend_from_slice(
                format!(r#"{{"x":"{}","ad_id":"a"}}"#, "p".repeat(pad)).as_bytes(),
            );
            chunk.push(b'\n');
            chunk.extend_from_slice(long.as_bytes());
            chunk.push(b'\n');
        }
        assert!(members < 60 || chunk.len() > 2 * WINDOW);
        let plain = check_chunk(&chunk, names, 1 << 20);
        // All plain but those repeating `ad_id`.
        assert_eq!(plain, if members > 1 { 70 } else { 140 });
        check_chunk(&chunk[..chunk.len() - 1], names, 1 << 20);
        check_chunk(&chunk, names, 2000);
    }
}

#[test]
fn both_spellings_and_crlf_are_plain() {
    let fields = ysb_names();
    let names = fields.slots();
    let compact = r#"{"user_id":"u","ad_id":"a9","event_type":"view","event_time":"1700000000000","ip_address":"1.2.3.4"}"#;
    let spaced = r#"{"user_id": "u", "ad_id": "a9", "event_type": "view", "event_time": "1700000000000", "ip_address": "1.2.3.4"}"#;
    let odd = r#" { "user_id" :"u" ,"ad_id":  "a9","event_type" : "view" , "event_time":"1700000000000","v":-1.5e3 } "#;
    for line in [compact, spaced, odd] {
        let values = plain_values(line, names).unwrap_or_else(|| panic!("plain: {line}"));
        assert_eq!(values[0].as_deref(), Some(&b"a9"[..]));
        let crlf = format!("{line}\r\n{line}\r\n");
        assert_eq!(check_chunk(crlf.as_bytes(), names, 1 << 20), 2, "{line}");
    }
    // Unusual but valid: the general scanner takes them.
    for line in [
        "{\"ad_id\":\t\"a\"}",
        r#"{"ad_id":"a\"b"}"#,
        r#"{"x":[1],"ad_id":"a"}"#,
        "{}",
    ] {
        assert!(plain_values(line, names).is_none(), "{line}");
        assert!(members(line, names).is_ok(), "{line}");
    }
}

#[test]
fn names_that_share_their_length_and_ends_are_told_apart() {
    let long_a = "a member name longer than sixteen bytes";
    let long_b = "a member name longer than sixteen bytez";
    let same_ends = ["abcdefgh_1_12345678", "abcdefgh_2_12345678"];
    for names in [
        [Some(long_a), None, None, Some(long_b)],
        [Some(same_ends[0]), Some(same_ends[1]), None, None],
        [Some(""), Some("é"), Some("event_time"), Some("event_type")],
        [Some("k"), Some("k"), Some("k"), Some("k")],
    ] {
        // Names agreeing on their length and their first and last eight
        // bytes defeat the hash table: lines naming a member of that length
        // take the general scanner.
        let collide = names[0] == Some(same_ends[0]);
        for key in names.iter().flatten().chain(&["abcdefgh_3_12345678", "x"]) {
            let line = format!(r#"{{"{key}":"1","{long_a}x":"2","zz":3}}"#);
            let plain = plain_values(&line, names).is_some();
            assert_eq!(plain, !collide || key.len() != same_ends[0].len(), "{line}");
        }
    }
}

#[test]
fn stage_one_finds_quotes_backslashes_and_control_characters() {
    let mut rng = datasets::Rng::new(3);
    let alphabet = [
        b'"', b'\\', 0, b'\t', b'\n', 0x1F, 0x20, b'a', 0x7F, 0x80, 0xC3, 0xFF,
    ];
    for round in 0..3_000 {
        let len = rng.below(300) as usize;
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                if round % 2 == 0 {
                    alphabet[rng.below(alphabet.len() as u64) as usize]
                } else {
                    rng.below(256) as u8
                }
            })
            .collect();
        let expected: Vec<u32> = (0..len as u32)
            .filter(|&i| matches!(bytes[i as usize], b'"' | b'\\' | 0..=0x1F))
            .collect();
        let high = !bytes.is_ascii();
        for level in levels() {
            assert_eq!(
                classify_for_tests(level, &bytes),
                (expected.clone(), high),
                "{level:?} {bytes:?}"
            );
        }
    }
}

#[test]
fn timestamps_read_with_integer_loads_agree_with_parse_time() {
    let mut rng = datasets::Rng::new(5);
    let digits = b"0123456789";
    let mut texts: Vec<Vec<u8>> = [
        "9007199254740992",
        "9007199254740993",
        "0000000000000001",
        "99999999999999999",
        "1700000000000",
        "12345678",
        "1234567",
        "-170000000000",
        "+17000000000000",
        "17000000000:0",
        "1700000000/00",
        "",
    ]
    .iter()
    .map(|t| t.as_bytes().to_vec())
    .collect();
    for _ in 0..20_000 {
        let len = rng.below(20) as usize;
        let mut t: Vec<u8> = (0..len).map(|_| digits[rng.below(10) as usize]).collect();
        if len > 0 && rng.below(4) == 0 {
            let at = rng.below(len as u64) as usize;
            t[at] = [b'/', b':', b'a', b'-', b' ', 0xFF][rng.below(6) as usize];
        }
        texts.push(t);
    }
    for t in texts {
        assert_eq!(time(&t), parse_time(&t), "{}", String::from_utf8_lossy(&t));
    }
}

proptest! {
    #[test]
    fn chunks_of_odd_bytes_agree_with_the_general_scanner(
        pieces in prop::collection::vec(0..ODD.len() + 4, 0..200),
    ) {
        // Pieces of valid members between the odd bytes, so that some
        // lines are plain.
        let members: [&[u8]; 4] = [br#"{"ad_id":"a","#, br#""event_type": "view"}"#, b"\n", br#"{"v":1}"#];
        let chunk: Vec<u8> = pieces
            .iter()
            .flat_map(|&p| if p < ODD.len() { ODD[p] } else { members[p - ODD.len()] })
            .copied()
            .collect();
        check_chunk(&chunk, Names::slots(&ysb_names()), 1 << 20);
        check_rows(&chunk, &ysb_names(), 1 << 20);
    }
}
