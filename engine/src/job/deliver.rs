//! Where the window operator's output goes: each window to the job's hooks
//! as it closes, overflows named by key, a failed write stopping the job.

use std::sync::atomic::{AtomicBool, Ordering};

use super::{JobHooks, Notice};
use crate::dictionary::Dictionary;
use crate::error::Error;
use crate::window::WindowResult;

/// Windows written and results overflowed so far, and the write error that
/// stopped the job.
#[derive(Default)]
pub(super) struct Delivered {
    pub windows: u64,
    /// Rows (keys) of the windows written.
    pub rows: u64,
    pub overflowed: u64,
    pub failed: Option<Error>,
    /// The end of the last window delivered.
    pub last_end: Option<i64>,
    /// Rows not to write (Kafka partitions handed over by another process).
    pub filter: Option<RowFilter>,
}

/// The rows of windows another process has written already: a key's row
/// is dropped when its partition's previous owner wrote the window
/// (`window_end <= through[partition]`).
#[derive(Debug, Default)]
pub(super) struct RowFilter {
    /// `partition → end of the last window its previous owner wrote`.
    pub through: std::collections::BTreeMap<i32, i64>,
    /// The partition of each key id (-1: none seen).
    pub key_partition: Vec<i32>,
}

impl RowFilter {
    /// Notes that `keys` came from `partition`.
    pub fn note_keys(&mut self, keys: &[u32], partition: i32) {
        for &k in keys {
            let k = k as usize;
            if k >= self.key_partition.len() {
                self.key_partition.resize(k + 1, -1);
            }
            self.key_partition[k] = partition;
        }
    }

    /// Drops the rows of `window` that were written already.
    fn apply(&self, window: &mut WindowResult) {
        if self.through.values().all(|&t| t < window.end()) {
            return;
        }
        let keep: Vec<bool> = window
            .keys()
            .iter()
            .map(|&k| {
                let p = self.key_partition.get(k as usize).copied().unwrap_or(-1);
                self.through.get(&p).is_none_or(|&t| window.end() > t)
            })
            .collect();
        window.retain_rows(&keep);
    }
}

/// Overflowed results named one by one on stderr; the rest are counted.
const REPORTED_OVERFLOWS: u64 = 5;

/// The sink the window operator writes into: each window goes to `hooks` as
/// it closes. A failed write is kept and sets `stop`, so that the operator
/// stops at its next pane instead of computing windows nobody can read.
pub(super) fn deliver<'a>(
    hooks: &'a mut dyn JobHooks,
    dict: &'a Dictionary,
    delivered: &'a mut Delivered,
    stop: &'a AtomicBool,
) -> impl FnMut(WindowResult) + 'a {
    move |mut window: WindowResult| {
        if delivered.failed.is_some() {
            return;
        }
        delivered.last_end = delivered.last_end.max(Some(window.end()));
        if let Some(filter) = &delivered.filter {
            filter.apply(&mut window);
        }
        for &(key, agg) in window.overflows() {
            delivered.overflowed += 1;
            if delivered.overflowed <= REPORTED_OVERFLOWS {
                let name = dict.read().get(key).unwrap_or_default().to_owned();
                hooks.notice(&Notice::Overflow {
                    agg,
                    key: &name,
                    window_end: window.end(),
                });
            } else if delivered.overflowed == REPORTED_OVERFLOWS + 1 {
                hooks.notice(&Notice::MoreOverflows);
            }
        }
        match hooks.window(&window, dict) {
            Ok(()) => {
                delivered.windows += 1;
                delivered.rows += window.len() as u64;
            }
            Err(e) => {
                delivered.failed = Some(e);
                stop.store(true, Ordering::Relaxed);
            }
        }
    }
}
