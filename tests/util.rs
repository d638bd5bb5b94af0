//! What every test module uses to drive the `engine` binary (ripgrep's
//! `tests/util.rs`): the command, its output as text, scratch directories,
//! the summary JSON, and the process's memory.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// `engine run`, ready for arguments.
pub fn engine() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_engine"));
    cmd.arg("run");
    cmd
}

/// Runs `engine run ARGS` to its end.
pub fn run(args: &[&str]) -> Output {
    engine()
        .args(args)
        .output()
        .expect("the engine binary runs")
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A path as a command-line argument.
pub fn p(path: &Path) -> &str {
    path.to_str().expect("temp paths are UTF-8")
}

/// A scratch directory removed at the end of the test.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("engine-cli-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    /// A file of the directory, written with `contents`.
    pub fn file(&self, name: &str, contents: &[u8]) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    /// A path in the directory (nothing is created).
    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A number of the summary JSON (`--stats-json`).
#[track_caller]
pub fn stat(json: &str, member: &str) -> f64 {
    let key = format!("\"{member}\":");
    let at = json
        .find(&key)
        .unwrap_or_else(|| panic!("{member} in {json}"))
        + key.len();
    json[at..]
        .split([',', '}'])
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{member} in {json}"))
}

/// Peak resident memory of a running process, MB (0 once it has ended).
pub fn peak_rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}
