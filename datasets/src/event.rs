//! Keyed, timed integer events (`events`): `ts,key,value`.

use crate::num::{push_by, CachedDecimal, Clock, DecimalTable};
use crate::{Generator, Rng, Zipf};

/// Parameters of [`events`] and [`EventStream`].
#[derive(Debug, Clone)]
pub struct EventConfig {
    /// Seed of the generator.
    pub seed: u64,
    /// Number of events (of [`events`]; an [`EventStream`] is endless).
    pub events: usize,
    /// Number of distinct keys (ids `0..keys`).
    pub keys: usize,
    /// Zipf exponent of key popularity; 0 is uniform.
    pub skew: f64,
    /// Events per second of event time: event `i` is due at
    /// `start_ms + i * 1000 / rate`.
    pub rate: u64,
    /// Time of the first event, ms.
    pub start_ms: i64,
    /// Values are uniform integers in `-value_range..=value_range`.
    pub value_range: i64,
    /// Fraction (in `[0, 1]`) of events that arrive late: their time is
    /// moved back from when they are due by a uniform `1..=max_lateness_ms`
    /// ms (never before `start_ms`). 0, the default, keeps times
    /// non-decreasing.
    pub out_of_order: f64,
    /// Largest lateness of an out-of-order event, ms.
    pub max_lateness_ms: i64,
}

impl Default for EventConfig {
    fn default() -> Self {
        Self {
            seed: 42,
            events: 1_000_000,
            keys: 10_000,
            skew: 0.0,
            rate: 1_000_000,
            start_ms: 0,
            value_range: 1_000,
            out_of_order: 0.0,
            max_lateness_ms: 1_000,
        }
    }
}

/// Columnar events: `times[i]`, `keys[i]`, `values[i]`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Events {
    /// Event times, ms; non-decreasing unless
    /// [`EventConfig::out_of_order`] is positive.
    pub times: Vec<i64>,
    /// Key ids.
    pub keys: Vec<u32>,
    /// Integer values.
    pub values: Vec<i64>,
}

/// Generates `config.events` events, the first `config.events` of an
/// [`EventStream`].
#[must_use]
pub fn events(config: &EventConfig) -> Events {
    let mut out = Events {
        times: Vec::with_capacity(config.events),
        keys: Vec::with_capacity(config.events),
        values: Vec::with_capacity(config.events),
    };
    for event in EventStream::new(config).take(config.events) {
        out.times.push(event.time);
        out.keys.push(event.key);
        out.values.push(event.value);
    }
    out
}

/// One generated event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    /// Event time, ms.
    pub time: i64,
    /// Key id, in `0..keys`.
    pub key: u32,
    /// Integer value.
    pub value: i64,
}

/// How [`EventStream`] writes its events as records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EventFormat {
    /// CSV with the header `ts,key,value`, then one `ts,k{key},value` line
    /// an event (`ts` in ms, key `17` written `k17`), e.g. `1500,k17,-42`.
    #[default]
    Csv,
    /// [`EVENT_RECORD_BYTES`] (20) bytes an event, no header, no padding,
    /// all little-endian: bytes 0..8 the time (`i64`, ms), 8..12 the key id
    /// (`u32`), 12..20 the value (`i64`).
    Binary,
}

/// Bytes of an event in [`EventFormat::Binary`].
pub const EVENT_RECORD_BYTES: usize = 20;

/// An endless, seeded stream of [`Event`]s, in the order they arrive:
/// keys drawn by Zipf (or uniformly), uniform values, times at
/// [`EventConfig::rate`] with an [`EventConfig::out_of_order`] fraction
/// arriving late.
///
/// ```
/// use datasets::{EventConfig, EventFormat, EventStream};
/// let config = EventConfig { keys: 10, rate: 1_000, ..EventConfig::default() };
/// let first: Vec<_> = EventStream::new(&config).take(3).collect();
/// assert_eq!(first.iter().map(|e| e.time).collect::<Vec<_>>(), [0, 1, 2]);
///
/// let mut csv = Vec::new();
/// let mut stream = EventStream::new(&config).with_format(EventFormat::Csv);
/// datasets::write_records(&mut stream, datasets::Limit::Records(2), &mut csv, |_| {}).unwrap();
/// let text = String::from_utf8(csv).unwrap();
/// assert_eq!(text.lines().count(), 3);
/// assert!(text.starts_with("ts,key,value\n0,k"));
/// ```
#[derive(Debug, Clone)]
pub struct EventStream {
    rng: Rng,
    zipf: Option<Zipf>,
    keys: u64,
    span: u64,
    value_range: i64,
    clock: Clock,
    start_ms: i64,
    out_of_order: f64,
    max_lateness_ms: u64,
    format: EventFormat,
    time_text: CachedDecimal,
    /// Texts of the keys and of the values, unless there are too many.
    key_texts: Option<DecimalTable>,
    value_texts: Option<DecimalTable>,
    /// The next events, `ahead[next..]` not used yet: drawn together, their
    /// draws overlap in the CPU.
    ahead: [Event; AHEAD],
    next: usize,
}

/// Events drawn ahead at a time.
const AHEAD: usize = 32;

impl EventStream {
    /// The stream of `config` (whose `events` is ignored), written as CSV.
    #[must_use]
    pub fn new(config: &EventConfig) -> Self {
        let value_range = config.value_range.max(0);
        Self {
            rng: Rng::new(config.seed),
            zipf: (config.skew > 0.0).then(|| Zipf::new(config.keys, config.skew)),
            keys: config.keys.max(1) as u64,
            span: 2 * value_range as u64 + 1,
            value_range,
            clock: Clock::new(config.start_ms, config.rate),
            start_ms: config.start_ms,
            out_of_order: config.out_of_order.clamp(0.0, 1.0),
            max_lateness_ms: config.max_lateness_ms.max(0) as u64,
            format: EventFormat::Csv,
            time_text: CachedDecimal::new(),
            key_texts: None,
            value_texts: None,
            ahead: [Event {
                time: 0,
                key: 0,
                value: 0,
            }; AHEAD],
            next: AHEAD,
        }
        .with_format(EventFormat::Csv)
    }

    /// The same stream, written in `format`.
    #[must_use]
    pub fn with_format(mut self, format: EventFormat) -> Self {
        self.format = format;
        (self.key_texts, self.value_texts) = match format {
            EventFormat::Csv => (
                DecimalTable::new(0, self.keys),
                DecimalTable::new(-self.value_range, self.span),
            ),
            EventFormat::Binary => (None, None),
        };
        self
    }

    /// The next event.
    #[inline]
    pub fn next_event(&mut self) -> Event {
        if self.next == AHEAD {
            for i in 0..AHEAD {
                self.ahead[i] = self.draw();
            }
            self.next = 0;
        }
        self.next += 1;
        self.ahead[self.next - 1]
    }

    /// The event after those drawn so far.
    #[inline]
    fn draw(&mut self) -> Event {
        let due = self.clock.tick();
        let key = match &self.zipf {
            Some(z) => z.sample(&mut self.rng) as u64,
            None => self.rng.below(self.keys),
        };
        let value = self.rng.below(self.span) as i64 - self.value_range;
        let mut time = due;
        // No draw at all when every event is on time: the stream of
        // `out_of_order == 0` is the one generated before late events.
        if self.out_of_order > 0.0
            && self.max_lateness_ms > 0
            && self.rng.unit() < self.out_of_order
        {
            let lateness = 1 + self.rng.below(self.max_lateness_ms) as i64;
            time = (due - lateness).max(self.start_ms);
        }
        Event {
            time,
            key: key as u32,
            value,
        }
    }
}

impl Iterator for EventStream {
    type Item = Event;

    #[inline]
    fn next(&mut self) -> Option<Event> {
        Some(self.next_event())
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (usize::MAX, None)
    }
}

impl Generator for EventStream {
    fn header(&self) -> &[u8] {
        match self.format {
            EventFormat::Csv => b"ts,key,value\n",
            EventFormat::Binary => b"",
        }
    }

    #[inline]
    fn append_record(&mut self, out: &mut Vec<u8>) {
        let event = self.next_event();
        match self.format {
            EventFormat::Csv => {
                self.time_text.push(out, event.time);
                out.extend_from_slice(b",k");
                push_by(self.key_texts.as_ref(), out, i64::from(event.key));
                out.push(b',');
                push_by(self.value_texts.as_ref(), out, event.value);
                out.push(b'\n');
            }
            EventFormat::Binary => {
                out.extend_from_slice(&event.time.to_le_bytes());
                out.extend_from_slice(&event.key.to_le_bytes());
                out.extend_from_slice(&event.value.to_le_bytes());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{write_records, Limit};

    #[test]
    fn same_seed_same_stream_other_seed_other_stream() {
        let config = EventConfig {
            events: 1_000,
            ..EventConfig::default()
        };
        assert_eq!(events(&config), events(&config));
        let other = EventConfig {
            seed: 1,
            ..config.clone()
        };
        assert_ne!(events(&config).keys, events(&other).keys);
    }

    /// The events of the first version of `events`, which callers'
    /// expectations were built on: on-time streams must keep them.
    #[test]
    fn on_time_events_are_the_reference_events() {
        for skew in [0.0, 1.1] {
            let config = EventConfig {
                events: 5_000,
                keys: 300,
                skew,
                rate: 7_000,
                start_ms: 12,
                value_range: 50,
                ..EventConfig::default()
            };
            let mut rng = Rng::new(config.seed);
            let zipf = Zipf::new(config.keys, skew);
            let mut expected = Events::default();
            for i in 0..config.events as u64 {
                expected.times.push(12 + (i * 1_000 / 7_000) as i64);
                let key = if skew > 0.0 {
                    zipf.sample(&mut rng) as u64
                } else {
                    rng.below(300)
                };
                expected.keys.push(key as u32);
                expected.values.push(rng.below(101) as i64 - 50);
            }
            assert_eq!(events(&config), expected);
        }
    }

    #[test]
    fn out_of_order_fraction_and_lateness_are_respected() {
        let config = EventConfig {
            events: 200_000,
            rate: 10_000,
            start_ms: 1_000_000,
            out_of_order: 0.1,
            max_lateness_ms: 250,
            ..EventConfig::default()
        };
        let generated = events(&config);
        let mut late = 0;
        let mut max_lateness = 0;
        for (i, &time) in generated.times.iter().enumerate() {
            let due = 1_000_000 + (i as i64 * 1_000 / 10_000);
            assert!(
                time <= due && due - time <= 250,
                "event {i}: {time} due {due}"
            );
            if time < due {
                late += 1;
                max_lateness = max_lateness.max(due - time);
            }
        }
        let fraction = f64::from(late) / 200_000.0;
        assert!((fraction - 0.1).abs() < 0.005, "late fraction {fraction}");
        assert!(max_lateness > 240, "largest lateness {max_lateness}");
        // Out of order for real: some event is earlier than one before it.
        assert!(generated.times.windows(2).any(|w| w[1] < w[0]));
        // Keys and values are those of the on-time stream's draws order.
        let on_time = events(&EventConfig {
            out_of_order: 0.0,
            ..config.clone()
        });
        assert_eq!(generated.keys[0], on_time.keys[0]);
    }

    #[test]
    fn late_events_never_precede_the_start() {
        let generated = events(&EventConfig {
            events: 10_000,
            rate: 1_000,
            start_ms: 500,
            out_of_order: 0.5,
            max_lateness_ms: 5_000,
            ..EventConfig::default()
        });
        assert!(generated.times.iter().all(|&t| t >= 500));
    }

    #[test]
    fn csv_and_binary_records_hold_the_same_events() {
        let config = EventConfig {
            keys: 1_000,
            skew: 0.9,
            rate: 3_000,
            out_of_order: 0.2,
            max_lateness_ms: 40,
            ..EventConfig::default()
        };
        let expected: Vec<Event> = EventStream::new(&config).take(1_000).collect();
        let mut csv = Vec::new();
        let mut binary = Vec::new();
        let mut stream = EventStream::new(&config);
        write_records(&mut stream, Limit::Records(1_000), &mut csv, |_| {}).unwrap();
        let mut stream = EventStream::new(&config).with_format(EventFormat::Binary);
        write_records(&mut stream, Limit::Records(1_000), &mut binary, |_| {}).unwrap();

        let text = String::from_utf8(csv).unwrap();
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some("ts,key,value"));
        let from_csv: Vec<Event> = lines
            .map(|line| {
                let fields: Vec<&str> = line.split(',').collect();
                assert_eq!(fields.len(), 3, "{line}");
                Event {
                    time: fields[0].parse().unwrap(),
                    key: fields[1].strip_prefix('k').unwrap().parse().unwrap(),
                    value: fields[2].parse().unwrap(),
                }
            })
            .collect();
        assert_eq!(from_csv, expected);

        assert_eq!(binary.len(), 1_000 * EVENT_RECORD_BYTES);
        let from_binary: Vec<Event> = binary
            .chunks_exact(EVENT_RECORD_BYTES)
            .map(|r| Event {
                time: i64::from_le_bytes(r[0..8].try_into().unwrap()),
                key: u32::from_le_bytes(r[8..12].try_into().unwrap()),
                value: i64::from_le_bytes(r[12..20].try_into().unwrap()),
            })
            .collect();
        assert_eq!(from_binary, expected);
    }
}
