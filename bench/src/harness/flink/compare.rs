//! Flink's rows against the engine's: both sorted, compared row by row.

use std::path::Path;

use anyhow::{Context, Result};

/// The rows of a CSV text without its header line, sorted: the engine's
/// rows are by window then key, Flink's in the order its subtasks wrote.
#[must_use]
pub fn sorted_rows(csv: &str, has_header: bool) -> Vec<String> {
    let mut rows: Vec<String> = csv
        .lines()
        .skip(usize::from(has_header))
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    rows.sort_unstable();
    rows
}

/// Flink's rows: every `part-<n>.csv` of `dir`, sorted.
pub fn read_parts(dir: &Path) -> Result<Vec<String>> {
    let mut text = String::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if name.starts_with("part-") && name.ends_with(".csv") {
            text.push_str(&std::fs::read_to_string(&path)?);
        }
    }
    Ok(sorted_rows(&text, false))
}

/// How two sorted row sets differ.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Comparison {
    /// Rows in both.
    pub common: usize,
    /// Rows only the engine wrote (or with other values).
    pub only_engine: Vec<String>,
    /// Rows only Flink wrote (or with other values).
    pub only_flink: Vec<String>,
}

impl Comparison {
    /// Compares two sorted row sets.
    #[must_use]
    pub fn of(engine: &[String], flink: &[String]) -> Self {
        let mut result = Comparison::default();
        let (mut e, mut f) = (engine.iter().peekable(), flink.iter().peekable());
        loop {
            match (e.peek(), f.peek()) {
                (Some(ours), Some(theirs)) if ours == theirs => {
                    result.common += 1;
                    e.next();
                    f.next();
                }
                (Some(ours), Some(theirs)) if ours < theirs => {
                    result.only_engine.push((*ours).clone());
                    e.next();
                }
                (Some(ours), None) => {
                    result.only_engine.push((*ours).clone());
                    e.next();
                }
                (_, Some(theirs)) => {
                    result.only_flink.push((*theirs).clone());
                    f.next();
                }
                (None, None) => return result,
            }
        }
    }

    /// Both wrote the same rows.
    #[must_use]
    pub fn equal(&self) -> bool {
        self.only_engine.is_empty() && self.only_flink.is_empty()
    }

    /// One sentence: equal, or how many rows differ and in which windows.
    #[must_use]
    pub fn describe(&self) -> String {
        if self.equal() {
            return format!("equal to the engine's ({} rows)", self.common);
        }
        let ends = |rows: &[String]| {
            let mut ends: Vec<i64> = rows
                .iter()
                .filter_map(|r| r.split(',').next()?.parse().ok())
                .collect();
            ends.sort_unstable();
            ends.dedup();
            match ends.as_slice() {
                [] => String::new(),
                [one] => format!(" (window ending {one})"),
                [first, .., last] => {
                    format!(" ({} windows ending {first} … {last} ms)", ends.len())
                }
            }
        };
        format!(
            "**differs** from the engine's: {} rows in common, {} only in the engine's output{}, {} only in Flink's{}; first: `{}`",
            self.common,
            self.only_engine.len(),
            ends(&self.only_engine),
            self.only_flink.len(),
            ends(&self.only_flink),
            self.only_engine
                .first()
                .or(self.only_flink.first())
                .map_or("", String::as_str)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(text: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = text.iter().map(|&s| s.to_owned()).collect();
        v.sort_unstable();
        v
    }

    #[test]
    fn rows_are_compared_sorted_and_differences_name_their_windows() {
        let engine = sorted_rows(
            "window_end,key,count\n1000,w1,2\n1000,w0,5\n2000,w0,7\n",
            true,
        );
        assert_eq!(engine, rows(&["1000,w0,5", "1000,w1,2", "2000,w0,7"]));
        let same = Comparison::of(&engine, &rows(&["2000,w0,7", "1000,w1,2", "1000,w0,5"]));
        assert!(same.equal());
        assert_eq!(same.describe(), "equal to the engine's (3 rows)");

        // A different count and a missing edge window.
        let flink = rows(&["1000,w0,5", "1000,w1,3", "3000,w0,1"]);
        let c = Comparison::of(&engine, &flink);
        assert!(!c.equal());
        assert_eq!(c.common, 1);
        assert_eq!(c.only_engine, rows(&["1000,w1,2", "2000,w0,7"]));
        assert_eq!(c.only_flink, rows(&["1000,w1,3", "3000,w0,1"]));
        let text = c.describe();
        assert!(text.contains("2 windows ending 1000 … 2000 ms"), "{text}");
        assert!(text.contains("first: `1000,w1,2`"), "{text}");
        // Empty on one side.
        let c = Comparison::of(&engine, &[]);
        assert_eq!(
            (c.common, c.only_engine.len(), c.only_flink.len()),
            (0, 3, 0)
        );
    }

    #[test]
    fn flink_parts_are_read_together_and_other_files_ignored() {
        let dir = std::env::temp_dir().join(format!("bench-flink-parts-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("part-0.csv"), "2000,w0,7\n1000,w1,2\n").unwrap();
        std::fs::write(dir.join("part-1.csv"), "1000,w0,5\n").unwrap();
        std::fs::write(dir.join("notes.txt"), "9,x,9\n").unwrap();
        assert_eq!(
            read_parts(&dir).unwrap(),
            rows(&["1000,w0,5", "1000,w1,2", "2000,w0,7"])
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
