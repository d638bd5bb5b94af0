//! The command line: flags, durations, and the terminal side of a job
//! (output, progress bar, summary).

mod args;
mod checkpoints;
mod checks;
mod errors;
mod generate;
mod kafka_args;
mod kafka_output;
mod manual;
mod observe;
mod output_file;
mod report;
mod signals;
mod stage;
mod values;

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser as _;
use engine::job;

pub use args::Cli;
pub use report::diag;

/// Exit status for an error: 2 for what the user can fix on the command line
/// or in the environment (bad flag, missing file, unknown column,
/// unreachable socket), 1 for a job that failed on its data or its output.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    match err.downcast_ref::<engine::Error>() {
        Some(e) if e.is_usage() => 2,
        None if err.downcast_ref::<args::UsageError>().is_some() => 2,
        // Malformed data with --on-error fail, a failed write, and anything
        // else.
        _ => 1,
    }
}

pub use errors::render;

/// A job that ran but must not count as a success.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct JobFailed(String);

pub fn main() -> Result<ExitCode> {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help, --version, or a usage error. A closed pipe
            // (`--help | head`) is a quiet end; a full disk is a failure.
            return Ok(match e.print() {
                Err(io) if io.kind() != std::io::ErrorKind::BrokenPipe => ExitCode::from(1),
                _ => ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2)),
            });
        }
    };
    let run = match cli.command {
        args::Command::Run(run) => run,
        args::Command::Completions { shell } => return manual::print_completions(shell),
        args::Command::Man { command } => return manual::print_man(command.as_deref()),
    };
    let from_scratch = run.from_scratch;
    let observe = run.observe.clone();
    let (mut config, output) = run.into_job()?;
    let mut observer = observe.start(&mut config, &output)?;
    let signals = signals::Signals::install().context("installing signal handlers")?;
    let resume = match checkpoints::prepare(&config, &output, from_scratch)? {
        checkpoints::Prepared::Run(resume) => resume,
        checkpoints::Prepared::Done => return Ok(ExitCode::SUCCESS),
    };
    // The output file is written beside the target and renamed into place
    // when the job has written what it could: a failed job leaves an
    // existing file untouched. A checkpointed job's file in progress stays
    // for the next run to resume.
    let resumed_output = resume.as_ref().and_then(|r| r.output()).cloned();
    let Some((pending, out, committer)) =
        open_output(&output, &config, resumed_output.as_ref(), &signals)?
    else {
        return Ok(exit_status(signals.received()));
    };
    let rows_path = pending.as_ref().map(output_file::PendingFile::temp_path);
    let mut hooks = report::CliHooks::new(out, &config, &output, rows_path);
    if let (Some(file), Some(path)) = (committer, rows_path) {
        hooks.commit_through(path, file);
    }
    #[cfg(feature = "kafka")]
    if let Some(kafka) = &output.kafka {
        let order = output.top.map_or(engine::sink::RowOrder::ByKey, |n| {
            engine::sink::RowOrder::Top(n)
        });
        let columns = output
            .columns
            .clone()
            .unwrap_or_else(|| config.output_columns());
        hooks.use_sink(kafka_output::open_sink(kafka, columns, order)?);
    }
    if resumed_output.is_some_and(|at| at.len > 0) {
        hooks.continue_output();
    }
    let result = job::run_from(&config, &mut hooks, signals.stop_flag(), resume.as_deref());
    observer.stop_reporting();
    let report = match result {
        Ok(report) => report,
        Err(err) => {
            hooks.finish_progress();
            let failure = match hooks.take_write_error() {
                // The reader went away (`| head`): nothing more to say.
                Some(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                    return Ok(ExitCode::SUCCESS)
                }
                Some(e) => anyhow::Error::new(e).context("writing the output"),
                None => err.into(),
            };
            return Err(left_alone(failure, output.file.as_deref()));
        }
    };
    let all_malformed = report.records > 0 && report.skipped == report.records;
    let stats = match hooks.finish(&report, signals.received()) {
        Ok(json) => json,
        // Rows to a closed stdout (`| head`): a quiet end.
        Err(e) if is_broken_pipe(&e) => return Ok(ExitCode::SUCCESS),
        Err(e) => return Err(left_alone(write_failed(&e), output.file.as_deref())),
    };
    if all_malformed && !report.interrupted {
        // A job that read nothing good is not resumed: its checkpoints
        // (which say it finished) and its output in progress go.
        if config.checkpoint.is_some() {
            let _ = engine::checkpoint::clear(&config);
            if let Some(pending) = &pending {
                let _ = std::fs::remove_file(pending.temp_path());
            }
        }
        return Err(left_alone(
            JobFailed(format!(
                "every one of the {} records was malformed: check --format, --key-col, --value-col and --time-col",
                report.records
            ))
            .into(),
            output.file.as_deref(),
        ));
    }
    put_in_place(pending, &config, &report)?;
    // The rows are safe: the summary JSON comes last, so that a closed
    // stdout loses only the summary.
    if let Some(path) = &output.stats_json {
        match write_stats(path, &stats, signals.stop_flag()) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
            Err(e) => {
                return Err(write_failed(
                    &anyhow::Error::new(e).context(format!("--stats-json {}", path.display())),
                ))
            }
        }
    }
    Ok(exit_status(signals.received()))
}

/// The rows' writer: stdout, or a file written beside its target (resumed
/// from a checkpoint's output in progress), with a second handle to sync it
/// through for checkpoints. `None` when a signal came while opening it.
#[allow(clippy::type_complexity)] // Three parts, each used once by `main`.
fn open_output(
    output: &args::OutputOptions,
    config: &job::JobConfig,
    resumed: Option<&engine::checkpoint::OutputPosition>,
    signals: &signals::Signals,
) -> Result<
    Option<(
        Option<output_file::PendingFile>,
        Box<dyn Write>,
        Option<std::fs::File>,
    )>,
> {
    let Some(path) = &output.file else {
        let out: Box<dyn Write> = if output.kafka.is_some() {
            Box::new(std::io::sink())
        } else {
            Box::new(std::io::BufWriter::new(std::io::stdout().lock()))
        };
        return Ok(Some((None, out, None)));
    };
    let created = match resumed {
        Some(at) => output_file::PendingFile::resume(path, &at.path, at.len).map_err(|e| {
            anyhow::Error::new(engine::Error::from(
                engine::checkpoint::CheckpointError::OutputGone {
                    path: at.path.clone(),
                    len: at.len,
                },
            ))
            .context(e.to_string())
        }),
        None => output_file::PendingFile::create(path, signals.stop_flag()),
    };
    let (mut pending, file) = match created {
        Ok(created) => created,
        Err(_) if signals.received().is_some() => {
            diag(&format!(
                "engine: interrupted while opening {}: nothing was read or written",
                path.display()
            ));
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    // A checkpointed job's file in progress stays for the next run.
    let committer = if config.checkpoint.is_some() && !pending.in_place() {
        pending.keep_unfinished();
        Some(
            file.try_clone()
                .context("opening the output for checkpoints")?,
        )
    } else {
        None
    };
    let out: Box<dyn Write> = if output.parquet {
        Box::new(std::io::sink())
    } else {
        Box::new(std::io::BufWriter::new(file))
    };
    Ok(Some((Some(pending), out, committer)))
}

/// Renames the output file into place, unless the job is checkpointed and
/// did not finish: its output in progress then stays for the same command
/// to resume (its last checkpoint names it).
fn put_in_place(
    pending: Option<output_file::PendingFile>,
    config: &job::JobConfig,
    report: &job::JobReport,
) -> Result<()> {
    let pending = match pending {
        Some(pending) if config.checkpoint.is_some() && !report.checkpoint_finished => {
            diag(&format!(
                "engine: the output so far is in {}; the same command resumes the job from its last checkpoint",
                pending.temp_path().display()
            ));
            None
        }
        other => other,
    };
    if let Some(pending) = pending {
        let target = pending.target().to_path_buf();
        pending.commit().map_err(|e| {
            write_failed(&anyhow::Error::new(e).context(format!(
                "{}: the rows could not be put in place (the file was left as it was)",
                target.display()
            )))
        })?;
    }
    Ok(())
}

/// Writes the summary JSON: to stdout for `-`, otherwise as an output file
/// (beside, then renamed; devices in place).
fn write_stats(
    path: &std::path::Path,
    json: &str,
    stop: &std::sync::atomic::AtomicBool,
) -> std::io::Result<()> {
    if path.as_os_str() == "-" {
        let mut out = std::io::stdout().lock();
        out.write_all(json.as_bytes())?;
        return out.flush();
    }
    let (pending, mut file) =
        output_file::PendingFile::create(path, stop).map_err(std::io::Error::other)?;
    file.write_all(json.as_bytes())?;
    drop(file);
    pending.commit()
}

/// A write that failed once the job had run: exit status 1, whatever the
/// error's type (a full disk is not a usage mistake).
fn write_failed(err: &anyhow::Error) -> anyhow::Error {
    JobFailed(format!("writing the output: {err:#}")).into()
}

/// The exit status of a job that ran: 128 + the signal that stopped it
/// (130 for Ctrl-C, 143 for SIGTERM), 0 otherwise.
fn exit_status(signal: Option<i32>) -> ExitCode {
    match signal {
        Some(n) => ExitCode::from(u8::try_from(128 + n).unwrap_or(1)),
        None => ExitCode::SUCCESS,
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Says that the output file, if any, was not touched by a failed job.
fn left_alone(err: anyhow::Error, file: Option<&std::path::Path>) -> anyhow::Error {
    if let Some(path) = file {
        diag(&format!(
            "engine: the job failed; {} was left as it was",
            path.display()
        ));
    }
    err
}
