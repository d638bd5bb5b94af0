//! `--output-file` and `--stats-json`: written to a temporary file beside the
//! target and renamed into place at the end, so that a job that fails never
//! destroys a file.

use std::fs::{File, OpenOptions};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

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
    pub fn create(target: &Path) -> Result<(Self, File), engine::Error> {
        let shown = || target.display().to_string();
        let special = target.starts_with("/dev") || target.starts_with("/proc");
        if let Ok(meta) = std::fs::metadata(target) {
            if meta.is_dir() {
                return Err(engine::Error::Config(format!(
                    "{} is a directory, not a file for the output",
                    shown()
                )));
            }
            if special || !meta.is_file() {
                let file = OpenOptions::new()
                    .append(true)
                    .open(target)
                    .map_err(|e| engine::Error::io(shown(), &e))?;
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
        let dir = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let (temp, file) = create_temp(&dir, &name)?;
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
}

impl Drop for PendingFile {
    fn drop(&mut self) {
        if !self.committed && !self.in_place {
            let _ = std::fs::remove_file(&self.temp);
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
fn create_temp(dir: &Path, name: &str) -> Result<(PathBuf, File), engine::Error> {
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
            Err(e) => return Err(engine::Error::io(temp.display(), &e)),
        }
    }
    let e = last.unwrap_or_else(|| std::io::Error::other("no free temporary name"));
    Err(engine::Error::io(dir.display(), &e))
}
