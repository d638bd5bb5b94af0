//! `--output-file`: written to a temporary file beside the target and renamed
//! into place at the end, so that a job that fails never destroys a file.

use std::fs::File;
use std::path::{Path, PathBuf};

/// An output file being written: `temp` until [`commit`](Self::commit)
/// renames it to `target`; dropped without a commit, it is removed and the
/// target is left as it was. A target that is not a regular file (a device
/// such as `/dev/null`, a FIFO) is written in place: replacing it would
/// destroy it.
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
        if let Ok(meta) = std::fs::metadata(target) {
            if meta.is_dir() {
                return Err(engine::Error::Config(format!(
                    "{} is a directory, not a file for the output",
                    shown()
                )));
            }
            if !meta.is_file() {
                let file = std::fs::OpenOptions::new()
                    .write(true)
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
        // A symbolic link stays a link: the file it points to is replaced.
        let target = match std::fs::symlink_metadata(target) {
            Ok(meta) if meta.file_type().is_symlink() => {
                std::fs::canonicalize(target).unwrap_or_else(|_| target.to_path_buf())
            }
            _ => target.to_path_buf(),
        };
        let name = target
            .file_name()
            .map_or_else(|| "output".into(), |n| n.to_string_lossy().into_owned());
        let dir = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let temp = dir.join(format!(".{name}.engine-{}.tmp", std::process::id()));
        let file = File::create(&temp).map_err(|e| engine::Error::io(temp.display(), &e))?;
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
    pub fn commit(mut self) -> Result<(), engine::Error> {
        if self.in_place {
            self.committed = true;
            return Ok(());
        }
        if let Ok(file) = File::open(&self.temp) {
            // Data first, then the name: a crash leaves the old file or the
            // new one, never a truncated one.
            file.sync_all()
                .map_err(|e| engine::Error::io(self.temp.display(), &e))?;
        }
        std::fs::rename(&self.temp, &self.target)
            .map_err(|e| engine::Error::io(self.target.display(), &e))?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for PendingFile {
    fn drop(&mut self) {
        if !self.committed && !self.in_place {
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}
