//! `--metrics-addr` and `--report-every`: a long job's live metrics over
//! HTTP (Prometheus' text format) and its summary line every so often, both
//! read from the one [`Metrics`] registry the job publishes into.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{bail, Result};
use clap::Args;
use engine::job::JobConfig;
use engine::metrics::{self, Metrics, MetricsServer};

use super::args::{usage, OutputOptions};
use super::values::parse_duration_or_zero;

/// The shortest `--report-every`: more often would drown stderr.
const MIN_REPORT_EVERY_MS: u64 = 100;

/// `engine run`'s observability flags (flattened into `RunArgs`).
#[derive(Debug, Clone, Args)]
pub struct ObserveArgs {
    /// Serve live metrics over HTTP on this address while the job runs, in
    /// Prometheus' text format (any GET path, e.g. /metrics): records and
    /// bytes in, malformed, late, unmatched and filtered records, windows
    /// and rows out, batch latency, checkpoints. Port 0 picks a free port
    /// (told on stderr).
    #[arg(long, value_name = "HOST:PORT", help_heading = "Reporting")]
    pub metrics_addr: Option<String>,
    /// Print the summary line of the job so far on stderr every DURATION
    /// (e.g. 10s), unless stderr is a terminal showing the progress bar.
    #[arg(
        long,
        value_name = "DURATION",
        help_heading = "Reporting",
        conflicts_with = "quiet"
    )]
    pub report_every: Option<String>,
}

/// The metrics server and the periodic summary of a running job; both stop
/// when this is dropped (the summary at [`Observer::stop_reporting`]).
#[derive(Default)]
pub struct Observer {
    _server: Option<MetricsServer>,
    reporter: Option<(mpsc::Sender<()>, JoinHandle<()>)>,
}

impl ObserveArgs {
    /// Checks the flags and, when either is given, gives the job a metrics
    /// registry, binds the server and starts the periodic summary.
    pub fn start(&self, config: &mut JobConfig, output: &OutputOptions) -> Result<Observer> {
        let every = self.report_every()?;
        let addr = self.metrics_addr()?;
        if every.is_none() && addr.is_none() {
            return Ok(Observer::default());
        }
        let metrics = Arc::new(Metrics::new());
        config.metrics = Some(Arc::clone(&metrics));
        let server = match &addr {
            Some(addr) => {
                let server = metrics::serve(addr, Arc::clone(&metrics)).map_err(|e| {
                    let why = std::error::Error::source(&e)
                        .map_or_else(|| e.to_string(), ToString::to_string);
                    usage(format!(
                        "--metrics-addr {addr}: cannot serve metrics there: {why}"
                    ))
                })?;
                super::diag(&format!(
                    "engine: metrics on http://{}/metrics",
                    server.local_addr()
                ));
                Some(server)
            }
            None => None,
        };
        let reporter = match every {
            Some(every) if !super::report::shows_progress_bar(config, output.quiet) => {
                Some(spawn_reporter(metrics, every)?)
            }
            _ => None,
        };
        Ok(Observer {
            _server: server,
            reporter,
        })
    }

    fn report_every(&self) -> Result<Option<Duration>> {
        let Some(text) = self.report_every.as_deref() else {
            return Ok(None);
        };
        let ms = parse_duration_or_zero(text, "--report-every")?;
        if ms < MIN_REPORT_EVERY_MS {
            bail!(usage(format!(
                "--report-every {text} is too often: at least {MIN_REPORT_EVERY_MS}ms, e.g. 10s"
            )));
        }
        Ok(Some(Duration::from_millis(ms)))
    }

    /// The address to serve on: `HOST:PORT`, or a port alone (`9898`,
    /// `:9898`) on loopback, as `--listen` takes it.
    fn metrics_addr(&self) -> Result<Option<String>> {
        let Some(addr) = self.metrics_addr.as_deref() else {
            return Ok(None);
        };
        let port_only = addr.strip_prefix(':').unwrap_or(addr);
        let full = if !port_only.is_empty() && port_only.chars().all(|c| c.is_ascii_digit()) {
            format!("127.0.0.1:{port_only}")
        } else {
            addr.to_owned()
        };
        let port = full
            .rsplit_once(':')
            .map(|(host, port)| (host, port.parse::<u16>()));
        match port {
            Some((host, Ok(_))) if !host.is_empty() && !host.contains(char::is_whitespace) => {
                Ok(Some(full))
            }
            _ => bail!(usage(format!(
                "--metrics-addr {addr}: expected HOST:PORT (port 0 to 65535), e.g. 127.0.0.1:9898"
            ))),
        }
    }
}

impl Observer {
    /// Stops the periodic summary (the job has ended: its final summary
    /// comes next). The metrics server stays until the observer is dropped.
    pub fn stop_reporting(&mut self) {
        if let Some((wake, thread)) = self.reporter.take() {
            drop(wake);
            let _ = thread.join();
        }
    }
}

impl Drop for Observer {
    fn drop(&mut self) {
        self.stop_reporting();
    }
}

/// Prints the summary line so far every `every`, until its sender is
/// dropped.
fn spawn_reporter(
    metrics: Arc<Metrics>,
    every: Duration,
) -> Result<(mpsc::Sender<()>, JoinHandle<()>)> {
    let (wake, sleep) = mpsc::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("engine-report".into())
        .spawn(move || {
            while let Err(RecvTimeoutError::Timeout) = sleep.recv_timeout(every) {
                super::diag(&super::report::running_summary(&metrics));
            }
        })?;
    Ok((wake, thread))
}
