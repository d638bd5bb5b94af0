//! Text records: words (for word counts) and pattern matches (for grep).

use super::intern::Staged;
use super::split::split_words;
use super::{lines, with_cache, KeyCache, ParseBuffer, RecordError};
use crate::dictionary::Dictionary;
use crate::error::Result;
use crate::simd::Simd;

/// ASCII whitespace as `split_ascii_whitespace` has it: space, \t, \n,
/// \x0C and \r.
const SPACE: [bool; 256] = {
    let mut table = [false; 256];
    table[b' ' as usize] = true;
    table[b'\t' as usize] = true;
    table[b'\n' as usize] = true;
    table[0x0C] = true;
    table[b'\r' as usize] = true;
    table
};

/// Line `line` (a slice of `bytes`) as text, or `None` (counted as
/// malformed) when it is too long or not UTF-8. `whole` is `bytes` as text
/// when the whole chunk is valid UTF-8 (checked once per chunk, with SIMD):
/// lines cut at ASCII newlines are then valid without a check of their own.
pub(super) fn line_text<'a>(
    whole: Option<&'a str>,
    bytes: &'a [u8],
    line: &'a [u8],
    index: u64,
    max_line_bytes: usize,
    out: &mut ParseBuffer,
) -> Option<&'a str> {
    match whole {
        Some(text) if line.len() <= max_line_bytes => {
            let start = line.as_ptr() as usize - bytes.as_ptr() as usize;
            Some(&text[start..start + line.len()])
        }
        _ => check_line(line, index, max_line_bytes, out),
    }
}

/// Checks one line: too long or not UTF-8 makes it malformed.
pub(super) fn check_line<'a>(
    line: &'a [u8],
    index: u64,
    max_line_bytes: usize,
    out: &mut ParseBuffer,
) -> Option<&'a str> {
    if line.len() > max_line_bytes {
        out.bad_because(index, || RecordError::LineTooLong {
            bytes: Some(line.len()),
            max: max_line_bytes,
        });
        return None;
    }
    let text = std::str::from_utf8(line).ok();
    if text.is_none() {
        out.bad(index, || "invalid UTF-8".into());
    }
    text
}

/// One event per word; words are split on ASCII whitespace.
pub(super) fn words(
    bytes: &[u8],
    max_line_bytes: usize,
    dict: &Dictionary,
    out: &mut ParseBuffer,
) -> Result<()> {
    with_cache(dict, |cache| {
        // The common case, a valid UTF-8 chunk, is checked at once (SIMD, in
        // std); words are then cut at ASCII whitespace, always char
        // boundaries. No line is over the limit when the whole chunk is
        // within it (the job's pieces are 256 KiB, the limit 1 MiB by
        // default); otherwise the lines are measured first, so that the
        // words of a line over the limit never reach the dictionary.
        let whole = super::chunk_text(bytes);
        let fits = |_: &&str| {
            bytes.len() <= max_line_bytes || super::split::longest_line(bytes) <= max_line_bytes
        };
        if let Some(text) = whole.filter(fits) {
            // Words of 4 bytes and a space, as English text has them; the
            // columns grow on denser text.
            out.keys.reserve(bytes.len() / 5);
            out.record_of.reserve(bytes.len() / 5);
            let lines = words_of_text(text, cache, dict, out)?;
            out.lines = lines;
            out.records = lines;
            return Ok(());
        }
        for (index, line) in lines(bytes).enumerate() {
            let index = index as u64;
            out.lines += 1;
            out.records += 1;
            let Some(line) = line_text(whole, bytes, line, index, max_line_bytes, out) else {
                continue;
            };
            tokenize(line, index as u32, cache, dict, out)?;
        }
        Ok(())
    })
}

/// The words of a whole chunk of text, with the SIMD level of this CPU.
fn words_of_text(
    text: &str,
    cache: &mut KeyCache,
    dict: &Dictionary,
    out: &mut ParseBuffer,
) -> Result<u64> {
    crate::simd_dispatch!(crate::simd::level(), words_kernel(text: &str, cache: &mut KeyCache, dict: &Dictionary, out: &mut ParseBuffer) -> Result<u64>)
}

/// Words split before their lookups are staged and resolved: enough to
/// overlap the lookups' cache misses, few enough that the batch stays in L1.
const BATCH: usize = 128;

/// [`words_of_text`] at one SIMD level, in three tight loops per batch of
/// words instead of one loop doing everything (whose many live values
/// spilled to the stack): the splitter records each word's bounds; then
/// every word's lookup is staged (hashed, its slot prefetched); then each
/// is resolved, by which time its slot is in cache.
#[inline(always)]
#[allow(clippy::inline_always)] // Inlined into each level's entry point.
fn words_kernel<S: Simd>(
    text: &str,
    cache: &mut KeyCache,
    dict: &Dictionary,
    out: &mut ParseBuffer,
) -> Result<u64> {
    let bytes = text.as_bytes();
    let mut words = WordBatch::default();
    let stats = split_words::<S, crate::Error>(bytes, |start, end, line| {
        words.bounds[words.len] = (start, end, line);
        words.len += 1;
        if words.len == BATCH {
            words.resolve(text, cache, dict, out)?;
        }
        Ok(())
    })?;
    words.resolve(text, cache, dict, out)?;
    Ok(stats)
}

/// Words split and not yet looked up.
struct WordBatch {
    /// Start, end and line of each word.
    bounds: [(usize, usize, u32); BATCH],
    staged: [Staged; BATCH],
    ids: [u32; BATCH],
    len: usize,
}

impl Default for WordBatch {
    fn default() -> Self {
        Self {
            bounds: [(0, 0, 0); BATCH],
            staged: [Staged::default(); BATCH],
            ids: [0; BATCH],
            len: 0,
        }
    }
}

impl WordBatch {
    /// Looks the words up and appends them to `out`; empties the batch.
    #[inline(always)]
    #[allow(clippy::inline_always)] // Inlined into each level's kernel.
    fn resolve(
        &mut self,
        text: &str,
        cache: &mut KeyCache,
        dict: &Dictionary,
        out: &mut ParseBuffer,
    ) -> Result<()> {
        let n = self.len;
        let bytes = text.as_bytes();
        for (staged, &(start, end, _)) in self.staged[..n].iter_mut().zip(&self.bounds[..n]) {
            *staged = cache.stage(bytes, start, end);
        }
        for (id, staged) in self.ids[..n].iter_mut().zip(&self.staged[..n]) {
            *id = cache.resolve(text, staged, dict)?;
        }
        out.keys.extend_from_slice(&self.ids[..n]);
        out.record_of
            .extend(self.bounds[..n].iter().map(|&(_, _, line)| line));
        self.len = 0;
        Ok(())
    }
}

/// Appends the words of one line.
#[inline]
fn tokenize(
    line: &str,
    record: u32,
    cache: &mut KeyCache,
    dict: &Dictionary,
    out: &mut ParseBuffer,
) -> Result<()> {
    let b = line.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && SPACE[b[i] as usize] {
            i += 1;
        }
        let start = i;
        while i < b.len() && !SPACE[b[i] as usize] {
            i += 1;
        }
        if i > start {
            // Cut at ASCII bytes of valid UTF-8: still valid UTF-8.
            out.keys.push(cache.id(&line[start..i], dict)?);
            out.record_of.push(record);
        }
    }
    Ok(())
}

/// One event per line containing `pattern`, keyed by the pattern.
pub(super) fn grep(
    bytes: &[u8],
    pattern: &str,
    max_line_bytes: usize,
    dict: &Dictionary,
    out: &mut ParseBuffer,
) -> Result<()> {
    let key = dict.intern(pattern)?;
    let finder = memchr::memmem::Finder::new(pattern.as_bytes());
    let whole = super::chunk_text(bytes);
    for (index, line) in lines(bytes).enumerate() {
        let index = index as u64;
        out.lines += 1;
        out.records += 1;
        let Some(line) = line_text(whole, bytes, line, index, max_line_bytes, out) else {
            continue;
        };
        if finder.find(line.as_bytes()).is_some() {
            out.keys.push(key);
            out.record_of.push(index as u32);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::{Extract, Format, Parser};
    use super::words_kernel;
    use crate::Dictionary;

    fn words_of(parsed: &super::ParseBuffer, dict: &Dictionary) -> Vec<String> {
        let read = dict.read();
        parsed
            .keys
            .iter()
            .map(|&k| read.get(k).unwrap().to_owned())
            .collect()
    }

    #[test]
    fn words_split_on_ascii_whitespace_and_bad_lines_are_skipped() {
        let dict = Dictionary::new();
        let parser = Parser::new(Format::Text, Extract::Words, 12);
        let input = b"a  b\tc\r\n\xff\xfe bad\nthis line is far too long\n\nd";
        let parsed = parser.parse_buffer(input, &dict).unwrap();
        assert_eq!(words_of(&parsed, &dict), ["a", "b", "c", "d"]);
        assert_eq!(parsed.record_of, [0, 0, 0, 4]);
        assert_eq!((parsed.records, parsed.skipped), (5, 2));
        assert_eq!(parsed.errors[0].to_string(), "line 2: invalid UTF-8");
        assert_eq!(
            parsed.errors[1].reason,
            super::RecordError::LineTooLong {
                bytes: Some(25),
                max: 12
            }
        );
    }

    /// The words of `text` at one SIMD level, as strings with their lines.
    fn words_at(level: crate::simd::Level, text: &str, dict: &Dictionary) -> Vec<(String, u32)> {
        let mut buffer = super::ParseBuffer::default();
        let out = &mut buffer;
        super::with_cache(dict, |cache| {
            crate::simd_dispatch!(level, words_kernel(text: &str, cache: &mut super::KeyCache, dict: &Dictionary, out: &mut super::ParseBuffer) -> crate::error::Result<u64>)
        })
        .unwrap();
        let read = dict.read();
        buffer
            .keys
            .iter()
            .zip(&buffer.record_of)
            .map(|(&k, &line)| (read.get(k).unwrap().to_owned(), line))
            .collect()
    }

    #[test]
    fn every_simd_level_finds_the_words_and_lines_of_split_ascii_whitespace() {
        let mut rng = datasets::Rng::new(3);
        let pieces = [
            "a",
            "bb",
            "w12",
            "sixsix",
            "sevenxx",
            "eightxxx",
            "ninexxxxx",
            "a-rather-long-word-indeed",
            "é",
            "日本",
            " ",
            "  ",
            "\t",
            "\n",
            "\r\n",
            "\x0b",
            "\x0c",
        ];
        for round in 0..300 {
            let text: String = (0..rng.below(400))
                .map(|_| pieces[rng.below(pieces.len() as u64) as usize])
                .collect();
            let expected: Vec<(String, u32)> = text
                .split('\n')
                .enumerate()
                .flat_map(|(line, l)| {
                    l.split_ascii_whitespace()
                        .map(move |w| (w.to_owned(), line as u32))
                })
                .collect();
            // A fresh dictionary per level: ids may differ, words may not.
            for level in crate::simd::Level::ALL
                .into_iter()
                .filter(|l| l.is_supported())
            {
                let dict = Dictionary::new();
                assert_eq!(
                    words_at(level, &text, &dict),
                    expected,
                    "{level:?} round {round}: {text:?}"
                );
            }
        }
    }

    #[test]
    fn words_of_a_line_over_the_limit_never_reach_the_dictionary() {
        let dict = Dictionary::new();
        let parser = Parser::new(Format::Text, Extract::Words, 100);
        let long = (0..50)
            .map(|i| format!("junk{i}"))
            .collect::<Vec<_>>()
            .join(" ");
        let input = format!("good\n{long}\nfine\n");
        let parsed = parser.parse_buffer(input.as_bytes(), &dict).unwrap();
        assert_eq!(words_of(&parsed, &dict), ["good", "fine"]);
        assert_eq!((parsed.records, parsed.skipped), (3, 1));
        assert_eq!(dict.len(), 2, "only the words of good lines are interned");
    }

    #[test]
    fn grep_counts_matching_lines_once() {
        let dict = Dictionary::new();
        let parser = Parser::new(Format::Text, Extract::Grep("ERROR".into()), 1 << 20);
        let parsed = parser
            .parse_buffer(b"ERROR x ERROR\nok\nan ERROR\n", &dict)
            .unwrap();
        assert_eq!(parsed.record_of, [0, 2]);
        assert_eq!(words_of(&parsed, &dict), ["ERROR", "ERROR"]);
    }
}
