//! A regular file, memory-mapped (when the caller chose to, see
//! [`super::MmapChoice`]): read in segments of whole lines, parsed in
//! parallel, the pages behind each segment released as the job moves on.

use std::path::PathBuf;
use std::sync::Arc;

use memmap2::{Mmap, UncheckedAdvice};

use super::{bom_len, Job, JobHooks, SEGMENT_BYTES};
use crate::error::{Error, Result};
use crate::ingest::Format;
use crate::source;

impl Job<'_> {
    /// Runs until the file ends (`true`) or the job is stopped (`false`).
    pub(super) fn run_file(&mut self, path: &PathBuf, hooks: &mut dyn JobHooks) -> Result<bool> {
        let shown = path.display().to_string();
        let file = std::fs::File::open(path).map_err(|e| Error::io(&shown, e))?;
        let len = file.metadata().map_err(|e| Error::io(&shown, e))?.len();
        if len == 0 {
            // No records (and for CSV not even a header): no windows.
            return Ok(true);
        }
        // SAFETY: the caller chose `MmapChoice::auto`, whose contract is
        // that no other process modifies or truncates the file while the job
        // runs (the `engine` binary documents it, and lets the user read
        // instead). The map is read-only and only read through.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| Error::io(&shown, e))?;
        let _ = map.advise(memmap2::Advice::Sequential);
        let origin: Arc<str> = shown.clone().into();
        let bytes: &[u8] = &map;
        // A byte-order mark is not part of the first record.
        // A resumed job has counted the byte-order mark and the header.
        let resume = self.resume_at.take();
        let counted = u64::from(resume.is_none());
        let mut pos = bom_len(bytes);
        self.report.bytes += counted * pos as u64;
        if pos == bytes.len() {
            // Only a byte-order mark: an empty file.
            return Ok(true);
        }
        let mut line = 1;
        if self.format == Format::Csv {
            let end = memchr::memchr(b'\n', &bytes[pos..]).map_or(bytes.len(), |i| pos + i + 1);
            self.header_only(&shown, Some(&bytes[pos..end]))?;
            self.report.bytes += counted * (end - pos) as u64;
            pos = end;
            line = 2;
        } else {
            self.parsers
                .insert(Arc::clone(&origin), Arc::new(self.config.parser(None)?));
        }
        let mut released = 0;
        // The end of the segment the checkpoint was taken in: the rest of
        // it is processed as one, so that the file is cut as it would have
        // been without the interruption.
        let mut resumed_segment_end = None;
        if let Some(at) = resume {
            let (offset, segment_end) = (at.offset as usize, at.segment_end as usize);
            if offset < pos || offset > segment_end || segment_end > bytes.len() {
                return Err(crate::checkpoint::CheckpointError::InputChanged {
                    input: shown,
                    offset: at.offset,
                    len,
                }
                .into());
            }
            // A checkpoint at a segment's end resumes at the next one.
            (pos, line) = (offset, at.line);
            resumed_segment_end = (offset < segment_end).then_some(segment_end);
        }
        while pos < bytes.len() {
            if self.stopped() {
                return Ok(false);
            }
            let end = if let Some(end) = resumed_segment_end.take() {
                end
            } else if bytes.len() - pos <= SEGMENT_BYTES {
                bytes.len()
            } else {
                memchr::memchr(b'\n', &bytes[pos + SEGMENT_BYTES..])
                    .map_or(bytes.len(), |i| pos + SEGMENT_BYTES + i + 1)
            };
            let segment = &bytes[pos..end];
            let file = Some((pos as u64, end as u64));
            line += self.process(&origin, segment, line, source::now_ms(), &[], file, hooks)?;
            pos = end;
            // A cut at the segment's end too (its keys reclaimed): a round
            // may be the whole segment (many threads).
            if pos < bytes.len() {
                let at = crate::checkpoint::FilePosition {
                    offset: pos as u64,
                    segment_end: pos as u64,
                    line,
                };
                self.maybe_checkpoint(Some(at), hooks)?;
            }
            hooks.progress(pos as u64, len);
            // Release the pages behind us: resident memory stays bounded on
            // files larger than RAM.
            let page = 4096;
            let upto = pos / page * page;
            if upto > released {
                // SAFETY: the range lies inside the mapping, and nothing
                // borrows it any more: parsed keys were copied into the
                // dictionary and every other result owns its data. A
                // read-only file mapping repopulates from the file if the
                // pages are touched again, so no data can change.
                let _ = unsafe {
                    map.unchecked_advise_range(UncheckedAdvice::DontNeed, released, upto - released)
                };
                released = upto;
            }
        }
        Ok(true)
    }
}
