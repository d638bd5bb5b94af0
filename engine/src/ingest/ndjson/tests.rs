//! The NDJSON scanners against hand-written cases and each other.

use super::super::{Extract, Field, Fields, Format, Parser};
use super::fast_tests::plain_values;
use super::general::Scalar;
use super::*;
use crate::batch::Column;
use crate::window::ValueType;

#[test]
fn members_are_found_at_the_top_level_only() {
    let line =
        r#"{"x": {"key": "nested"}, "key": "a\"b", "arr": [1, {"v": 2}], "v": 2.5, "t": "17"}"#;
    let [k, v, t, f] = members(line, [Some("key"), Some("v"), Some("t"), Some("arr")]).unwrap();
    assert!(f.is_none(), "an array is not a scalar");
    assert_eq!(k.unwrap().text(), "a\"b");
    assert_eq!(v.unwrap().text(), "2.5");
    assert_eq!(t.unwrap().text(), "17");
}

#[test]
fn a_record_rejected_for_its_time_leaves_no_value_behind() {
    let dict = Dictionary::new();
    let fields = Fields {
        key: Field::Name("k".into()),
        value: Some((Field::Name("v".into()), ValueType::I64)),
        time: Some(Field::Name("t".into())),
        columns: 0,
        filter: None,
    };
    let parser = Parser::new(Format::Ndjson, Extract::Fields(fields), 1 << 20);
    let input = b"{\"k\":\"a\",\"v\":100}\n{\"k\":\"b\",\"v\":1,\"t\":5}\n";
    let parsed = parser.parse_buffer(input, &dict).unwrap();
    assert_eq!(parsed.values, Some(Column::I64(vec![1])));
    assert_eq!(parsed.keys.len(), 1);
}

#[test]
fn bad_lines_are_counted_with_reasons() {
    let dict = Dictionary::new();
    let fields = Fields {
        key: Field::Name("k".into()),
        value: Some((Field::Name("v".into()), ValueType::I64)),
        time: Some(Field::Name("t".into())),
        columns: 0,
        filter: None,
    };
    let parser = Parser::new(Format::Ndjson, Extract::Fields(fields), 1 << 20);
    let input = concat!(
        "{\"k\":\"a\",\"v\":1,\"t\":5}\n",
        "{\"k\":\"a\",\"v\":1\n",
        "{\"v\":2,\"t\":6}\n",
        "{\"k\":\"b\",\"v\":\"x\",\"t\":6}\n",
        "  \n",
        "{\"k\":\"\\u00e9\",\"v\":\"7\",\"t\":\"8\"}\n",
    );
    let parsed = parser.parse_buffer(input.as_bytes(), &dict).unwrap();
    let read = dict.read();
    let keys: Vec<&str> = parsed.keys.iter().map(|&k| read.get(k).unwrap()).collect();
    assert_eq!(keys, ["a", "é"]);
    assert_eq!(parsed.values, Some(Column::I64(vec![1, 7])));
    assert_eq!(parsed.times, [5, 8]);
    assert_eq!((parsed.records, parsed.skipped), (5, 3));
    assert!(
        parsed.errors[0]
            .to_string()
            .starts_with("line 2: invalid JSON"),
        "{:?}",
        parsed.errors
    );
    assert_eq!(
        parsed.errors[1].to_string(),
        "line 3: missing or empty key `k`"
    );
    assert_eq!(
        parsed.errors[2].to_string(),
        "line 4: bad value `x` (integer expected)"
    );
}

/// A random object line built from pieces that exercise the scanner:
/// whitespace, tokens, `null`, nested values, escapes, duplicate and
/// unknown names, non-ASCII text, and now and then a broken piece: bad
/// escapes, lone surrogates, raw control characters, bare words,
/// numbers outside JSON's grammar, broken nesting.
fn random_line(rng: &mut datasets::Rng) -> String {
    let names = ["k", "v", "t", "f", "other", "ké", "\\u006b", "a\u{2}b"];
    let values = [
        "\"x\"",
        "\"\"",
        "12",
        "-3.5e2",
        "null",
        "true",
        "{\"k\":\"in\"}",
        "[1,{\"v\":2}]",
        "\"é ü\"",
        "\"a,b}\"",
        "\"a\\\"b\"",
        "\"\\u00e9\\n\"",
        "\"\\ud83d\\ude00\"",
        "0",
        "-0.5E+3",
        "false",
        "[]",
        "{}",
        "[[[{\"a\":[]}]]]",
        // Broken values: these must be the last ones.
        "\"",
        "",
        "\"unterminated",
        "1]",
        "]",
        "\"\\u12\"",
        "\"\\u12G4\"",
        "\"\\u+041\"",
        "hello",
        "\"a\u{1}b\"",
        "\"tab\tin\"",
        "\"\\x\"",
        "\"\\ud800\"",
        "\"\\udc00\"",
        "\"\\ud800\\u0041\"",
        "01",
        "1.",
        ".5",
        "+1",
        "-",
        "1e",
        "1e+",
        "NaN",
        "Infinity",
        "-Infinity",
        "tru",
        "nul",
        "[1,,2]",
        "[1,]",
        "{\"a\":1,}",
        "{\"a\"}",
        "{\"a\":hello}",
        "[1}",
        "{\"a\":1]",
        "[\"\\u12\"]",
        "{\"a\\q\":1}",
        "\u{feff}\"x\"",
    ];
    let broken = 37;
    assert_eq!(values[values.len() - broken], "\"");
    let ws = ["", " ", "\t", "  "];
    let pick = |rng: &mut datasets::Rng, n: usize| rng.below(n as u64) as usize;
    let mut line = String::from(ws[pick(rng, 4)]);
    line.push('{');
    let members = pick(rng, 6);
    for m in 0..members {
        if m > 0 {
            line.push_str(if rng.below(40) == 0 { "" } else { "," });
        }
        line.push_str(ws[pick(rng, 4)]);
        line.push('"');
        line.push_str(names[pick(rng, names.len())]);
        line.push('"');
        line.push_str(ws[pick(rng, 4)]);
        line.push_str(if rng.below(40) == 0 { "" } else { ":" });
        line.push_str(ws[pick(rng, 4)]);
        // Broken values are rare.
        let v = if rng.below(20) == 0 {
            pick(rng, values.len())
        } else {
            pick(rng, values.len() - broken)
        };
        line.push_str(values[v]);
        line.push_str(ws[pick(rng, 4)]);
    }
    line.push('}');
    match rng.below(60) {
        0 => line.push_str(" x"),
        1 => line.push_str("{}"),
        2 => line.insert(0, '\u{feff}'),
        3 => drop(line.pop()),
        _ => {}
    }
    line
}

/// The values of `found` as bytes, as the fast path has them.
fn as_bytes(found: &[Option<Scalar<'_>>; 4]) -> [Option<Vec<u8>>; 4] {
    [0, 1, 2, 3].map(|i| found[i].as_ref().map(|v| v.text().as_bytes().to_vec()))
}

#[test]
fn the_fast_path_agrees_with_the_general_scanner() {
    let names = [Some("k"), Some("v"), Some("t"), Some("f")];
    let mut rng = datasets::Rng::new(11);
    let (mut fast_hits, mut errors) = (0, 0);
    for _ in 0..20_000 {
        let line = random_line(&mut rng);
        let general = members(&line, names);
        if let Some(fast) = plain_values(&line, names) {
            fast_hits += 1;
            assert_eq!(general.as_ref().map(as_bytes), Ok(fast), "{line}");
        }
        if general.is_err() {
            errors += 1;
        }
    }
    // Lines with a tab between tokens are left to the general scanner.
    assert!(fast_hits > 200, "the fast path is taken: {fast_hits}");
    assert!(errors > 800, "hostile lines are generated: {errors}");
    // Regressions: a bracket ends a bare token, and text after an empty
    // object is an error, on both paths.
    for bad in [r#"{"k":x]}"#, r#"{"k":"a","n":1]}"#, r#"{"k":]}"#, "{} x"] {
        assert!(members(bad, names).is_err(), "{bad}");
        assert!(plain_values(bad, names).is_none(), "{bad}");
    }
    let ysb = r#"{"user_id":"u1","page_id":"p","ad_id":"a9","ad_type":"mail","event_type":"view","event_time":"1700000000000","ip_address":"1.2.3.4"}"#;
    let names = [Some("ad_id"), None, Some("event_time"), Some("event_type")];
    let fast = plain_values(ysb, names).expect("a plain YSB line takes the fast path");
    assert_eq!(fast, as_bytes(&members(ysb, names).unwrap()));
    assert_eq!(fast[0].as_deref(), Some(&b"a9"[..]));
}

#[test]
fn a_member_wanted_twice_fills_both_slots() {
    let names = [Some("type"), None, None, Some("type")];
    for line in [r#"{"type":"view"}"#, r#"{"type":"vi\u0065w"}"#] {
        let [key, _, _, filter] = members(line, names).unwrap();
        assert_eq!(key.as_ref().map(Scalar::text), Some("view"), "{line}");
        assert_eq!(filter.as_ref().map(Scalar::text), Some("view"), "{line}");
    }
    let fast = plain_values(r#"{"type":"view"}"#, names).unwrap();
    assert_eq!(fast[0], fast[3]);
    assert_eq!(fast[0].as_deref(), Some(&b"view"[..]));
}

#[test]
fn a_filter_keeps_only_records_whose_member_matches() {
    let dict = Dictionary::new();
    let fields = Fields {
        key: Field::Name("k".into()),
        value: None,
        time: None,
        columns: 0,
        filter: Some((Field::Name("type".into()), "view".into())),
    };
    let parser = Parser::new(Format::Ndjson, Extract::Fields(fields), 1 << 20);
    let input = concat!(
        "{\"k\":\"a\",\"type\":\"view\"}\n",
        "{\"k\":\"b\",\"type\":\"click\"}\n",
        "{\"k\":\"c\"}\n",
        "{\"type\":\"view\",\"k\":\"d\"}\n",
        "{\"type\":\"view\"\n",
    );
    let parsed = parser.parse_buffer(input.as_bytes(), &dict).unwrap();
    let read = dict.read();
    let keys: Vec<&str> = parsed.keys.iter().map(|&k| read.get(k).unwrap()).collect();
    assert_eq!(keys, ["a", "d"]);
    assert_eq!(parsed.record_of, [0, 3]);
    assert_eq!((parsed.records, parsed.skipped), (5, 1));
}

const NAMES: [Option<&str>; 4] = [Some("k"), Some("v"), Some("t"), Some("f")];

/// What `rows` makes of `line`: the fast path if it takes the line (it
/// must then agree with the general scanner), else the general scanner.
fn verdict(line: &str) -> Result<[Option<Scalar<'_>>; 4], String> {
    let general = members(line, NAMES);
    if let Some(fast) = plain_values(line, NAMES) {
        assert_eq!(general.as_ref().map(as_bytes), Ok(fast), "{line}");
    }
    general
}

/// Asserts that every line is malformed with a reason containing
/// `reason`, both line by line and through a parser.
fn assert_malformed(lines: &[&str], reason: &str) {
    for line in lines {
        let err = verdict(line).expect_err(line);
        assert!(err.contains(reason), "{line}: {err}");
    }
    let dict = Dictionary::new();
    let fields = Fields {
        key: Field::Name("k".into()),
        value: Some((Field::Name("v".into()), ValueType::F64)),
        time: None,
        columns: 0,
        filter: None,
    };
    let parser = Parser::try_new(Format::Ndjson, Extract::Fields(fields), 1 << 20).unwrap();
    let input = lines.join("\n");
    let parsed = parser.parse_buffer(input.as_bytes(), &dict).unwrap();
    assert_eq!(parsed.skipped, lines.len() as u64, "{input}");
    assert!(parsed.keys.is_empty());
}

fn key_of(line: &str) -> String {
    verdict(line).unwrap()[0]
        .as_ref()
        .unwrap()
        .text()
        .to_owned()
}

#[test]
fn ndjson_unicode_escape_needs_four_hex_digits() {
    assert_malformed(
        &[
            r#"{"k":"\u12"}"#,
            r#"{"k":"\u12G4"}"#,
            r#"{"k":"\u+041"}"#,
            r#"{"k":"\u-41"}"#,
            r#"{"k":"\u"}"#,
            r#"{"k":"a","x":"\u12"}"#,
            r#"{"k":"a","x":["\u004"]}"#,
        ],
        "four hex digits",
    );
    assert_eq!(key_of(r#"{"k":"\u0041\u00e9\u00E9"}"#), "Aéé");
    assert_eq!(key_of(r#"{"k":"\u00411"}"#), "A1");
}

#[test]
fn ndjson_bare_word_is_not_a_string() {
    assert_malformed(
        &[
            r#"{"k":hello}"#,
            r#"{"k":"a","other":hello}"#,
            r#"{"k":"a","other":[hello]}"#,
            r#"{"k":True}"#,
            r#"{"k":NaN}"#,
            r#"{"k":Infinity}"#,
            r#"{"k":nul}"#,
        ],
        "is not a JSON value",
    );
    assert_eq!(key_of(r#"{"k":true}"#), "true");
}

#[test]
fn ndjson_raw_control_character_is_malformed() {
    assert_malformed(
        &[
            "{\"k\":\"a\u{1}b\"}",
            "{\"k\":\"a\tb\"}",
            "{\"k\":\"a\rb\"}",
            "{\"k\":\"a\",\"x\":\"\u{1f}\"}",
            "{\"k\u{0}\":\"a\"}",
            "{\"k\":\"a\",\"x\":[\"\u{7}\"]}",
            "{\"k\":\"a long key with a control character past sixteen bytes\u{8}\"}",
        ],
        "raw control character",
    );
    // Escaped, they are fine; and a tab between tokens is whitespace.
    assert_eq!(key_of("{\"k\":\t\"a\\tb\\u0001\"}"), "a\tb\u{1}");
}

#[test]
fn ndjson_invalid_escape_is_malformed() {
    assert_malformed(
        &[
            r#"{"k":"\x41"}"#,
            r#"{"k":"\'"}"#,
            r#"{"k":"a","\q":1}"#,
            r#"{"k":"\é"}"#,
        ],
        "invalid escape",
    );
    assert_eq!(
        key_of(r#"{"k":"\"\\\/\b\f\n\r\t"}"#),
        "\"\\/\u{8}\u{c}\n\r\t"
    );
}

#[test]
fn ndjson_lone_surrogate_is_malformed() {
    assert_malformed(
        &[
            r#"{"k":"\ud800"}"#,
            r#"{"k":"\ud800x"}"#,
            r#"{"k":"\ud800\u0041"}"#,
            r#"{"k":"\ud800\ud800"}"#,
            r#"{"k":"\udc00"}"#,
            r#"{"k":"\udfff\ud800"}"#,
            r#"{"\ud800":"a","k":"b"}"#,
        ],
        "lone surrogate",
    );
    assert_eq!(key_of(r#"{"k":"\ud83d\ude00!"}"#), "😀!");
    assert_eq!(key_of(r#"{"k":"\uDBFF\uDFFF"}"#), "\u{10FFFF}");
}

#[test]
fn ndjson_numbers_follow_json_grammar() {
    assert_malformed(
        &[
            r#"{"k":01}"#,
            r#"{"k":1.}"#,
            r#"{"k":.5}"#,
            r#"{"k":+1}"#,
            r#"{"k":-}"#,
            r#"{"k":1e}"#,
            r#"{"k":1e+}"#,
            r#"{"k":0x10}"#,
            r#"{"k":1.5.2}"#,
            r#"{"k":-01}"#,
            r#"{"k":"a","n":00}"#,
        ],
        "invalid number",
    );
    for good in ["0", "-0", "10", "-1.25", "1e9", "1E-3", "2.5e+10"] {
        assert_eq!(key_of(&format!(r#"{{"k":{good}}}"#)), good);
    }
}

#[test]
fn ndjson_duplicate_wanted_member_is_malformed() {
    assert_malformed(
        &[
            r#"{"k":"a","k":"b"}"#,
            r#"{"k":"a","k":"a"}"#,
            r#"{"k":null,"k":"a"}"#,
            r#"{"k":"a","v":1,"v":2}"#,
            r#"{"k":"a","\u006b":"b"}"#,
        ],
        "appears twice",
    );
    // Other members may repeat.
    assert_eq!(key_of(r#"{"x":1,"k":"a","x":2}"#), "a");
}

#[test]
fn ndjson_trailing_garbage_and_broken_structure_are_malformed() {
    for (line, reason) in [
        (r#"{"k":"a"} x"#, "trailing characters"),
        (r#"{"k":"a"}{}"#, "trailing characters"),
        (r#"{"k":"a"},"#, "trailing characters"),
        (r#"{"k":"a""#, "unterminated object"),
        (r#"{"k":"a"#, "unterminated string"),
        (r#"{"k":"a\"}"#, "unterminated string"),
        (r#"{"k":"a",}"#, "member name expected"),
        (r#"{"k" "a"}"#, "`:` expected"),
        (r#"{"k":"a" "v":1}"#, "`,` or `}` expected"),
        (r#"{"k":"a","x":[1,2}"#, "`,` or `]` expected"),
        (r#"{"k":"a","x":{"y":1]}"#, "`,` or `}` expected"),
        (r#"{"k":"a","x":[1,,2]}"#, "value expected"),
        (r#"{"k":"a","x":{"y"}}"#, "`:` expected"),
        (r#"{"k":"a","x":[[[1]]"#, "unterminated array"),
        (r#"{"k":"a","x":{"y":{}"#, "unterminated object"),
        (r#"["k","a"]"#, "`{` expected"),
        ("\u{feff}{\"k\":\"a\"}", "byte-order mark"),
    ] {
        assert_malformed(&[line], reason);
    }
}

#[test]
fn ndjson_deep_nesting_is_checked_without_recursion() {
    let depth = 200_000;
    let deep = format!(
        r#"{{"k":"a","x":{}1{}}}"#,
        "[".repeat(depth),
        "]".repeat(depth)
    );
    assert_eq!(key_of(&deep), "a");
    let unbalanced = format!(
        r#"{{"k":"a","x":{}1{}}}"#,
        "[".repeat(depth),
        "]".repeat(depth - 1)
    );
    assert_malformed(&[&unbalanced], "`,` or `]` expected");
    let objects = format!(
        r#"{{"k":"a","x":{}1{}}}"#,
        r#"{"y":"#.repeat(depth),
        "}".repeat(depth)
    );
    assert_eq!(key_of(&objects), "a");
}

#[test]
fn ndjson_form_feed_line_is_a_malformed_record_not_a_blank_line() {
    let dict = Dictionary::new();
    let fields = Fields {
        key: Field::Name("k".into()),
        value: None,
        time: None,
        columns: 0,
        filter: None,
    };
    let parser = Parser::try_new(Format::Ndjson, Extract::Fields(fields), 1 << 20).unwrap();
    let parsed = parser
        .parse_buffer(b" \t\r\n\x0c\n{\"k\":\"a\"}\n", &dict)
        .unwrap();
    assert_eq!((parsed.lines, parsed.records, parsed.skipped), (3, 2, 1));
}
