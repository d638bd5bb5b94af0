//! Text lines of Zipf-distributed words (`words`).

use crate::num::push_u64;
use crate::{Generator, Rng, Zipf};

/// Bytes of a word slot: the word, one space, zero padding.
const SLOT: usize = 16;
/// Ranks drawn ahead at a time: independent draws overlap in the CPU,
/// while writing each word must wait for the previous one's length.
const DRAWN_AHEAD: usize = 64;

/// Lines of Zipf-distributed words over a fixed vocabulary (`w0`, `w1`, …,
/// `w0` the most frequent), the input of word-count and grep jobs.
///
/// Two shapes of line:
///
/// - by default, `words_per_line` words separated by single spaces;
/// - with [`with_record_bytes`](Self::with_record_bytes), fixed-width
///   records as in the D-Streams paper's Grep and `WordCount` runs (100-byte
///   records): as many whole words as fit, separated by single spaces, then
///   spaces up to exactly that many bytes. A word that does not fit starts
///   the next record, so the words of all records are one Zipf sequence
///   (a word longer than a whole record is cut to the record's width).
///
/// Each line written by [`append_line`](Self::append_line) (and by
/// [`write_records`](crate::write_records)) ends with `\n`; the strings of
/// [`line`](Self::line) do not.
///
/// ```
/// let mut words = datasets::WordLines::new(1, 1_000, 1.0, 8);
/// let lines = words.lines(3);
/// assert_eq!(lines.len(), 3);
/// assert!(lines.iter().all(|l| l.split(' ').count() == 8));
///
/// let mut records = datasets::WordLines::new(1, 1_000, 1.0, 8).with_record_bytes(100);
/// assert!(records.lines(3).iter().all(|l| l.len() == 100 && l.starts_with('w')));
/// ```
#[derive(Debug, Clone)]
pub struct WordLines {
    rng: Rng,
    zipf: Zipf,
    /// Word `r` followed by a space, zero-padded.
    slots: Vec<[u8; SLOT]>,
    /// Length of word `r`.
    lens: Vec<u8>,
    words_per_line: usize,
    record_bytes: Option<usize>,
    /// The next ranks of the sequence, `drawn[next..]` not used yet.
    drawn: [usize; DRAWN_AHEAD],
    next: usize,
}

impl WordLines {
    /// A generator over `vocabulary` words with Zipf exponent `skew`, of
    /// lines of `words_per_line` words.
    #[must_use]
    pub fn new(seed: u64, vocabulary: usize, skew: f64, words_per_line: usize) -> Self {
        let vocabulary = vocabulary.max(1);
        let mut slots = Vec::with_capacity(vocabulary);
        let mut lens = Vec::with_capacity(vocabulary);
        let mut word = Vec::with_capacity(SLOT);
        for rank in 0..vocabulary {
            word.clear();
            word.push(b'w');
            push_u64(&mut word, rank as u64);
            // `w` and up to 14 digits: more ranks than memory can hold.
            word.truncate(SLOT - 1);
            let mut slot = [0; SLOT];
            slot[..word.len()].copy_from_slice(&word);
            slot[word.len()] = b' ';
            slots.push(slot);
            lens.push(word.len() as u8);
        }
        Self {
            rng: Rng::new(seed),
            zipf: Zipf::new(vocabulary, skew),
            slots,
            lens,
            words_per_line: words_per_line.max(1),
            record_bytes: None,
            drawn: [0; DRAWN_AHEAD],
            next: DRAWN_AHEAD,
        }
    }

    /// The same generator making fixed-width records of exactly `bytes`
    /// bytes (at least 1) before each newline, instead of
    /// `words_per_line` words.
    #[must_use]
    pub fn with_record_bytes(mut self, bytes: usize) -> Self {
        self.record_bytes = Some(bytes.max(1));
        self
    }

    /// Word number `rank` of the vocabulary (`w{rank}`), `rank` in
    /// `0..vocabulary`.
    #[must_use]
    pub fn word(&self, rank: usize) -> &str {
        let word = &self.slots[rank][..usize::from(self.lens[rank])];
        std::str::from_utf8(word).unwrap_or_default()
    }

    /// Number of words of the vocabulary.
    #[must_use]
    pub fn vocabulary(&self) -> usize {
        self.slots.len()
    }

    /// The next line, without its newline.
    pub fn line(&mut self) -> String {
        let mut line = Vec::with_capacity(self.record_bytes.unwrap_or(self.words_per_line * 6) + 1);
        self.append_line(&mut line);
        line.pop();
        String::from_utf8_lossy(&line).into_owned()
    }

    /// The next `n` lines, without their newlines.
    pub fn lines(&mut self, n: usize) -> Vec<String> {
        (0..n).map(|_| self.line()).collect()
    }

    /// Appends the next line and its newline to `out`.
    #[inline]
    pub fn append_line(&mut self, out: &mut Vec<u8>) {
        match self.record_bytes {
            None => self.append_words(out),
            Some(bytes) => self.append_record_of(bytes, out),
        }
    }

    /// `words_per_line` words, each followed by a space, the last space
    /// turned into the newline.
    #[inline]
    fn append_words(&mut self, out: &mut Vec<u8>) {
        out.reserve(self.words_per_line * SLOT);
        for _ in 0..self.words_per_line {
            let rank = self.peek();
            self.next += 1;
            self.push_word(rank, out);
        }
        if let Some(last) = out.last_mut() {
            *last = b'\n';
        }
    }

    /// The next rank of the sequence, left for the next call until
    /// `self.next` moves past it.
    #[inline]
    fn peek(&mut self) -> usize {
        if self.next == DRAWN_AHEAD {
            for rank in &mut self.drawn {
                *rank = self.zipf.sample(&mut self.rng);
            }
            self.next = 0;
        }
        self.drawn[self.next]
    }

    /// Word `rank` and a space.
    #[inline]
    fn push_word(&self, rank: usize, out: &mut Vec<u8>) {
        let end = out.len() + usize::from(self.lens[rank]) + 1;
        out.extend_from_slice(&self.slots[rank]);
        out.truncate(end);
    }

    /// Whole words up to `bytes`, padded with spaces to exactly `bytes`.
    fn append_record_of(&mut self, bytes: usize, out: &mut Vec<u8>) {
        let start = out.len();
        out.reserve(bytes + SLOT + 1);
        loop {
            let rank = self.peek();
            let used = out.len() - start;
            let len = usize::from(self.lens[rank]);
            if used + len <= bytes {
                // The word and its space: the space may be one byte too
                // many, cut below.
                self.push_word(rank, out);
            } else if used == 0 {
                out.extend_from_slice(&self.slots[rank][..bytes.min(len)]);
            } else {
                // The word starts the next record.
                break;
            }
            self.next += 1;
            if out.len() - start >= bytes {
                break;
            }
        }
        out.resize(start + bytes, b' ');
        out.push(b'\n');
    }
}

impl Generator for WordLines {
    #[inline]
    fn append_record(&mut self, out: &mut Vec<u8>) {
        self.append_line(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lines of the first version of `WordLines::line`, which callers'
    /// expectations were built on: the fast path must keep them.
    fn reference_lines(
        seed: u64,
        vocabulary: usize,
        skew: f64,
        words: usize,
        n: usize,
    ) -> Vec<String> {
        let mut rng = Rng::new(seed);
        let zipf = Zipf::new(vocabulary, skew);
        (0..n)
            .map(|_| {
                (0..words)
                    .map(|_| format!("w{}", zipf.sample(&mut rng)))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect()
    }

    #[test]
    fn lines_are_the_reference_lines() {
        let mut words = WordLines::new(42, 10_000, 1.0, 10);
        assert_eq!(words.lines(500), reference_lines(42, 10_000, 1.0, 10, 500));
        let mut bytes = Vec::new();
        let mut words = WordLines::new(7, 100, 0.5, 3);
        for _ in 0..200 {
            words.append_line(&mut bytes);
        }
        let expected = reference_lines(7, 100, 0.5, 3, 200).join("\n") + "\n";
        assert_eq!(String::from_utf8(bytes).unwrap(), expected);
    }

    #[test]
    fn records_are_exactly_their_width_and_keep_the_word_sequence() {
        for width in [100, 1, 2, 3, 7, 64] {
            let mut records = WordLines::new(5, 10_000, 1.0, 10).with_record_bytes(width);
            let mut out = Vec::new();
            for _ in 0..2_000 {
                records.append_line(&mut out);
            }
            assert_eq!(out.len(), 2_000 * (width + 1));
            for record in out.chunks(width + 1) {
                assert_eq!(record[width], b'\n', "width {width}");
                assert!(!record[..width].contains(&b'\n'));
                assert_eq!(
                    record[0],
                    b'w',
                    "width {width}: {:?}",
                    String::from_utf8_lossy(record)
                );
            }
            if width >= 6 {
                // Words longer than no record: the words are the Zipf sequence.
                let text = String::from_utf8(out).unwrap();
                let got: Vec<&str> = text.split_ascii_whitespace().collect();
                let mut rng = Rng::new(5);
                let zipf = Zipf::new(10_000, 1.0);
                for word in got {
                    assert_eq!(word, format!("w{}", zipf.sample(&mut rng)));
                }
            }
        }
    }

    #[test]
    fn hundred_byte_records_are_packed() {
        let lines = WordLines::new(42, 10_000, 1.0, 10)
            .with_record_bytes(100)
            .lines(1_000);
        for line in &lines {
            assert_eq!(line.len(), 100);
            // Padding is shorter than the longest word and its space.
            assert!(line.len() - line.trim_end().len() <= 6, "{line:?}");
            assert!(!line.trim_end().contains("  "), "{line:?}");
        }
    }

    #[test]
    fn vocabulary_words() {
        let words = WordLines::new(1, 12, 1.0, 1);
        assert_eq!(words.vocabulary(), 12);
        assert_eq!(words.word(0), "w0");
        assert_eq!(words.word(11), "w11");
    }
}
