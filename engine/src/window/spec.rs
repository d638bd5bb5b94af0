//! Batch interval, window length and slide, and the time arithmetic on them.

use std::time::Duration;

use crate::error::{Error, Result, WindowPart};

/// A sliding window over micro-batches, with Spark Streaming's semantics.
///
/// - Batch `k` holds the events with time in `[k·B, (k+1)·B)`.
/// - The window length `W` and slide `S` are positive multiples of `B`.
/// - A window is emitted at every time `t` that is a multiple of `S` and later
///   than the stream's first event; it covers the events with time in
///   `[t − W, t)`.
///
/// Internally the timeline is cut into panes of length `gcd(W, S)`: every
/// window is a whole number of panes, so a slide adds the panes that enter
/// and removes the panes that leave.
///
/// ```
/// use engine::WindowSpec;
/// let spec = WindowSpec::from_millis(1_000, 30_000, 10_000)?;
/// assert_eq!(spec.pane(), 10_000);
/// assert_eq!(spec.first_window_end(2_500), 10_000);
/// assert!(WindowSpec::from_millis(1_000, 2_500, 1_000).is_err());
/// # Ok::<(), engine::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowSpec {
    batch: i64,
    window: i64,
    slide: i64,
    pane: i64,
}

/// Longest accepted window, in panes: beyond this the pane ring of a single
/// key would be larger than any sensible job (a year of 1 ms panes).
const MAX_PANES_PER_WINDOW: i64 = 1 << 35;

impl WindowSpec {
    /// A window of length `window` sliding by `slide` over batches of `batch`.
    pub fn new(batch: Duration, window: Duration, slide: Duration) -> Result<Self> {
        Self::from_millis(
            whole_millis(WindowPart::BatchInterval, batch)?,
            whole_millis(WindowPart::WindowLength, window)?,
            whole_millis(WindowPart::Slide, slide)?,
        )
    }

    /// The same from milliseconds.
    pub fn from_millis(batch: i64, window: i64, slide: i64) -> Result<Self> {
        for (part, millis) in [
            (WindowPart::BatchInterval, batch),
            (WindowPart::WindowLength, window),
            (WindowPart::Slide, slide),
        ] {
            if millis <= 0 {
                return Err(Error::NonPositiveDuration { part, millis });
            }
        }
        for (part, millis) in [
            (WindowPart::WindowLength, window),
            (WindowPart::Slide, slide),
        ] {
            if millis % batch != 0 {
                return Err(Error::WindowNotMultipleOfBatch {
                    part,
                    millis,
                    batch,
                });
            }
        }
        let pane = gcd(window, slide);
        if window / pane > MAX_PANES_PER_WINDOW {
            return Err(Error::TooManyPanes {
                window,
                slide,
                panes: window / pane,
                max: MAX_PANES_PER_WINDOW,
            });
        }
        Ok(Self {
            batch,
            window,
            slide,
            pane,
        })
    }

    /// A tumbling window: length and slide equal.
    pub fn tumbling(batch: Duration, window: Duration) -> Result<Self> {
        Self::new(batch, window, window)
    }

    /// Batch interval `B`, ms.
    #[must_use]
    pub fn batch(&self) -> i64 {
        self.batch
    }

    /// Window length `W`, ms.
    #[must_use]
    pub fn window(&self) -> i64 {
        self.window
    }

    /// Slide `S`, ms.
    #[must_use]
    pub fn slide(&self) -> i64 {
        self.slide
    }

    /// Pane length `gcd(W, S)`, ms.
    #[must_use]
    pub fn pane(&self) -> i64 {
        self.pane
    }

    /// Panes per window, `W / gcd(W, S)`.
    #[must_use]
    pub fn panes_per_window(&self) -> i64 {
        self.window / self.pane
    }

    /// Index of the micro-batch holding time `t`.
    #[must_use]
    pub fn batch_index(&self, t: i64) -> i64 {
        t.div_euclid(self.batch)
    }

    /// Index of the pane holding time `t`.
    #[must_use]
    pub fn pane_index(&self, t: i64) -> i64 {
        t.div_euclid(self.pane)
    }

    /// End of the first window emitted for a stream whose first event is at
    /// `first_event`: the first multiple of `S` after it.
    #[must_use]
    pub fn first_window_end(&self, first_event: i64) -> i64 {
        (first_event.div_euclid(self.slide) + 1) * self.slide
    }

    /// End of the last window that holds an event at time `last_event`: the
    /// last multiple of `S` not after `last_event + W`.
    #[must_use]
    pub fn last_window_end(&self, last_event: i64) -> i64 {
        (last_event + self.window).div_euclid(self.slide) * self.slide
    }
}

fn whole_millis(part: WindowPart, duration: Duration) -> Result<i64> {
    let unrepresentable = |too_long| Error::UnrepresentableDuration {
        part,
        duration,
        too_long,
    };
    if !duration.subsec_nanos().is_multiple_of(1_000_000) {
        return Err(unrepresentable(false));
    }
    i64::try_from(duration.as_millis()).map_err(|_| unrepresentable(true))
}

fn gcd(mut a: i64, mut b: i64) -> i64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_not_multiple_of_batch_is_rejected_with_the_value() {
        let err = WindowSpec::from_millis(1000, 2500, 1000).unwrap_err();
        assert!(err.to_string().contains("2500 ms"), "{err}");
        let err = WindowSpec::from_millis(1000, 2000, 1500).unwrap_err();
        assert!(err.to_string().contains("slide (1500 ms)"), "{err}");
        assert!(WindowSpec::from_millis(0, 1, 1).is_err());
    }

    #[test]
    fn window_errors_are_typed_and_say_which_duration() {
        let err = WindowSpec::from_millis(1000, 2500, 1000).unwrap_err();
        assert!(
            matches!(
                err,
                Error::WindowNotMultipleOfBatch {
                    part: WindowPart::WindowLength,
                    millis: 2500,
                    batch: 1000
                }
            ),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "invalid window: the window length (2500 ms) must be a multiple of the batch \
             interval (1000 ms)"
        );
        let err = WindowSpec::from_millis(1000, 0, 1000).unwrap_err();
        assert!(matches!(
            err,
            Error::NonPositiveDuration {
                part: WindowPart::WindowLength,
                millis: 0
            }
        ));
        assert_eq!(
            err.to_string(),
            "invalid window: the window length must be positive, got 0 ms"
        );
        let err = WindowSpec::new(
            Duration::from_micros(1_500),
            Duration::from_secs(1),
            Duration::from_secs(1),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid window: the batch interval (1.5ms) must be a whole number of milliseconds"
        );
        assert!(err.is_usage());
    }

    #[test]
    fn panes_are_the_gcd_of_window_and_slide() {
        let spec = WindowSpec::from_millis(1, 6, 4).unwrap();
        assert_eq!((spec.pane(), spec.panes_per_window()), (2, 3));
        assert_eq!(spec.first_window_end(-1), 0);
        assert_eq!(spec.first_window_end(0), 4);
        assert_eq!(spec.last_window_end(3), 8);
    }
}
