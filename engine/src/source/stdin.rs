//! Standard input (the binary's `--input -`).

use std::sync::atomic::AtomicBool;
use std::sync::mpsc::SyncSender;

use super::chunk::{read_to_end, LineChunker};
use super::{Source, SourceEvent};
use crate::error::Result;

/// Reads standard input to its end.
#[derive(Debug, Clone)]
pub struct StdinSource {
    max_line_bytes: usize,
}

impl StdinSource {
    /// Standard input, dropping (and reporting) lines longer than
    /// `max_line_bytes`.
    #[must_use]
    pub fn new(max_line_bytes: usize) -> Self {
        Self { max_line_bytes }
    }
}

impl Source for StdinSource {
    fn name(&self) -> &'static str {
        "stdin"
    }

    fn run(self: Box<Self>, tx: &SyncSender<SourceEvent>, stop: &AtomicBool) -> Result<()> {
        let mut chunker = LineChunker::new(self.name().into(), self.max_line_bytes);
        read_to_end(&mut std::io::stdin(), &mut chunker, tx, stop)
    }
}
