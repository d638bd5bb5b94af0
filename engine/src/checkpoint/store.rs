//! The checkpoint directory: numbered files written atomically, the newest
//! two kept, the newest intact one read back.
//!
//! # File layout (version 1)
//!
//! | bytes | what |
//! |---|---|
//! | 8 | magic `ENGINECK` |
//! | 4 | layout version, little-endian `u32` (1) |
//! | 8 | payload length, little-endian `u64` |
//! | 4 | CRC-32 (IEEE) of the payload, little-endian `u32` |
//! | n | payload ([`super::JobState`], encoded by [`super::codec`]) |
//!
//! A file is written as `.checkpoint-N.tmp`, fsynced, renamed to
//! `checkpoint-N.bin` (N zero-padded, so that names sort by number) and the
//! directory fsynced; only then is checkpoint N−2 removed. A crash at any
//! moment leaves checkpoint N−1 intact.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::CheckpointError;

const MAGIC: &[u8; 8] = b"ENGINECK";
/// The layout this engine writes and reads.
pub const LAYOUT_VERSION: u32 = 1;
const HEADER: usize = 8 + 4 + 8 + 4;

/// A checkpoint read back: its number, its payload, and the newer files
/// that could not be used (with why), which the caller reports.
#[derive(Debug)]
pub struct Loaded {
    /// The checkpoint's number.
    pub number: u64,
    /// Its path.
    pub path: PathBuf,
    /// The payload.
    pub payload: Vec<u8>,
    /// Newer checkpoints skipped: their paths and what is wrong with them.
    pub skipped: Vec<(PathBuf, String)>,
}

/// The checkpoints of one job.
#[derive(Debug)]
pub struct Store {
    dir: PathBuf,
    next: u64,
    /// `DIR/lock`, locked exclusively while the store is open: two jobs
    /// never write one directory's checkpoints (or one output) at once.
    _lock: File,
}

impl Store {
    /// The store in `dir`, created if missing.
    ///
    /// # Errors
    ///
    /// The directory cannot be created or listed.
    pub fn open(dir: &Path) -> Result<Self, CheckpointError> {
        fs::create_dir_all(dir).map_err(|e| CheckpointError::io(dir, e))?;
        let lock_path = dir.join("lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| CheckpointError::io(&lock_path, e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Err(CheckpointError::InUse {
                    dir: dir.to_path_buf(),
                })
            }
            Err(fs::TryLockError::Error(e)) => return Err(CheckpointError::io(&lock_path, e)),
        }
        let next = numbered(dir)?.last().map_or(1, |(n, _)| n + 1);
        Ok(Self {
            dir: dir.to_path_buf(),
            next,
            _lock: lock,
        })
    }

    /// The directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes `payload` as the next checkpoint, durably, then removes all
    /// but the newest two.
    ///
    /// # Errors
    ///
    /// Writing, syncing or renaming failed (a full disk): the previous
    /// checkpoints are untouched and the partial file is removed.
    pub fn write(&mut self, payload: &[u8]) -> Result<u64, CheckpointError> {
        let number = self.next;
        let temp = self.dir.join(format!(".checkpoint-{number:020}.tmp"));
        let path = self.dir.join(file_name(number));
        let written = write_synced(&temp, payload);
        if let Err(e) = written {
            let _ = fs::remove_file(&temp);
            return Err(CheckpointError::io(&temp, e));
        }
        if let Err(e) = fs::rename(&temp, &path) {
            let _ = fs::remove_file(&temp);
            return Err(CheckpointError::io(&path, e));
        }
        sync_dir(&self.dir).map_err(|e| CheckpointError::io(&self.dir, e))?;
        self.next = number + 1;
        for (old, old_path) in numbered(&self.dir)? {
            if old + 1 < number {
                let _ = fs::remove_file(old_path);
            }
        }
        Ok(number)
    }

    /// The newest checkpoint that is intact, or `None` when there is none
    /// at all. Damaged newer ones are listed in [`Loaded::skipped`].
    ///
    /// # Errors
    ///
    /// There are checkpoints, but none is intact
    /// ([`CheckpointError::NoneIntact`]), or the directory cannot be read.
    pub fn latest(&self) -> Result<Option<Loaded>, CheckpointError> {
        let mut skipped = Vec::new();
        for (number, path) in numbered(&self.dir)?.into_iter().rev() {
            match read_checked(&path) {
                Ok(payload) => {
                    return Ok(Some(Loaded {
                        number,
                        path,
                        payload,
                        skipped,
                    }))
                }
                Err(why) => skipped.push((path, why)),
            }
        }
        if skipped.is_empty() {
            Ok(None)
        } else {
            Err(CheckpointError::NoneIntact {
                dir: self.dir.clone(),
                damaged: skipped,
            })
        }
    }

    /// Removes every checkpoint (a run from scratch).
    ///
    /// # Errors
    ///
    /// A file cannot be removed.
    pub fn clear(&mut self) -> Result<(), CheckpointError> {
        for (_, path) in numbered(&self.dir)? {
            fs::remove_file(&path).map_err(|e| CheckpointError::io(&path, e))?;
        }
        Ok(())
    }
}

fn file_name(number: u64) -> String {
    format!("checkpoint-{number:020}.bin")
}

/// The checkpoint files of `dir`, by increasing number.
fn numbered(dir: &Path) -> Result<Vec<(u64, PathBuf)>, CheckpointError> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| CheckpointError::io(dir, e))? {
        let entry = entry.map_err(|e| CheckpointError::io(dir, e))?;
        let name = entry.file_name();
        let number = name
            .to_str()
            .and_then(|n| n.strip_prefix("checkpoint-"))
            .and_then(|n| n.strip_suffix(".bin"))
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(number) = number {
            found.push((number, entry.path()));
        }
    }
    found.sort_unstable();
    Ok(found)
}

fn write_synced(path: &Path, payload: &[u8]) -> std::io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    let mut header = Vec::with_capacity(HEADER);
    header.extend_from_slice(MAGIC);
    header.extend_from_slice(&LAYOUT_VERSION.to_le_bytes());
    header.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    header.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    file.write_all(&header)?;
    file.write_all(payload)?;
    file.sync_all()
}

/// Makes a rename in `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// The payload of a checkpoint file, or what is wrong with it.
fn read_checked(path: &Path) -> Result<Vec<u8>, String> {
    let bytes = fs::read(path).map_err(|e| format!("cannot be read: {e}"))?;
    if bytes.len() < HEADER {
        return Err(format!(
            "is truncated ({} bytes, no whole header)",
            bytes.len()
        ));
    }
    if &bytes[..8] != MAGIC {
        return Err("is not a checkpoint file (no ENGINECK magic)".into());
    }
    let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
    if version != LAYOUT_VERSION {
        return Err(format!(
            "has layout version {version}; this engine reads version {LAYOUT_VERSION}"
        ));
    }
    let len = u64::from_le_bytes(bytes[12..20].try_into().expect("8 bytes"));
    let crc = u32::from_le_bytes(bytes[20..24].try_into().expect("4 bytes"));
    let payload = &bytes[HEADER..];
    if payload.len() as u64 != len {
        return Err(format!(
            "is truncated ({} of {len} payload bytes)",
            payload.len()
        ));
    }
    if crc32fast::hash(payload) != crc {
        return Err("is corrupt (checksum mismatch)".into());
    }
    Ok(payload.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("engine-store-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn the_newest_two_are_kept_and_the_newest_intact_one_is_read() {
        let dir = scratch("keep");
        let mut store = Store::open(&dir).unwrap();
        assert!(store.latest().unwrap().is_none());
        for n in 1..=4_u8 {
            store.write(&[n; 100]).unwrap();
        }
        assert_eq!(numbered(&dir).unwrap().len(), 2);
        let latest = store.latest().unwrap().unwrap();
        assert_eq!((latest.number, latest.payload[0]), (4, 4));
        // A flipped byte in the newest: the previous one is used, and the
        // damaged one is named.
        let newest = dir.join(file_name(4));
        let mut bytes = fs::read(&newest).unwrap();
        *bytes.last_mut().unwrap() ^= 1;
        fs::write(&newest, &bytes).unwrap();
        let latest = store.latest().unwrap().unwrap();
        assert_eq!(latest.number, 3);
        assert!(
            latest.skipped[0].1.contains("checksum"),
            "{:?}",
            latest.skipped
        );
        // Truncated too: nothing intact is an error naming both.
        let older = dir.join(file_name(3));
        let bytes = fs::read(&older).unwrap();
        fs::write(&older, &bytes[..50]).unwrap();
        let err = store.latest().unwrap_err();
        assert!(err.to_string().contains("truncated"), "{err}");
        assert!(err.to_string().contains("checksum"), "{err}");
        // A reopened store numbers on from the newest file.
        drop(store);
        let mut reopened = Store::open(&dir).unwrap();
        assert_eq!(reopened.write(b"x").unwrap(), 5);
        reopened.clear().unwrap();
        assert!(reopened.latest().unwrap().is_none());
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_directory_is_one_jobs_at_a_time() {
        let dir = scratch("lock");
        let first = Store::open(&dir).unwrap();
        assert!(matches!(
            Store::open(&dir),
            Err(CheckpointError::InUse { .. })
        ));
        drop(first);
        Store::open(&dir).unwrap();
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_file_of_another_layout_or_kind_is_refused_with_its_reason() {
        let dir = scratch("layout");
        let mut store = Store::open(&dir).unwrap();
        store.write(b"payload").unwrap();
        let path = dir.join(file_name(1));
        let mut bytes = fs::read(&path).unwrap();
        bytes[8] = 9;
        fs::write(&path, &bytes).unwrap();
        assert!(read_checked(&path)
            .unwrap_err()
            .contains("layout version 9"));
        fs::write(&path, b"PK\x03\x04 a zip file, not a checkpoint").unwrap();
        assert!(read_checked(&path).unwrap_err().contains("magic"));
        let _ = fs::remove_dir_all(&dir);
    }
}
