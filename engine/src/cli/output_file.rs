//! `--output-file` and `--stats-json`: written to a temporary file beside the
//! target and renamed into place at the end, so that a job that fails never
//! destroys a file.

use std::fs::{File, OpenOptions};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use super::values::parent_dir;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::time::Duration;

/// An output file being written: `temp` until [`commit`](Self::commit)
/// renames it to `target`; dropped without a commit, it is removed and the
/// target is left as it was.
///
/// A target that is not a regular file (a device such as `/dev/null`, a
/// FIFO), or a path under `/dev` or `/proc` (`/dev/stdout` is a link to
/// whatever the shell redirected, maybe a user's log opened with `>>`), is
/// written in place, appending: replacing it would destroy it.
pub struct PendingFile {
    target: PathBuf,
    temp: PathBuf,
    in_place: bool,
    committed: bool,
}

impl PendingFile {
    /// Creates the temporary file beside `target` (same directory, so that
    /// the rename is atomic), with the permissions of an existing target.
    /// Opening a FIFO waits for its reader; `stop` (a signal) ends the wait.
    ///
    /// A directory as the target is a usage error; the others are
    /// [`engine::Error::Io`] (a usage error too: the environment).
    pub fn create(target: &Path, stop: &AtomicBool) -> anyhow::Result<(Self, File)> {
        let shown = || target.display().to_string();
        let special = target.starts_with("/dev") || target.starts_with("/proc");
        if let Ok(meta) = std::fs::metadata(target) {
            if meta.is_dir() {
                return Err(super::args::usage(format!(
                    "{} is a directory, not a file for the output",
                    shown()
                )));
            }
            if special || !meta.is_file() {
                let file =
                    open_in_place(target, stop).map_err(|e| engine::Error::io(shown(), e))?;
                let pending = Self {
                    target: target.to_path_buf(),
                    temp: target.to_path_buf(),
                    in_place: true,
                    committed: false,
                };
                return Ok((pending, file));
            }
        }
        let target = resolve_link(target);
        let name = target
            .file_name()
            .map_or_else(|| "output".into(), |n| n.to_string_lossy().into_owned());
        let (temp, file) = create_temp(parent_dir(&target), &name)
            .map_err(|e| engine::Error::io(parent_dir(&target).display(), e))?;
        if let Ok(meta) = std::fs::metadata(&target) {
            let _ = file.set_permissions(meta.permissions());
        }
        Ok((
            Self {
                target,
                temp,
                in_place: false,
                committed: false,
            },
            file,
        ))
    }

    /// Where the rows are being written.
    pub fn temp_path(&self) -> &Path {
        &self.temp
    }

    /// Makes the written file the target: synced, then renamed over it.
    pub fn commit(mut self) -> std::io::Result<()> {
        // On failure a file kept for a checkpointed job stays (the next
        // run puts it in place); another is removed when dropped.
        if self.in_place {
            self.committed = true;
            return Ok(());
        }
        // Data first, then the name: a crash leaves the old file or the new
        // one, never a truncated one.
        File::open(&self.temp)?.sync_all()?;
        std::fs::rename(&self.temp, &self.target)?;
        self.committed = true;
        Ok(())
    }

    /// The file the rows end up in.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// The output in progress of a checkpointed job, cut back to its
    /// `committed` length (what the checkpoint names) and open at its end:
    /// the resumed job writes on from there.
    pub fn resume(target: &Path, temp: &Path, committed: u64) -> std::io::Result<(Self, File)> {
        let file = OpenOptions::new().write(true).open(temp)?;
        let len = file.metadata()?.len();
        if len < committed {
            return Err(std::io::Error::new(
                ErrorKind::UnexpectedEof,
                format!("{len} bytes, shorter than the committed {committed}"),
            ));
        }
        file.set_len(committed)?;
        let mut file = file;
        std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(committed))?;
        Ok((
            Self {
                target: resolve_link(target),
                temp: temp.to_path_buf(),
                in_place: false,
                committed: false,
            },
            file,
        ))
    }

    /// Whether the rows are written in place (a device, a FIFO): such an
    /// output cannot be cut back by a resumed job.
    pub fn in_place(&self) -> bool {
        self.in_place
    }

    /// Leaves the file in progress where it is if the job does not finish
    /// (a checkpointed job: the next run resumes it).
    pub fn keep_unfinished(&mut self) {
        self.committed = true;
    }
}

impl Drop for PendingFile {
    fn drop(&mut self) {
        if !self.committed && !self.in_place {
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

/// Opens a device or FIFO for appending. The open runs on a thread of its
/// own, because opening a FIFO blocks until a reader comes (and is restarted
/// after a signal): a signal must still end the wait.
fn open_in_place(target: &Path, stop: &AtomicBool) -> std::io::Result<File> {
    let (tx, rx) = std::sync::mpsc::channel();
    let path = target.to_path_buf();
    std::thread::spawn(move || {
        let _ = tx.send(OpenOptions::new().append(true).open(&path));
    });
    loop {
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(opened) => return opened,
            Err(RecvTimeoutError::Timeout) if !stop.load(Ordering::Relaxed) => {}
            Err(_) => {
                return Err(std::io::Error::new(
                    ErrorKind::Interrupted,
                    "interrupted while waiting for a reader",
                ))
            }
        }
    }
}

/// A symbolic link stays a link: the file it points to is the target, also
/// when it does not exist yet.
fn resolve_link(target: &Path) -> PathBuf {
    let mut path = target.to_path_buf();
    // A few levels, not a loop forever on a cycle.
    for _ in 0..16 {
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_symlink() => {}
            _ => return path,
        }
        let Ok(next) = std::fs::read_link(&path) else {
            return path;
        };
        path = match path.parent() {
            Some(parent) if next.is_relative() => parent.join(next),
            _ => next,
        };
    }
    path
}

/// A new file in `dir` that nobody else can have prepared: an unpredictable
/// name, created exclusively (which also refuses to follow a symlink planted
/// under that name).
pub(super) fn create_temp(dir: &Path, name: &str) -> std::io::Result<(PathBuf, File)> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let mut last = None;
    for attempt in 0..16_u32 {
        let tag = u64::from(nanos ^ attempt.wrapping_mul(0x9E37_79B9))
            ^ (u64::from(std::process::id()) << 32);
        let temp = dir.join(format!(".{name}.engine-{tag:016x}.tmp"));
        match OpenOptions::new().write(true).create_new(true).open(&temp) {
            Ok(file) => return Ok((temp, file)),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no free temporary name")))
}
