//! The machine's load during a run, so that a noisy run is visible: the
//! load averages at its start and end (`/proc/loadavg`), and the CPU time
//! the whole machine spent (`/proc/stat`) minus what this process and the
//! children it waited for spent (`/proc/self/stat`): the CPU time taken by
//! *other* processes while we measured. Steal time (a virtual machine's
//! host running someone else) is counted apart.
//!
//! ```
//! use bench::harness::load::{parse_loadavg, parse_proc_stat};
//!
//! assert_eq!(parse_loadavg("0.52 0.71 1.02 2/345 6789\n"), Some([0.52, 0.71, 1.02]));
//! let cpu = parse_proc_stat("cpu  100 5 50 1000 20 3 2 7 0 0\ncpu0 50 2 25 500 10 1 1 3 0 0\n").unwrap();
//! assert_eq!((cpu.busy, cpu.idle, cpu.steal), (160, 1020, 7));
//! ```

use std::fmt::Write as _;
use std::time::Instant;

/// Clock ticks per second of `/proc/stat` and `/proc/<pid>/stat`
/// (`USER_HZ`, 100 on every Linux architecture the project runs on).
pub const TICKS_PER_SECOND: f64 = 100.0;

/// The machine's CPU time since boot, all CPUs, in ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CpuTimes {
    /// user + nice + system + irq + softirq (guest time is inside user).
    pub busy: u64,
    /// idle + iowait.
    pub idle: u64,
    /// Time the hypervisor ran something else while a CPU wanted to run.
    pub steal: u64,
}

/// The `cpu` line of `/proc/stat`.
#[must_use]
pub fn parse_proc_stat(text: &str) -> Option<CpuTimes> {
    let line = text
        .lines()
        .find(|l| l.split_whitespace().next() == Some("cpu"))?;
    let f: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    // user nice system idle iowait irq softirq steal [guest guest_nice]
    let at = |i: usize| f.get(i).copied().unwrap_or(0);
    (f.len() >= 4).then(|| CpuTimes {
        busy: at(0) + at(1) + at(2) + at(5) + at(6),
        idle: at(3) + at(4),
        steal: at(7),
    })
}

/// CPU ticks of a process and of the children it waited for: fields 14–17
/// (utime, stime, cutime, cstime) of `/proc/<pid>/stat`.
#[must_use]
pub fn parse_process_stat(text: &str) -> Option<u64> {
    // The command name (field 2) is in parentheses and may hold spaces.
    let after = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = after.split_whitespace().collect();
    // `after` starts at field 3 (the state): field n is f[n - 3].
    (14..=17).map(|n| f.get(n - 3)?.parse::<u64>().ok()).sum()
}

/// The 1, 5 and 15-minute load averages of `/proc/loadavg`.
#[must_use]
pub fn parse_loadavg(text: &str) -> Option<[f64; 3]> {
    let mut f = text.split_whitespace().map(str::parse::<f64>);
    Some([f.next()?.ok()?, f.next()?.ok()?, f.next()?.ok()?])
}

/// One reading of the machine and of this process.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    at: Instant,
    loadavg: Option<[f64; 3]>,
    cpu: Option<CpuTimes>,
    own_ticks: Option<u64>,
}

impl Sample {
    /// Reads `/proc` now (fields it cannot read are missing, not errors).
    #[must_use]
    pub fn now() -> Self {
        let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
        Self {
            at: Instant::now(),
            loadavg: parse_loadavg(&read("/proc/loadavg")),
            cpu: parse_proc_stat(&read("/proc/stat")),
            own_ticks: parse_process_stat(&read("/proc/self/stat")),
        }
    }
}

/// The load between two samples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Load {
    /// Wall-clock seconds between the samples.
    pub seconds: f64,
    /// CPUs the machine has.
    pub cores: usize,
    /// Load averages (1, 5, 15 min) at the start and at the end.
    pub loadavg: (Option<[f64; 3]>, Option<[f64; 3]>),
    /// CPU seconds the whole machine was busy.
    pub busy_seconds: Option<f64>,
    /// CPU seconds of this process and of the children it waited for.
    pub own_seconds: Option<f64>,
    /// CPU seconds stolen by the hypervisor.
    pub steal_seconds: Option<f64>,
}

impl Load {
    /// The load from `start` to `end` on a machine of `cores` CPUs.
    #[must_use]
    pub fn between(start: &Sample, end: &Sample, cores: usize) -> Self {
        let ticks = |a: Option<u64>, b: Option<u64>| {
            a.zip(b)
                .map(|(a, b)| b.saturating_sub(a) as f64 / TICKS_PER_SECOND)
        };
        let cpu =
            |f: fn(&CpuTimes) -> u64| ticks(start.cpu.as_ref().map(f), end.cpu.as_ref().map(f));
        Self {
            seconds: end.at.duration_since(start.at).as_secs_f64(),
            cores: cores.max(1),
            loadavg: (start.loadavg, end.loadavg),
            busy_seconds: cpu(|c| c.busy),
            own_seconds: ticks(start.own_ticks, end.own_ticks),
            steal_seconds: cpu(|c| c.steal),
        }
    }

    /// CPU seconds of other processes: the machine's busy time minus ours
    /// (never negative: the two are read a moment apart).
    #[must_use]
    pub fn others_seconds(&self) -> Option<f64> {
        self.busy_seconds
            .zip(self.own_seconds)
            .map(|(busy, own)| (busy - own).max(0.0))
    }

    /// A CPU time as a share of all the machine's CPU time of the run.
    fn share(&self, cpu_seconds: f64) -> f64 {
        cpu_seconds / (self.seconds * self.cores as f64).max(1e-9)
    }

    /// Markdown lines (`- …`) for `setup.md` and the summary.
    #[must_use]
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let avg = |l: Option<[f64; 3]>| {
            l.map_or_else(
                || "unknown".into(),
                |[a, b, c]| format!("{a:.2} {b:.2} {c:.2}"),
            )
        };
        let _ = writeln!(
            out,
            "- load average (1, 5, 15 min): {} at the start, {} at the end",
            avg(self.loadavg.0),
            avg(self.loadavg.1)
        );
        let seconds = |s: Option<f64>| {
            s.map_or_else(
                || "unknown".into(),
                |s| {
                    format!(
                        "{s:.1} CPU s ({:.0} % of the machine)",
                        100.0 * self.share(s)
                    )
                },
            )
        };
        let _ = writeln!(
            out,
            "- CPU time over the run's {:.1} s on {} CPUs: this process and its children {}; **other processes {}**; stolen by the hypervisor {}",
            self.seconds,
            self.cores,
            seconds(self.own_seconds),
            seconds(self.others_seconds()),
            seconds(self.steal_seconds)
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `/proc/stat` as a 2-CPU Linux 6 writes it (shortened).
    const STAT: &str = "cpu  4705 150 1120 16250 520 0 44 310 0 0
cpu0 2350 75 560 8125 260 0 22 155 0 0
cpu1 2355 75 560 8125 260 0 22 155 0 0
intr 123456 0 0
ctxt 98765
btime 1700000000
";

    #[test]
    fn proc_stat_sums_busy_idle_and_steal_of_all_cpus() {
        let cpu = parse_proc_stat(STAT).unwrap();
        assert_eq!(cpu.busy, 4705 + 150 + 1120 + 44);
        assert_eq!(cpu.idle, 16250 + 520);
        assert_eq!(cpu.steal, 310);
        // Old kernels have four fields only.
        let old = parse_proc_stat("cpu 1 2 3 4\n").unwrap();
        assert_eq!((old.busy, old.idle, old.steal), (6, 4, 0));
        assert_eq!(parse_proc_stat("cpu0 1 2 3 4\n"), None);
        assert_eq!(parse_proc_stat("cpu  1 x 3 4\n"), None);
    }

    #[test]
    fn process_stat_reads_own_and_children_ticks_past_a_name_with_spaces() {
        // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt
        // majflt cmajflt utime stime cutime cstime priority ...
        let text =
            "4242 (re (pro) duce) R 1 4242 4242 0 -1 4194304 900 0 0 0 250 40 7 3 20 0 3 0\n";
        assert_eq!(parse_process_stat(text), Some(250 + 40 + 7 + 3));
        assert_eq!(parse_process_stat("4242 (x) R 1 2"), None);
        assert_eq!(parse_process_stat("no parenthesis"), None);
    }

    #[test]
    fn loadavg_reads_three_averages() {
        assert_eq!(
            parse_loadavg("1.50 0.75 0.25 3/120 999\n"),
            Some([1.5, 0.75, 0.25])
        );
        assert_eq!(parse_loadavg("1.50 0.75"), None);
        assert_eq!(parse_loadavg(""), None);
    }

    #[test]
    fn others_are_the_machine_minus_us_and_shares_are_of_all_cpus() {
        let start = Sample {
            at: Instant::now(),
            loadavg: Some([1.0, 1.0, 1.0]),
            cpu: Some(CpuTimes {
                busy: 1_000,
                idle: 5_000,
                steal: 10,
            }),
            own_ticks: Some(100),
        };
        let end = Sample {
            at: start.at + std::time::Duration::from_secs(10),
            loadavg: Some([2.0, 1.5, 1.1]),
            cpu: Some(CpuTimes {
                busy: 2_500,
                idle: 5_400,
                steal: 60,
            }),
            own_ticks: Some(1_100),
        };
        let load = Load::between(&start, &end, 2);
        assert!((load.seconds - 10.0).abs() < 1e-9);
        assert_eq!(load.busy_seconds, Some(15.0));
        assert_eq!(load.own_seconds, Some(10.0));
        assert_eq!(load.others_seconds(), Some(5.0));
        assert_eq!(load.steal_seconds, Some(0.5));
        let text = load.markdown();
        assert!(
            text.contains("other processes 5.0 CPU s (25 % of the machine)"),
            "{text}"
        );
        assert!(text.contains("2.00 1.50 1.10 at the end"), "{text}");
        // Our time read after the machine's may exceed its busy time.
        let ahead = Sample {
            own_ticks: Some(1_700),
            ..end
        };
        assert_eq!(Load::between(&start, &ahead, 2).others_seconds(), Some(0.0));
        // Nothing readable: unknown, not zero.
        let blind = Sample {
            at: end.at,
            loadavg: None,
            cpu: None,
            own_ticks: None,
        };
        let unknown = Load::between(&start, &blind, 2);
        assert_eq!(unknown.others_seconds(), None);
        assert!(unknown.markdown().contains("unknown"));
    }
}
