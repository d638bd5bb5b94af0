//! The command line: flags, durations, and the terminal side of a job
//! (output, progress bar, summary).

mod args;
#[cfg(feature = "parquet")]
mod parquet;
mod report;

use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Parser as _;
use engine::job;

pub use args::Cli;

/// Exit status for an error: 2 for what the user can fix on the command line
/// or in the environment (bad flag, missing file, unknown column,
/// unreachable socket), 1 for a job that failed on its data.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    match err.downcast_ref::<engine::Error>() {
        Some(
            engine::Error::Io { .. }
            | engine::Error::Config(_)
            | engine::Error::InvalidWindow(_)
            | engine::Error::UnknownAggregate(_)
            | engine::Error::ValueType(_),
        ) => 2,
        None if err.downcast_ref::<args::UsageError>().is_some() => 2,
        // Malformed data with --on-error fail, and anything else.
        _ => 1,
    }
}

pub fn main() -> Result<ExitCode> {
    let cli = Cli::parse();
    let run = match cli.command {
        args::Command::Run(run) => run,
        args::Command::Completions { shell } => return args::print_completions(shell),
        args::Command::Man { command } => return args::print_man(command.as_deref()),
    };
    let (config, output) = run.into_job()?;
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = Arc::clone(&stop);
        // Ctrl-C and SIGTERM end the job cleanly: closed windows are out, the
        // summary is printed.
        let _ = ctrlc::set_handler(move || stop.store(true, Ordering::Relaxed));
    }
    let out: Box<dyn Write> = match &output.file {
        Some(_) if output.parquet => Box::new(std::io::sink()),
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).map_err(|e| engine::Error::io(path.display(), &e))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let mut hooks = report::CliHooks::new(out, &config, &output).context("writing the output")?;
    let result = job::run(&config, &mut hooks, &stop);
    let report = match result {
        Ok(report) => report,
        Err(err) => {
            hooks.finish_progress();
            return match hooks.take_write_error() {
                // The reader went away (`| head`): nothing more to say.
                Some(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
                Some(e) => Err(anyhow::Error::new(e).context("writing the output")),
                None => Err(err.into()),
            };
        }
    };
    hooks
        .finish(&report, &output)
        .context("writing the output")?;
    // `--stats-json -`: the summary, written to a scratch file, to stdout.
    output.forward_stats_json()?;
    Ok(ExitCode::SUCCESS)
}
