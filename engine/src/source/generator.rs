//! A generator of text: blocks of whole lines made on the source's own
//! thread. What is generated is the caller's choice (the binary has words
//! and events); the library only streams it.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::Arc;

use super::{now_ms, Chunk, Source, SourceEvent};
use crate::error::Result;
use crate::ingest::Format;

/// The next block of whole lines, `None` once the generator is done.
pub type Blocks = Box<dyn FnMut() -> Option<Vec<u8>> + Send>;

/// Streams the blocks a function makes, until it returns `None` or the job
/// is over.
pub struct GeneratorSource {
    name: String,
    blocks: Blocks,
}

impl GeneratorSource {
    /// A source named `generator <name>` sending what `blocks` makes; each
    /// block is whole lines (a CSV header leads the first, if any).
    pub fn new(name: &str, blocks: impl FnMut() -> Option<Vec<u8>> + Send + 'static) -> Self {
        Self {
            name: format!("generator {name}"),
            blocks: Box::new(blocks),
        }
    }
}

impl fmt::Debug for GeneratorSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GeneratorSource")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Source for GeneratorSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn run(mut self: Box<Self>, tx: &SyncSender<SourceEvent>, stop: &AtomicBool) -> Result<()> {
        let origin: Arc<str> = self.name.as_str().into();
        let mut next_line = 1;
        let mut first = true;
        while !stop.load(Ordering::Relaxed) {
            let Some(data) = (self.blocks)() else {
                break;
            };
            let lines = memchr::memchr_iter(b'\n', &data).count() as u64;
            let chunk = Chunk {
                origin: Arc::clone(&origin),
                data,
                first_line: next_line,
                arrival_ms: now_ms(),
                dropped_long_lines: Vec::new(),
                starts_origin: std::mem::take(&mut first),
                position: None,
            };
            next_line += lines;
            if tx.send(SourceEvent::Data(chunk)).is_err() {
                break;
            }
        }
        Ok(())
    }
}

/// A generator a job can be configured with: its name, the format of what
/// it makes, and how to make a fresh stream of it (each run of the job
/// starts one).
#[derive(Clone)]
pub struct Generator {
    name: Arc<str>,
    format: Format,
    make: Arc<dyn Fn() -> Blocks + Send + Sync>,
}

impl Generator {
    /// A generator called `name` of records in `format`; `make` starts a
    /// stream of blocks of whole lines.
    pub fn new(
        name: &str,
        format: Format,
        make: impl Fn() -> Blocks + Send + Sync + 'static,
    ) -> Self {
        Self {
            name: name.into(),
            format,
            make: Arc::new(make),
        }
    }

    /// The generator's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The format of the records it makes.
    #[must_use]
    pub fn format(&self) -> Format {
        self.format
    }

    /// A fresh stream of its records, as a source.
    #[must_use]
    pub fn source(&self) -> GeneratorSource {
        GeneratorSource {
            name: format!("generator {}", self.name),
            blocks: (self.make)(),
        }
    }
}

impl fmt::Debug for Generator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Generator")
            .field("name", &self.name)
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

/// Two generators are equal when they are the same recipe (clones of one
/// another).
impl PartialEq for Generator {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.make, &other.make) && self.format == other.format
    }
}

impl Eq for Generator {}

#[cfg(test)]
mod tests {
    use super::super::{queue, spawn};
    use super::*;

    #[test]
    fn blocks_become_numbered_chunks_until_the_generator_is_done() {
        let generator = Generator::new("count", Format::Text, || {
            let mut left = 2;
            Box::new(move || {
                left -= 1;
                (left >= 0).then(|| b"a\nb\n".to_vec())
            })
        });
        for _ in 0..2 {
            // Each source is a fresh stream.
            let (tx, rx) = queue();
            spawn(Box::new(generator.source()), tx, Arc::default()).unwrap();
            let mut firsts = Vec::new();
            loop {
                match rx.recv().unwrap() {
                    SourceEvent::Data(chunk) => {
                        assert_eq!(&*chunk.origin, "generator count");
                        assert_eq!(chunk.starts_origin, firsts.is_empty());
                        firsts.push(chunk.first_line);
                    }
                    SourceEvent::End => break,
                    other => panic!("{other:?}"),
                }
            }
            assert_eq!(firsts, [1, 3]);
        }
        assert_eq!(generator, generator.clone());
    }
}
