//! Flag values: durations and sizes parsed exactly, and the files named by
//! `--output-file` and `--stats-json` checked before any input is read.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

use super::args::{usage, MAX_LINE_BYTES_CAP};

/// What a path names, to tell whether two flags name the same file: its
/// device and inode when it exists, its absolute path otherwise.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum FileId {
    Inode(u64, u64),
    Path(PathBuf),
}

pub(super) fn file_id(path: &Path) -> Option<FileId> {
    use std::os::unix::fs::MetadataExt as _;
    if let Ok(meta) = std::fs::metadata(path) {
        return Some(FileId::Inode(meta.dev(), meta.ino()));
    }
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    Some(FileId::Path(
        parent.canonicalize().ok()?.join(path.file_name()?),
    ))
}

/// The directory a file path would be created in.
pub(super) fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Checks, without truncating or leaving anything behind, that `path`
/// (given to `flag`) can be written: not a directory, writable if it exists,
/// and, when it does not or `in_dir` (the file is written beside it and
/// renamed), that its directory exists and takes a new file.
pub(super) fn check_writable(path: &Path, flag: &str, in_dir: bool) -> Result<()> {
    let shown = path.display();
    let meta = std::fs::metadata(path).ok();
    if meta.as_ref().is_some_and(std::fs::Metadata::is_dir) {
        bail!(usage(format!("{flag} {shown} is a directory")));
    }
    // (A pipe is not opened here: that would wait for its reader.)
    if meta.as_ref().is_some_and(std::fs::Metadata::is_file) {
        std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(|e| usage(format!("{flag} {shown} cannot be written: {e}")))?;
    }
    // A device or a pipe (`/dev/null`) is written in place.
    let regular_or_new = meta.as_ref().is_none_or(std::fs::Metadata::is_file);
    if meta.is_none() || (in_dir && regular_or_new) {
        let dir = parent_dir(path);
        if !dir.is_dir() {
            bail!(usage(format!(
                "{flag} {shown}: the directory {} does not exist",
                dir.display()
            )));
        }
        let Some(name) = path.file_name() else {
            bail!(usage(format!("{flag} {shown} is not a file name")));
        };
        // The same kind of file the job will write there, removed at once.
        let (probe, _) =
            super::output_file::create_temp(dir, &name.to_string_lossy()).map_err(|e| {
                usage(format!(
                    "{flag} {shown}: cannot create a file in {}: {e}",
                    dir.display()
                ))
            })?;
        let _ = std::fs::remove_file(&probe);
    }
    Ok(())
}

/// Parses `250ms`, `1s`, `1.5s`, `2m`, `1h` into whole milliseconds
/// (exactly: decimals are read as integers, not floats).
pub fn parse_duration(text: &str, flag: &str) -> Result<i64> {
    let bad = || {
        usage(format!(
            "invalid duration `{text}` for {flag} (expected e.g. 250ms, 1s, 2m, 1h)"
        ))
    };
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(bad)?;
    let (number, unit) = t.split_at(split);
    let scale: u128 = match unit.trim() {
        "ms" => 1,
        "s" => 1_000,
        "m" | "min" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(bad()),
    };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty() || fraction.contains('.') || fraction.len() > 18 {
        return Err(bad());
    }
    let digits = |s: &str| -> Result<u128> {
        if s.is_empty() {
            Ok(0)
        } else {
            s.parse::<u128>().map_err(|_| bad())
        }
    };
    let denominator = 10_u128.pow(fraction.len() as u32);
    let numerator = digits(whole)?
        .checked_mul(denominator)
        .and_then(|n| n.checked_add(digits(fraction).ok()?))
        .and_then(|n| n.checked_mul(scale))
        .ok_or_else(bad)?;
    if numerator == 0 || numerator % denominator != 0 {
        return Err(bad());
    }
    i64::try_from(numerator / denominator)
        .ok()
        .filter(|&ms| ms <= 1_000_000_000_000_000)
        .ok_or_else(bad)
}

/// A duration that may be zero (`0`, `0s`, `0ms`): milliseconds.
pub(super) fn parse_duration_or_zero(text: &str, flag: &str) -> Result<u64> {
    let number = text
        .trim()
        .trim_end_matches(|c: char| c.is_ascii_alphabetic());
    if !number.is_empty() && number.chars().all(|c| c == '0' || c == '.') && number.contains('0') {
        return Ok(0);
    }
    Ok(parse_duration(text, flag)?.unsigned_abs())
}

pub(super) fn parse_bytes(text: &str) -> Result<usize> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let scale: usize = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => 0,
    };
    match number.parse::<usize>() {
        Ok(n) if n > 0 && scale > 0 => match n.checked_mul(scale) {
            Some(bytes) if bytes <= MAX_LINE_BYTES_CAP => Ok(bytes),
            _ => Err(usage(format!(
                "--max-line-bytes {text} is above the cap of 1GiB (a line is held in memory whole)"
            ))),
        },
        _ => Err(usage(format!(
            "invalid size `{text}` for --max-line-bytes (expected e.g. 4096, 64KiB, 1MiB)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writable_checks_leave_nothing_behind_and_name_the_flag() {
        let dir = std::env::temp_dir().join(format!("engine-args-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let existing = dir.join("kept.txt");
        std::fs::write(&existing, "old").unwrap();
        check_writable(&existing, "--output-file", true).unwrap();
        check_writable(&dir.join("new.csv"), "--stats-json", false).unwrap();
        assert_eq!(std::fs::read_to_string(&existing).unwrap(), "old");
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["kept.txt"]);
        let err = check_writable(&dir, "--stats-json", false)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("--stats-json ") && err.ends_with("is a directory"),
            "{err}"
        );
        let err = check_writable(&dir.join("a/b.csv"), "--output-file", true)
            .unwrap_err()
            .to_string();
        assert!(err.contains("does not exist"), "{err}");
        // Two spellings of one file, existing or not.
        assert_eq!(file_id(&existing), file_id(&dir.join(".").join("kept.txt")));
        assert_eq!(
            file_id(&dir.join("new")),
            file_id(&dir.join("..").join(dir.file_name().unwrap()).join("new"))
        );
        assert_ne!(file_id(&dir.join("new")), file_id(&existing));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn durations_parse_and_bad_ones_name_the_value() {
        assert_eq!(parse_duration("250ms", "--batch").unwrap(), 250);
        assert_eq!(parse_duration("1.5s", "--batch").unwrap(), 1_500);
        assert_eq!(parse_duration("2m", "--batch").unwrap(), 120_000);
        assert_eq!(parse_duration("1.005s", "--batch").unwrap(), 1_005);
        assert_eq!(parse_duration("0.25s", "--batch").unwrap(), 250);
        for bad in [
            "",
            "1",
            "s",
            "-1s",
            "0s",
            "1.0001ms",
            "1x",
            ".s",
            "1..2s",
            "99999999999999999999999h",
        ] {
            let err = parse_duration(bad, "--window").unwrap_err().to_string();
            assert!(err.contains(&format!("`{bad}` for --window")), "{err}");
        }
    }
}
