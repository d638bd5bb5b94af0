//! The machine a run was measured on: CPU, cores, memory, single-core
//! memory bandwidth and tool versions, for the run's `setup.md`.

use std::fmt::Write as _;
use std::hint::black_box;
use std::process::Command;
use std::time::Instant;

/// What the run's setup file records.
#[derive(Debug, Clone)]
pub struct Machine {
    /// `model name` of `/proc/cpuinfo`.
    pub cpu: String,
    /// Logical CPUs this process may use.
    pub cores: usize,
    /// `MemTotal`, GiB.
    pub memory_gib: f64,
    /// L2 cache per core, as the kernel reports it.
    pub l2: String,
    /// Host name.
    pub host: String,
    /// Kernel release.
    pub kernel: String,
    /// `rustc --version`.
    pub rustc: String,
    /// The commit of the workspace, with `-dirty` when it has changes.
    pub commit: String,
    /// Single-core read bandwidth, GB/s (10^9 bytes).
    pub read_gbps: f64,
    /// Single-core copy bandwidth (bytes read + written), GB/s.
    pub copy_gbps: f64,
}

fn command(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

impl Machine {
    /// Reads the machine and measures its memory bandwidth with a buffer of
    /// `bandwidth_bytes` (should be far larger than the last-level cache).
    #[must_use]
    pub fn probe(bandwidth_bytes: usize) -> Self {
        let cpuinfo = read("/proc/cpuinfo");
        let cpu = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .map_or("unknown", |l| l.trim_start_matches([' ', '\t', ':']))
            .to_owned();
        let memory_gib = read("/proc/meminfo")
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|l| l.split_whitespace().next()?.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / f64::from(1 << 20));
        let l2 = read("/sys/devices/system/cpu/cpu0/cache/index2/size")
            .trim()
            .to_owned();
        let (read_gbps, copy_gbps) = bandwidth(bandwidth_bytes);
        let manifest = env!("CARGO_MANIFEST_DIR");
        let commit = command("git", &["-C", manifest, "rev-parse", "--short=12", "HEAD"])
            .map_or_else(
                || "unknown".to_owned(),
                |c| {
                    let dirty = command(
                        "git",
                        &[
                            "-C",
                            manifest,
                            "status",
                            "--porcelain",
                            "--untracked-files=no",
                        ],
                    )
                    .is_some_and(|s| !s.is_empty());
                    if dirty {
                        format!("{c}-dirty")
                    } else {
                        c
                    }
                },
            );
        Self {
            cpu,
            cores: std::thread::available_parallelism().map_or(1, usize::from),
            memory_gib,
            l2: if l2.is_empty() { "unknown".into() } else { l2 },
            host: host_name(),
            kernel: read("/proc/sys/kernel/osrelease").trim().to_owned(),
            rustc: command("rustc", &["--version"]).unwrap_or_else(|| "unknown".into()),
            commit,
            read_gbps,
            copy_gbps,
        }
    }

    /// The setup as Markdown lines (`- name: value`).
    #[must_use]
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "- CPU: {} ({} logical CPUs usable, L2 {} per core)",
            self.cpu, self.cores, self.l2
        );
        let _ = writeln!(out, "- memory: {:.1} GiB", self.memory_gib);
        let _ = writeln!(
            out,
            "- single-core memory bandwidth (measured): read {:.1} GB/s, copy {:.1} GB/s",
            self.read_gbps, self.copy_gbps
        );
        let _ = writeln!(out, "- host: {}, kernel {}", self.host, self.kernel);
        let _ = writeln!(out, "- {}; engine commit {}", self.rustc, self.commit);
        out
    }
}

/// The machine's host name.
#[must_use]
pub fn host_name() -> String {
    let name = read("/proc/sys/kernel/hostname").trim().to_owned();
    if name.is_empty() {
        "localhost".into()
    } else {
        name
    }
}

/// Single-core read and copy bandwidth over a buffer of `bytes`, GB/s: the
/// best of a few passes (the first one also faults the pages in).
fn bandwidth(bytes: usize) -> (f64, f64) {
    let words = (bytes / 8).max(1 << 16);
    let source: Vec<u64> = (0..words as u64).collect();
    let mut target = vec![0_u64; words];
    let mut best_read = f64::MAX;
    let mut best_copy = f64::MAX;
    for _ in 0..4 {
        let start = Instant::now();
        // Four independent sums keep several loads in flight.
        let mut sums = [0_u64; 4];
        for chunk in source.chunks_exact(4) {
            for (s, &x) in sums.iter_mut().zip(chunk) {
                *s = s.wrapping_add(x);
            }
        }
        black_box(sums);
        best_read = best_read.min(start.elapsed().as_secs_f64());
        let start = Instant::now();
        target.copy_from_slice(&source);
        black_box(&target);
        best_copy = best_copy.min(start.elapsed().as_secs_f64());
    }
    let gb = (words * 8) as f64 / 1e9;
    (gb / best_read, 2.0 * gb / best_copy)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_reads_something_plausible() {
        let m = Machine::probe(8 << 20);
        assert!(m.cores >= 1);
        assert!(m.read_gbps > 0.1 && m.copy_gbps > 0.1, "{m:?}");
        assert!(m.markdown().contains("bandwidth"));
    }
}
