//! Arbitrary bytes through the engine's NDJSON parsing (see
//! `engine::ingest::fuzz_check::check_ndjson`), and each line compared with
//! serde_json: a line is malformed JSON for the engine exactly when it is
//! not one JSON object for serde_json, or when it has the key member twice;
//! otherwise the key the engine reads is the one serde_json reads.
#![no_main]

use std::fmt;

use engine::ingest::{Extract, Field, Fields, Format, Parser};
use engine::Dictionary;
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::Value;

/// The members of a JSON object, in order, duplicates included.
struct Members(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for Members {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Members;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members, A::Error> {
                let mut members = Vec::new();
                while let Some(member) = map.next_entry::<String, Value>()? {
                    members.push(member);
                }
                Ok(Members(members))
            }
        }
        d.deserialize_map(V)
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    engine::ingest::fuzz_check::check_ndjson(data);
    let parser = match Parser::try_new(
        Format::Ndjson,
        Extract::Fields(Fields {
            key: Field::Name("k".into()),
            value: None,
            time: None,
            columns: 0,
            filter: None,
        }),
        1 << 20,
    ) {
        Ok(parser) => parser,
        Err(e) => panic!("{e}"),
    };
    let dict = Dictionary::new();
    for line in engine::ingest::lines(data) {
        let Ok(text) = std::str::from_utf8(line) else {
            continue;
        };
        if text.bytes().all(|b| matches!(b, b' ' | b'\t' | b'\r')) {
            continue;
        }
        let parsed = parser.parse(line, &dict).expect("room in the dictionary");
        let ours_invalid = parsed
            .errors
            .first()
            .is_some_and(|e| e.reason.to_string().starts_with("invalid JSON"));
        let reference = serde_json::from_str::<Members>(text);
        if let Err(e) = &reference {
            if e.to_string().contains("recursion limit") {
                continue;
            }
        }
        let reference = reference.ok().filter(|m| m.0.iter().filter(|(n, _)| n == "k").count() <= 1);
        assert_eq!(ours_invalid, reference.is_none(), "{text:?}: {:?}", parsed.errors);
        if let Some(members) = reference {
            let key = members.0.into_iter().find(|(n, _)| n == "k").map(|(_, v)| v);
            let read = dict.read();
            let ours = parsed.batch.keys().first().and_then(|&k| read.get(k));
            match (key, ours) {
                (Some(Value::String(s)), ours) if !s.is_empty() => {
                    assert_eq!(ours, Some(s.as_str()), "{text:?}");
                }
                (Some(Value::Bool(b)), ours) => assert_eq!(ours, Some(&*b.to_string()), "{text:?}"),
                // The engine keeps a number's text as written; serde_json
                // may write it otherwise (`1e9` as `1e+9`): the same number.
                (Some(n @ Value::Number(_)), Some(ours)) => {
                    assert_eq!(serde_json::from_str::<Value>(ours).ok(), Some(n), "{text:?}");
                }
                (key, ours) => assert!(
                    ours.is_none() && !matches!(key, Some(Value::Number(_))),
                    "{text:?}: {key:?} {ours:?}"
                ),
            }
        }
    }
});
