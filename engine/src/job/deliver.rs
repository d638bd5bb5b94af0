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
    move |window: WindowResult| {
        if delivered.failed.is_some() {
            return;
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
