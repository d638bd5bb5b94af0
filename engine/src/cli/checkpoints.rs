//! `--checkpoint` and `--from-scratch` before a job runs: what to resume,
//! a finished job's output put in place, and what the user is told.

use anyhow::Result;
use engine::checkpoint::{self, Resume};
use engine::job::JobConfig;

use super::args::OutputOptions;
use super::output_file::PendingFile;
use super::report::diag;

/// What to do after looking at the checkpoints.
pub enum Prepared {
    /// Run the job, from this checkpoint if there is one.
    Run(Option<Box<Resume>>),
    /// The job had finished: nothing to do.
    Done,
}

/// Reads (or with `from_scratch`, removes) the job's checkpoints.
pub fn prepare(config: &JobConfig, output: &OutputOptions, from_scratch: bool) -> Result<Prepared> {
    let Some(settings) = &config.checkpoint else {
        return Ok(Prepared::Run(None));
    };
    let dir = settings.dir.display();
    engine::job::check_checkpointable(config)?;
    if from_scratch {
        // The previous run's output in progress goes too, whatever job it
        // was (the target of a finished one is the user's now).
        if let Some(path) = checkpoint::output_in_progress(config) {
            let _ = std::fs::remove_file(path);
        }
        checkpoint::clear(config)?;
        return Ok(Prepared::Run(None));
    }
    let Some(resume) = checkpoint::load(config)? else {
        return Ok(Prepared::Run(None));
    };
    for (path, why) in resume.skipped() {
        diag(&format!(
            "engine: checkpoint {} {why}: using the one before it",
            path.display()
        ));
    }
    if resume.finished() {
        // A run killed after its last checkpoint but before its output was
        // put in place: finish that now.
        if let (Some(at), Some(target)) = (resume.output(), &output.file) {
            if at.path.exists() {
                let (pending, _) = PendingFile::resume(target, &at.path, at.len)?;
                pending.commit()?;
                diag(&format!(
                    "engine: the job had finished: its output is now in place in {}",
                    target.display()
                ));
            }
        }
        diag(&format!(
            "engine: the job checkpointed in {dir} has finished: nothing to do (--from-scratch runs it again)"
        ));
        return Ok(Prepared::Done);
    }
    diag(&format!(
        "engine: resuming from checkpoint {} in {dir}",
        resume.number()
    ));
    if !resume.replays() {
        diag(
            "engine: the input is a stream: its records in flight when the job stopped are lost \
             (at-most-once); the windows' state is restored",
        );
    }
    if let Some(kafka) = &output.kafka {
        diag(&format!(
            "engine: rows written to Kafka topic {} after the checkpoint are written again \
             (at-least-once: a row is identified by its window_end and key)",
            kafka.topic
        ));
    } else if output.file.is_none() {
        diag("engine: windows written to stdout after the checkpoint are written again");
    }
    Ok(Prepared::Run(Some(Box::new(resume))))
}
