//! The fast path against the scalar parser: on random and adversarial CSV,
//! at every SIMD level this CPU supports, both must give the same events,
//! counts and errors.

use std::fmt::Write as _;

use proptest::prelude::*;

use super::{rows_at, Columns};
use crate::batch::Column;
use crate::dictionary::Dictionary;
use crate::ingest::{Extract, Field, Fields, ParseBuffer};
use crate::simd::Level;
use crate::window::ValueType;

/// A parser configuration: the columns and the value type.
#[derive(Debug, Clone)]
struct Config {
    columns: Columns,
    kind: ValueType,
    max_line_bytes: usize,
}

impl Config {
    fn buffer(&self) -> ParseBuffer {
        let mut out = ParseBuffer::default();
        out.reset(&Extract::Fields(Fields {
            key: Field::Column(self.columns.key),
            value: self.columns.value.map(|c| (Field::Column(c), self.kind)),
            time: self.columns.time.map(Field::Column),
            columns: self.columns.width,
            filter: None,
        }));
        out
    }

    fn parse(&self, level: Option<Level>, bytes: &[u8], dict: &Dictionary) -> ParseBuffer {
        let mut out = self.buffer();
        rows_at(
            level,
            bytes,
            &self.columns,
            self.max_line_bytes,
            dict,
            &mut out,
        )
        .expect("the dictionary has room");
        out
    }
}

/// Float columns compared bit for bit (`-0.0` is not `0.0` here).
fn comparable(mut out: ParseBuffer) -> (ParseBuffer, Vec<u64>) {
    let bits = match &mut out.values {
        Some(Column::F64(v)) => std::mem::take(v).into_iter().map(f64::to_bits).collect(),
        _ => Vec::new(),
    };
    (out, bits)
}

/// Parses `bytes` with the scalar parser and with the fast path at every
/// supported level; all must agree.
fn assert_same(config: &Config, bytes: &[u8]) {
    let dict = Dictionary::new();
    let expected = comparable(config.parse(None, bytes, &dict));
    let mut levels = 0;
    for level in Level::ALL.into_iter().filter(|l| l.is_supported()) {
        levels += 1;
        let got = comparable(config.parse(Some(level), bytes, &dict));
        assert_eq!(
            got,
            expected,
            "{level:?} {config:?} on {:?}",
            String::from_utf8_lossy(bytes)
        );
    }
    assert!(levels >= 1, "the portable level always runs");
}

fn config(
    width: usize,
    key: usize,
    time: Option<usize>,
    value: Option<usize>,
    kind: ValueType,
) -> Config {
    Config {
        columns: Columns {
            key,
            value,
            time,
            filter: None,
            width,
        },
        kind,
        max_line_bytes: 1 << 20,
    }
}

/// `ts,key,value` with float values, as the benchmark has it.
fn events(kind: ValueType) -> Config {
    config(3, 1, Some(0), Some(2), kind)
}

#[test]
fn fields_and_numbers_at_every_offset_of_a_block() {
    // Rows of every length from 3 to 150 bytes, so that each delimiter
    // falls on each side of a 64-byte boundary, and numbers start near the
    // chunk's start (their word loads would reach before it).
    let mut text = String::new();
    for len in 0..150 {
        let key = "k".repeat(1 + len % 20);
        let value = "9".repeat(1 + len % 19);
        writeln!(text, "{len},{key},-{value}").expect("writing to a string");
        write!(text, "{},{key},{len}.5\r\n", "0".repeat(len % 23)).expect("writing to a string");
    }
    for kind in [ValueType::I64, ValueType::F64] {
        let config = events(kind);
        for start in 0..70 {
            assert_same(&config, &text.as_bytes()[start..]);
            // And cut before the end, without a final newline.
            let end = text.len() - start;
            assert_same(&config, &text.as_bytes()[..end]);
        }
    }
}

#[test]
fn a_quote_is_seen_in_whichever_block_it_falls() {
    // A quoted key or number on one line of a long chunk, at each line in
    // turn: the fast path must leave that line to the scalar parser.
    let lines: Vec<String> = (0..120).map(|i| format!("{i},k{i},{}", i * 7)).collect();
    for quoted in 0..lines.len() {
        for field in 0..3 {
            let mut text = String::new();
            for (i, line) in lines.iter().enumerate() {
                if i == quoted {
                    let mut fields: Vec<String> = line.split(',').map(str::to_owned).collect();
                    fields[field] = format!("\"{}\"", fields[field]);
                    text.push_str(&fields.join(","));
                } else {
                    text.push_str(line);
                }
                text.push('\n');
            }
            assert_same(&events(ValueType::I64), text.as_bytes());
        }
    }
}

#[test]
fn unusual_lines_read_as_the_scalar_parser_reads_them() {
    let cases: &[&str] = &[
        "1,a,2\n\"2\",b,3\n3,c,4\n",
        "1,\"a,b\",2\n2,\"a\"\"b\",3\n",
        "1,\"a\nb\",2\n",
        "1,a\"b,2\n1,\"a\"x,2\n1,\"a,2\n",
        "1,,2\n,a,2\n1,a,\n",
        "1,a\n1,a,2,3\n1\n\n\r\n,,\n",
        "+1,a,-0\n-0,b,+0\n+,c,1\n-,d,1\n",
        "1,a,-0.0\n1,a,0.0\n1,a,1e3\n1,a,.5\n1,a,5.\n1,a,1e400\n1,a,inf\n1,a,NaN\n",
        "9007199254740993,a,9007199254740993\n9007199254740992,a,-9007199254740993\n",
        "9223372036854775807,a,9223372036854775807\n-9223372036854775808,a,-9223372036854775808\n",
        "9223372036854775808,a,9223372036854775808\n99999999999999999,a,12345678901234567\n",
        "0000000000000000000000001,a,-0000000000000000000000002\n",
        " 1,a,2\n1 ,a,2\n1,a, 2\n1, a ,2\n\t1,a,2\n",
        "1,a,2\r\r\n1,a\r,2\n1,a,2\r",
        "1,é,2\n1,ключ,3\n1,\u{feff}k,4\n",
        "1,aaaaaaaaaaaaaaaaaaaaaaaaaaaaa,2\n1,aaaaaaaaaaaaaaaaaaaaaaaaaaaab,2\n",
        "12345678,a,12345678\n123456789,a,123456789\n1234567890123456,a,1234567890123456\n",
        "1x,a,2\n1,a,2x\n0x10,a,1\n1_0,a,1\n",
        "1,a,2",
        "\n\n\n",
        "\"",
        ",",
    ];
    for case in cases {
        for kind in [ValueType::I64, ValueType::F64] {
            assert_same(&events(kind), case.as_bytes());
            assert_same(&config(3, 1, None, None, kind), case.as_bytes());
            assert_same(&config(4, 3, Some(1), Some(0), kind), case.as_bytes());
            assert_same(&config(1, 0, None, None, kind), case.as_bytes());
        }
    }
}

#[test]
fn long_lines_filters_and_invalid_utf8() {
    let mut config = events(ValueType::F64);
    let text = b"1,a,2\n1,abcdefghijklmnopqrstuvwxyz,2\n1,b,3\n\xff,c,4\n";
    for max in [1, 5, 6, 10, 20, 40] {
        config.max_line_bytes = max;
        assert_same(&config, &text[..text.len() - 8]);
        assert_same(&config, text);
    }
    config.max_line_bytes = 1 << 20;
    for wanted in ["a", "2", "", "\"a\"", "abcdefghijklmnopqrstuvwxyz"] {
        for column in 0..3 {
            config.columns.filter = Some((column, wanted.to_owned()));
            assert_same(&config, b"1,a,2\n1,\"a\",2\n1,,2\n,a,\n1,b,2,3\n");
            assert_same(&config, &text[..text.len() - 8]);
        }
    }
}

#[test]
fn rows_wider_than_the_fast_path_take_the_scalar_one() {
    let row = (0..70).fold(String::new(), |mut row, i| {
        write!(row, "{i},").expect("writing to a string");
        row
    });
    let text = format!("{row}x\n{row}\n");
    for width in [3, 62, 63, 64, 71] {
        let config = config(width, width - 1, Some(0), Some(1), ValueType::I64);
        assert_same(&config, text.as_bytes());
    }
}

/// A field: numbers of every shape, keys, quoted and broken fields.
fn field() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => (-1_000_i64..1_000).prop_map(|v| v.to_string()),
        2 => any::<i64>().prop_map(|v| v.to_string()),
        1 => (0_u32..20, prop::sample::select(vec!["", "-", "+", "--", "-+"]))
            .prop_map(|(digits, sign)| format!("{sign}{}", "9".repeat(digits as usize))),
        1 => (0_u32..25).prop_map(|zeros| format!("{}7", "0".repeat(zeros as usize))),
        2 => any::<f64>().prop_map(|v| v.to_string()),
        1 => (any::<i32>(), 0_u32..6).prop_map(|(m, e)| format!("{m}.{}", "05".repeat(e as usize))),
        1 => (any::<i16>(), -30_i32..30).prop_map(|(m, e)| format!("{m}e{e}")),
        4 => "[a-z]{1,6}",
        1 => "[a-z]{7,20}",
        1 => "[a-zé ]{0,4}",
        1 => Just(String::new()),
        1 => "[a-z,\"\r]{0,5}".prop_map(|s| format!("\"{s}\"")),
        // Quoted fields that would read as keys or numbers if the quotes
        // went unnoticed.
        2 => "[a-z0-9]{0,4}".prop_map(|s| format!("\"{s}\"")),
        2 => Just("a".to_owned()),
        1 => "[a-z0-9,\"\r .e+-]{0,6}",
        1 => prop::sample::select(vec!["inf", "NaN", "-0", "-0.0", "1e400", ".", "\r", " 1", "1 "])
            .prop_map(str::to_owned),
    ]
}

/// Lines of `width` fields (now and then 0 to 5), ended by `\n` or
/// `\r\n`.
fn csv(width: usize) -> impl Strategy<Value = Vec<u8>> {
    (
        prop::collection::vec(
            (
                prop_oneof![
                    6 => prop::collection::vec(field(), width..=width),
                    1 => prop::collection::vec(field(), 0..6),
                ],
                prop::sample::select(vec!["\n", "\n", "\n", "\r\n"]),
            ),
            0..60,
        ),
        any::<bool>(),
    )
        .prop_map(|(lines, final_newline)| {
            let mut text = String::new();
            for (fields, end) in lines {
                text.push_str(&fields.join(","));
                text.push_str(end);
            }
            if !final_newline && text.ends_with('\n') {
                text.pop();
            }
            text.into_bytes()
        })
}

fn configs() -> impl Strategy<Value = Config> {
    (1_usize..6, any::<[u8; 4]>(), any::<bool>(), 0_usize..3)
        .prop_flat_map(|(width, picks, float, filter)| {
            let column = move |b: u8| usize::from(b) % width;
            let kind = if float {
                ValueType::F64
            } else {
                ValueType::I64
            };
            (
                Just(Config {
                    columns: Columns {
                        key: column(picks[0]),
                        value: (picks[1] % 3 != 0).then(|| column(picks[1] >> 2)),
                        time: (picks[2] % 3 != 0).then(|| column(picks[2] >> 2)),
                        filter: None,
                        width,
                    },
                    kind,
                    max_line_bytes: 1 << 20,
                }),
                Just(filter.checked_sub(1).map(|_| column(picks[3]))),
                prop::sample::select(vec![4_usize, 12, 40, 1 << 20]),
            )
        })
        .prop_map(|(mut config, filter, max)| {
            config.columns.filter = filter.map(|c| (c, "a".to_owned()));
            config.max_line_bytes = max;
            config
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn the_fast_path_reads_random_csv_as_the_scalar_parser(
        (config, bytes) in configs().prop_flat_map(|config| {
            let width = config.columns.width;
            (Just(config), csv(width))
        }),
    ) {
        assert_same(&config, &bytes);
    }

    #[test]
    fn the_fast_path_reads_random_bytes_as_the_scalar_parser(
        pieces in prop::collection::vec(
            prop_oneof![
                200 => prop::sample::select(
                    ["0", "1", "9", "-", "+", ".", ",", ",", "\"", "\r", "\n", "\n", "a", "k", "e", " ", "é"]
                        .map(|s| s.as_bytes().to_vec())
                        .to_vec(),
                ),
                // Now and then a chunk that is not UTF-8.
                1 => Just(vec![0xFF]),
            ],
            0..300,
        ),
        width in 1_usize..4,
    ) {
        let bytes = pieces.concat();
        let config = config(width, width - 1, Some(0), (width > 1).then_some(1), ValueType::F64);
        assert_same(&config, &bytes);
        let config = config_i64(width);
        assert_same(&config, &bytes);
    }
}

fn config_i64(width: usize) -> Config {
    config(
        width,
        0,
        (width > 2).then_some(2),
        (width > 1).then_some(1),
        ValueType::I64,
    )
}
