//! A file read as a stream: a pipe, a FIFO or a device, which cannot be
//! memory-mapped, or a regular file to be read from an offset. (The job
//! maps regular files and parses them in place instead.)

use std::fs::File;
use std::io::{Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::mpsc::SyncSender;

use super::chunk::{read_to_end, LineChunker};
use super::{Source, SourceEvent, SourcePosition};
use crate::error::{Error, Result};

/// Reads a file to its end, from its start or from a byte offset; every
/// chunk carries the byte offset after it ([`SourcePosition::Byte`]).
///
/// The file is opened on the reader's thread: opening a FIFO waits for a
/// writer, and the job must still stop on a signal meanwhile.
#[derive(Debug, Clone)]
pub struct FileSource {
    path: PathBuf,
    name: String,
    offset: u64,
    max_line_bytes: usize,
}

impl FileSource {
    /// The file at `path`, from its start, dropping (and reporting) lines
    /// longer than `max_line_bytes`.
    pub fn new(path: impl Into<PathBuf>, max_line_bytes: usize) -> Self {
        let path = path.into();
        Self {
            name: path.display().to_string(),
            path,
            offset: 0,
            max_line_bytes,
        }
    }

    /// Reading starts at byte `offset` (a position a chunk reported), which
    /// must be the start of a line. Line numbers then count from there, and
    /// no CSV header leads the stream: resuming a CSV file needs the header
    /// kept from before.
    #[must_use]
    pub fn at_offset(mut self, offset: u64) -> Self {
        self.offset = offset;
        self
    }
}

impl Source for FileSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn position(&self) -> Option<SourcePosition> {
        Some(SourcePosition::Byte(self.offset))
    }

    fn run(self: Box<Self>, tx: &SyncSender<SourceEvent>, stop: &AtomicBool) -> Result<()> {
        let fail = |e: &std::io::Error| Error::io(&self.name, e);
        let mut file = File::open(&self.path).map_err(|e| fail(&e))?;
        if self.offset > 0 {
            file.seek(SeekFrom::Start(self.offset))
                .map_err(|e| fail(&e))?;
        }
        let mut chunker = LineChunker::new(self.name.as_str().into(), self.max_line_bytes)
            .with_offset(self.offset);
        read_to_end(&mut file, &mut chunker, tx, stop)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::Arc;

    use super::super::{queue, spawn, Chunk, CHUNK_BYTES};
    use super::*;

    /// A temporary file holding `lines` lines of 100 bytes each.
    fn file_of_lines(name: &str, lines: usize) -> PathBuf {
        let path = std::env::temp_dir().join(format!(
            "engine-file-source-{}-{name}.txt",
            std::process::id()
        ));
        let mut file = std::io::BufWriter::new(File::create(&path).unwrap());
        for i in 0..lines {
            writeln!(file, "{i:099}").unwrap();
        }
        file.flush().unwrap();
        path
    }

    /// The chunks a source sends before it ends.
    fn chunks(source: FileSource) -> Vec<Chunk> {
        let (tx, rx) = queue();
        spawn(Box::new(source), tx, Arc::new(AtomicBool::new(false))).unwrap();
        let mut chunks = Vec::new();
        loop {
            match rx.recv().unwrap() {
                SourceEvent::Data(chunk) => chunks.push(chunk),
                SourceEvent::End => return chunks,
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn every_chunk_reports_the_byte_offset_after_it_and_reading_resumes_there() {
        // Several chunks' worth: 3 MiB in 100-byte lines.
        let lines = 3 * CHUNK_BYTES / 100;
        let path = file_of_lines("resume", lines);
        let source = FileSource::new(&path, 1 << 20);
        assert_eq!(source.position(), Some(SourcePosition::Byte(0)));
        let all = chunks(source);
        assert!(all.len() >= 3, "{} chunks", all.len());
        let mut read = 0;
        for chunk in &all {
            read += chunk.data.len() as u64;
            assert_eq!(chunk.position, Some(SourcePosition::Byte(read)));
        }
        assert_eq!(read, (lines * 100) as u64);
        // Resume after the second chunk: the rest, byte for byte.
        let Some(SourcePosition::Byte(offset)) = all[1].position else {
            unreachable!()
        };
        let rest = chunks(FileSource::new(&path, 1 << 20).at_offset(offset));
        let _ = std::fs::remove_file(&path);
        assert!(!rest[0].starts_origin);
        let expected: Vec<u8> = all[2..].iter().flat_map(|c| c.data.clone()).collect();
        let resumed: Vec<u8> = rest.iter().flat_map(|c| c.data.clone()).collect();
        assert_eq!(resumed, expected);
        assert_eq!(
            rest.last().unwrap().position,
            Some(SourcePosition::Byte(read))
        );
    }

    #[test]
    fn a_missing_file_fails_naming_it() {
        let (tx, rx) = queue();
        let source = FileSource::new("/nonexistent/engine-file-source", 1 << 20);
        spawn(Box::new(source), tx, Arc::new(AtomicBool::new(false))).unwrap();
        match rx.recv().unwrap() {
            SourceEvent::Failed(e) => {
                assert!(
                    e.to_string().contains("/nonexistent/engine-file-source"),
                    "{e}"
                );
            }
            other => panic!("{other:?}"),
        }
    }
}
