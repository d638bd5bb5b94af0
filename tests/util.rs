//! What every test module uses to drive the `engine` binary (ripgrep's
//! `tests/util.rs`): the command, its output as text, scratch directories,
//! the summary JSON, and the process's memory.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The `engine` binary, ready for a subcommand (`run`, `completions`, …).
pub fn engine_command() -> Command {
    Command::new(env!("CARGO_BIN_EXE_engine"))
}

/// `engine run`, ready for arguments.
pub fn engine() -> Command {
    let mut cmd = engine_command();
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

/// `engine run` with `args`, as a user types it.
pub struct TestCommand {
    cmd: Command,
}

impl TestCommand {
    pub fn run(args: &[&str]) -> Self {
        let mut cmd = engine();
        cmd.args(args);
        Self { cmd }
    }

    pub fn stdin_bytes(mut self, input: &[u8]) -> Output {
        self.cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = self.cmd.spawn().expect("the engine binary starts");
        let mut stdin = child.stdin.take().expect("piped");
        let input = input.to_vec();
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
        let out = child.wait_with_output().expect("the engine runs");
        let _ = writer.join();
        out
    }

    pub fn output(mut self) -> Output {
        self.cmd.output().expect("the engine runs")
    }

    pub fn spawn(mut self) -> Child {
        self.cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the engine binary starts")
    }
}

impl TestCommand {
    pub fn cmd_with_stdin_file(mut self, path: &Path) -> Output {
        self.cmd
            .stdin(std::fs::File::open(path).unwrap())
            .output()
            .unwrap()
    }
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Waits for `child` to exit, at most `limit`; kills it and fails otherwise.
pub fn exits_within(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("the engine did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn stderr_of(child: &mut Child) -> String {
    let mut err = String::new();
    let _ = child.stderr.take().unwrap().read_to_string(&mut err);
    err
}
