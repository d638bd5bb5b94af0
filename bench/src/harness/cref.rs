//! The C reference programs of `bench/c/` (see its README): compiled with
//! the machine's C compiler into a scratch directory, run on the same files
//! as the engine, their outputs read and compared with the engine's.
//!
//! ```
//! use bench::harness::cref::same_csv_rows;
//!
//! let engine = "window_end,key,count\n10000,b,2\n10000,a,1\n";
//! let c = "window_end,key,count\n10000,a,1\n10000,b,2\n";
//! assert_eq!(same_csv_rows(engine, c), Ok(2));
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, ensure, Context, Result};

/// The flags both programs are built with: plain optimization, as the
/// issue's naive C program was (no `-march=native`, no SIMD by hand).
pub const CFLAGS: [&str; 1] = ["-O2"];

/// The directory of the programs' sources.
#[must_use]
pub fn source_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("c")
}

/// The compiled programs.
#[derive(Debug, Clone)]
pub struct Programs {
    /// `wordcount FILE`.
    pub wordcount: PathBuf,
    /// `ysb EVENTS CAMPAIGNS`.
    pub ysb: PathBuf,
    /// The compiler's command and the first line of its `--version`.
    pub compiler: String,
}

/// Compiles both programs into `dir` with `$CC` (default `cc`) and
/// [`CFLAGS`]. `Ok(Err(why))` when there is no working C compiler: the
/// caller skips the references and says why.
pub fn compile(dir: &Path) -> Result<std::result::Result<Programs, String>> {
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let version = match Command::new(&cc).arg("--version").output() {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .unwrap_or("")
            .trim()
            .to_owned(),
        Ok(out) => {
            return Ok(Err(format!(
                "`{cc} --version` failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )))
        }
        Err(e) => return Ok(Err(format!("no C compiler `{cc}` ({e}); set CC"))),
    };
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut built = Vec::new();
    for name in ["wordcount", "ysb"] {
        let source = source_dir().join(format!("{name}.c"));
        let binary = dir.join(name);
        let out = Command::new(&cc)
            .args(CFLAGS)
            .arg("-o")
            .arg(&binary)
            .arg(&source)
            .output()
            .with_context(|| format!("running {cc}"))?;
        if !out.status.success() {
            return Ok(Err(format!(
                "{cc} {} {} failed: {}",
                CFLAGS.join(" "),
                source.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        built.push(binary);
    }
    let ysb = built.pop().unwrap_or_default();
    let wordcount = built.pop().unwrap_or_default();
    Ok(Ok(Programs {
        wordcount,
        ysb,
        compiler: format!("`{cc} {}`: {version}", CFLAGS.join(" ")),
    }))
}

/// `name value` pairs, whitespace-separated, of a program's report.
fn pairs(text: &str) -> BTreeMap<&str, &str> {
    let words: Vec<&str> = text.split_whitespace().collect();
    words
        .chunks(2)
        .filter_map(|p| Some((p[0], *p.get(1)?)))
        .collect()
}

/// A number of a report, or an error naming it.
fn number<T: std::str::FromStr>(report: &BTreeMap<&str, &str>, name: &str) -> Result<T> {
    report
        .get(name)
        .and_then(|v| v.parse().ok())
        .with_context(|| format!("no number `{name}` in the program's report"))
}

/// What `wordcount` printed.
#[derive(Debug, Clone, PartialEq)]
pub struct WordCount {
    /// Every word counted.
    pub words: u64,
    /// Distinct words.
    pub distinct: u64,
    /// Lines.
    pub lines: u64,
    /// Bytes of the file.
    pub bytes: u64,
    /// The ten most frequent words, most frequent first.
    pub top: Vec<(String, u64)>,
    /// Its own time: mapping, counting, ranking.
    pub seconds: f64,
}

/// Reads `wordcount`'s stdout and stderr.
pub fn parse_wordcount(stdout: &str, stderr: &str) -> Result<WordCount> {
    let mut top = Vec::new();
    let mut rest = String::new();
    for line in stdout.lines() {
        if let Some(entry) = line.strip_prefix("top ") {
            let (word, count) = entry
                .rsplit_once(' ')
                .with_context(|| format!("bad line `{line}`"))?;
            top.push((word.to_owned(), count.parse()?));
        } else {
            rest.push_str(line);
            rest.push('\n');
        }
    }
    let report = pairs(&rest);
    let timing = pairs(stderr);
    Ok(WordCount {
        words: number(&report, "words")?,
        distinct: number(&report, "distinct")?,
        lines: number(&report, "lines")?,
        bytes: number(&report, "bytes")?,
        top,
        seconds: number(&timing, "seconds")?,
    })
}

/// What `ysb` printed.
#[derive(Debug, Clone, PartialEq)]
pub struct Ysb {
    /// The counts, CSV as the engine writes them.
    pub csv: String,
    /// Lines read.
    pub records: u64,
    /// Views counted.
    pub views: u64,
    /// Lines that are not views.
    pub filtered: u64,
    /// Views of an ad in no campaign.
    pub unmatched: u64,
    /// Views without a readable ad or time.
    pub malformed: u64,
    /// Its own time: from opening the events to the sorted counts.
    pub seconds: f64,
}

/// Reads `ysb`'s stdout and stderr.
pub fn parse_ysb(stdout: &str, stderr: &str) -> Result<Ysb> {
    let report = pairs(stderr);
    Ok(Ysb {
        csv: stdout.to_owned(),
        records: number(&report, "records")?,
        views: number(&report, "views")?,
        filtered: number(&report, "filtered")?,
        unmatched: number(&report, "unmatched")?,
        malformed: number(&report, "malformed")?,
        seconds: number(&report, "seconds")?,
    })
}

/// Runs `program` with `args`: its stdout and stderr, or an error with
/// what it said.
fn run(program: &Path, args: &[&Path]) -> Result<(String, String)> {
    let out = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("running {}", program.display()))?;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        bail!(
            "{} failed ({}): {}",
            program.display(),
            out.status,
            stderr.trim()
        );
    }
    Ok((String::from_utf8(out.stdout)?, stderr))
}

impl Programs {
    /// The word count of `file`.
    pub fn wordcount(&self, file: &Path) -> Result<WordCount> {
        let (stdout, stderr) = run(&self.wordcount, &[file])?;
        parse_wordcount(&stdout, &stderr)
    }

    /// YSB's counts of `events` with the table `campaigns`.
    pub fn ysb(&self, events: &Path, campaigns: &Path) -> Result<Ysb> {
        let (stdout, stderr) = run(&self.ysb, &[events, campaigns])?;
        let ysb = parse_ysb(&stdout, &stderr)?;
        ensure!(
            ysb.unmatched + ysb.malformed == 0,
            "the C YSB found {} views of unknown ads and {} malformed views",
            ysb.unmatched,
            ysb.malformed
        );
        Ok(ysb)
    }
}

/// Whether two CSV outputs have the same header and the same rows in any
/// order: the number of rows, or the first difference.
pub fn same_csv_rows(ours: &str, theirs: &str) -> std::result::Result<usize, String> {
    fn split(text: &str) -> (&str, Vec<&str>) {
        let mut lines = text.lines();
        let header = lines.next().unwrap_or("");
        let mut rows: Vec<&str> = lines.filter(|l| !l.is_empty()).collect();
        rows.sort_unstable();
        (header, rows)
    }
    let (h1, r1) = split(ours);
    let (h2, r2) = split(theirs);
    if h1 != h2 {
        return Err(format!("headers differ: `{h1}` and `{h2}`"));
    }
    if let Some((a, b)) = r1.iter().zip(&r2).find(|(a, b)| a != b) {
        return Err(format!("rows differ, first `{a}` and `{b}` (sorted)"));
    }
    if r1.len() != r2.len() {
        return Err(format!("{} rows and {} rows", r1.len(), r2.len()));
    }
    Ok(r1.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_rows_compare_as_sets_under_one_header() {
        let a = "window_end,key,count\n20,b,1\n10,a,3\n10,b,2\n";
        let b = "window_end,key,count\n10,a,3\n10,b,2\n20,b,1\n";
        assert_eq!(same_csv_rows(a, b), Ok(3));
        assert_eq!(same_csv_rows(a, a), Ok(3));
        let other_count = "window_end,key,count\n10,a,3\n10,b,2\n20,b,2\n";
        let e = same_csv_rows(a, other_count).unwrap_err();
        assert!(e.contains("`20,b,1` and `20,b,2`"), "{e}");
        let missing = "window_end,key,count\n10,a,3\n10,b,2\n";
        assert_eq!(
            same_csv_rows(a, missing),
            Err("3 rows and 2 rows".to_owned())
        );
        let header = "window_end,campaign,count\n10,a,3\n10,b,2\n20,b,1\n";
        assert!(same_csv_rows(a, header)
            .unwrap_err()
            .contains("headers differ"));
        // A missing final newline is no difference.
        assert_eq!(same_csv_rows(a.trim_end(), b), Ok(3));
    }

    #[test]
    fn reports_are_read_and_a_missing_figure_is_an_error() {
        let wc = parse_wordcount(
            "words 30\ndistinct 4\nlines 3\nbytes 120\ntop w0 20\ntop w1 5\n",
            "seconds 0.25\n",
        )
        .unwrap();
        assert_eq!((wc.words, wc.distinct, wc.lines, wc.bytes), (30, 4, 3, 120));
        assert_eq!(wc.top, vec![("w0".to_owned(), 20), ("w1".to_owned(), 5)]);
        assert!((wc.seconds - 0.25).abs() < 1e-12);
        assert!(parse_wordcount("words 30\n", "seconds 1").is_err());
        assert!(parse_wordcount("words 30\ndistinct 4\nlines 3\nbytes 120\n", "").is_err());

        let ysb = parse_ysb(
            "window_end,key,count\n10,a,1\n",
            "records 9 views 3 filtered 6 unmatched 0 malformed 0 seconds 0.5\n",
        )
        .unwrap();
        assert_eq!((ysb.records, ysb.views, ysb.filtered), (9, 3, 6));
        assert_eq!(ysb.csv, "window_end,key,count\n10,a,1\n");
        assert!(parse_ysb("", "records x views 3").is_err());
    }

    /// The programs themselves, on small files, against counts made here
    /// (skipped without a C compiler).
    #[test]
    fn the_c_programs_count_what_a_plain_rust_count_does() {
        let dir = std::env::temp_dir().join(format!("bench-cref-{}", std::process::id()));
        let programs = match compile(&dir).unwrap() {
            Ok(p) => p,
            Err(why) => {
                eprintln!("skipped: {why}");
                return;
            }
        };
        // Words: every separator, a word at the very end without a newline.
        let text = "a bb a\tccc\r\nbb a\x0c dd\n\n  a\x0bb a";
        let file = dir.join("words.txt");
        std::fs::write(&file, text).unwrap();
        let wc = programs.wordcount(&file).unwrap();
        let words: Vec<&str> = text.split_ascii_whitespace().collect();
        assert_eq!(wc.words, words.len() as u64);
        let mut counts = BTreeMap::new();
        for w in &words {
            *counts.entry(*w).or_insert(0_u64) += 1;
        }
        assert_eq!(wc.distinct, counts.len() as u64);
        assert_eq!(wc.lines, 4);
        assert_eq!(wc.bytes, text.len() as u64);
        let mut ranked: Vec<(String, u64)> =
            counts.iter().map(|(w, c)| ((*w).to_owned(), *c)).collect();
        ranked.sort_by(|x, y| y.1.cmp(&x.1).then(x.0.cmp(&y.0)));
        assert_eq!(wc.top, ranked);

        // YSB: both spellings, a view of each campaign, a click, a view in
        // the next window, a value that spells a member name.
        let events = dir.join("ysb.ndjson");
        let campaigns = dir.join("campaigns.csv");
        std::fs::write(&campaigns, "ad_id,campaign_id\nad1,cb\nad2,ca\nad3,ca\r\n").unwrap();
        std::fs::write(
            &events,
            concat!(
                r#"{"ad_id":"ad1","event_type":"view","event_time":"9999"}"#,
                "\n",
                r#"{"user_id": "ad_id", "ad_id": "ad2", "event_type": "view", "event_time": "5"}"#,
                "\n",
                r#"{"ad_id":"ad3","event_type":"click","event_time":"6"}"#,
                "\n",
                r#"{"event_time": 10000, "ad_id" : "ad3", "event_type":"view"}"#,
                "\n",
                r#"{"ad_id":"ad2","event_type":"view","event_time":"7"}"#,
            ),
        )
        .unwrap();
        let ysb = programs.ysb(&events, &campaigns).unwrap();
        assert_eq!(
            ysb.csv,
            "window_end,key,count\n10000,ca,2\n10000,cb,1\n20000,ca,1\n"
        );
        assert_eq!((ysb.records, ysb.views, ysb.filtered), (5, 4, 1));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
