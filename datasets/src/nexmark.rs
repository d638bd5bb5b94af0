//! Nexmark bids (`nexmark`): `auction, bidder, price, date_time`.

use crate::num::{push_by, push_u64, CachedDecimal, Clock, DecimalTable};
use crate::{Generator, Rng, Zipf};

/// Id of the first auction, as in Nexmark.
pub const FIRST_AUCTION_ID: u64 = 1_000;
/// Id of the first person (bidder), as in Nexmark.
pub const FIRST_PERSON_ID: u64 = 1_000;

/// `6 ln 10`: prices span six decades.
const PRICE_EXPONENT: f64 = 6.0 * std::f64::consts::LN_10;

/// Parameters of [`BidStream`].
#[derive(Debug, Clone)]
pub struct BidConfig {
    /// Seed of the generator.
    pub seed: u64,
    /// Open auctions: ids `FIRST_AUCTION_ID..FIRST_AUCTION_ID + auctions`.
    pub auctions: usize,
    /// Bidders: ids `FIRST_PERSON_ID..FIRST_PERSON_ID + bidders`, uniform.
    pub bidders: usize,
    /// Zipf exponent of auction popularity (hot auctions, the lowest ids
    /// hottest); 0 is uniform.
    pub skew: f64,
    /// Bids per second of event time: bid `i` has `date_time`
    /// `start_ms + i * 1000 / rate`.
    pub rate: u64,
    /// Time of the first bid, epoch ms.
    pub start_ms: i64,
}

impl Default for BidConfig {
    fn default() -> Self {
        Self {
            seed: 42,
            auctions: 10_000,
            bidders: 10_000,
            skew: 1.0,
            rate: 10_000,
            start_ms: 1_700_000_000_000,
        }
    }
}

/// One bid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bid {
    /// Auction id.
    pub auction: u64,
    /// Bidder (person) id.
    pub bidder: u64,
    /// Price in cents: `100 * 10^(6u)` rounded for a uniform `u` in `[0, 1)`,
    /// Nexmark's log-uniform prices from $1 to $1 000 000.
    pub price: u64,
    /// Event time, epoch ms.
    pub date_time: i64,
}

/// How [`BidStream`] writes its bids as records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BidFormat {
    /// CSV with the header `auction,bidder,price,date_time`.
    #[default]
    Csv,
    /// One JSON object a line, integer members
    /// `{"auction":…,"bidder":…,"price":…,"date_time":…}`.
    Ndjson,
}

/// An endless, seeded stream of Nexmark bids: the input of query 5 (hot
/// items: bids per auction over a sliding window) and query 7 (highest bid
/// per window). Times increase at [`BidConfig::rate`].
///
/// ```
/// use datasets::{BidConfig, BidFormat, BidStream, Limit};
/// let bids: Vec<_> = BidStream::new(&BidConfig::default()).take(1_000).collect();
/// assert!(bids.windows(2).all(|w| w[0].date_time <= w[1].date_time));
/// assert!(bids.iter().all(|b| (100..=100_000_000).contains(&b.price)));
///
/// let mut out = Vec::new();
/// let mut stream = BidStream::new(&BidConfig::default()).with_format(BidFormat::Ndjson);
/// datasets::write_records(&mut stream, Limit::Records(1), &mut out, |_| {}).unwrap();
/// assert!(out.starts_with(br#"{"auction":"#));
/// ```
#[derive(Debug, Clone)]
pub struct BidStream {
    rng: Rng,
    zipf: Option<Zipf>,
    auctions: u64,
    bidders: u64,
    clock: Clock,
    format: BidFormat,
    time_text: CachedDecimal,
    /// Texts of the auction and bidder ids, unless there are too many.
    auction_texts: Option<DecimalTable>,
    bidder_texts: Option<DecimalTable>,
}

impl BidStream {
    /// The stream of `config`, written as CSV.
    #[must_use]
    pub fn new(config: &BidConfig) -> Self {
        let auctions = config.auctions.max(1) as u64;
        let bidders = config.bidders.max(1) as u64;
        Self {
            rng: Rng::new(config.seed),
            zipf: (config.skew > 0.0).then(|| Zipf::new(config.auctions, config.skew)),
            auctions,
            bidders,
            clock: Clock::new(config.start_ms, config.rate),
            format: BidFormat::Csv,
            time_text: CachedDecimal::new(),
            auction_texts: DecimalTable::new(FIRST_AUCTION_ID as i64, auctions),
            bidder_texts: DecimalTable::new(FIRST_PERSON_ID as i64, bidders),
        }
    }

    /// The same stream, written in `format`.
    #[must_use]
    pub fn with_format(mut self, format: BidFormat) -> Self {
        self.format = format;
        self
    }

    /// The next bid.
    #[inline]
    pub fn next_bid(&mut self) -> Bid {
        let date_time = self.clock.tick();
        let auction = match &self.zipf {
            Some(z) => z.sample(&mut self.rng) as u64,
            None => self.rng.below(self.auctions),
        };
        let bidder = self.rng.below(self.bidders);
        // 10^(6u) = e^(6u ln 10).
        let price = ((self.rng.unit() * PRICE_EXPONENT).exp() * 100.0 + 0.5) as u64;
        Bid {
            auction: FIRST_AUCTION_ID + auction,
            bidder: FIRST_PERSON_ID + bidder,
            price,
            date_time,
        }
    }
}

impl Iterator for BidStream {
    type Item = Bid;

    #[inline]
    fn next(&mut self) -> Option<Bid> {
        Some(self.next_bid())
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (usize::MAX, None)
    }
}

impl Generator for BidStream {
    fn header(&self) -> &[u8] {
        match self.format {
            BidFormat::Csv => b"auction,bidder,price,date_time\n",
            BidFormat::Ndjson => b"",
        }
    }

    #[inline]
    fn append_record(&mut self, out: &mut Vec<u8>) {
        let bid = self.next_bid();
        // Literal separators: copies of known sizes.
        match self.format {
            BidFormat::Csv => {
                push_by(self.auction_texts.as_ref(), out, bid.auction as i64);
                out.push(b',');
                push_by(self.bidder_texts.as_ref(), out, bid.bidder as i64);
                out.push(b',');
                push_u64(out, bid.price);
                out.push(b',');
                self.time_text.push(out, bid.date_time);
                out.push(b'\n');
            }
            BidFormat::Ndjson => {
                out.extend_from_slice(br#"{"auction":"#);
                push_by(self.auction_texts.as_ref(), out, bid.auction as i64);
                out.extend_from_slice(br#","bidder":"#);
                push_by(self.bidder_texts.as_ref(), out, bid.bidder as i64);
                out.extend_from_slice(br#","price":"#);
                push_u64(out, bid.price);
                out.extend_from_slice(br#","date_time":"#);
                self.time_text.push(out, bid.date_time);
                out.extend_from_slice(b"}\n");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::{write_records, Limit};

    fn text(format: BidFormat, n: u64) -> String {
        let mut out = Vec::new();
        let mut stream = BidStream::new(&BidConfig::default()).with_format(format);
        write_records(&mut stream, Limit::Records(n), &mut out, |_| {}).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn csv_and_ndjson_hold_the_same_bids() {
        let expected: Vec<Bid> = BidStream::new(&BidConfig::default()).take(2_000).collect();
        let csv = text(BidFormat::Csv, 2_000);
        let mut lines = csv.lines();
        assert_eq!(lines.next(), Some("auction,bidder,price,date_time"));
        let parse = |fields: Vec<&str>| Bid {
            auction: fields[0].parse().unwrap(),
            bidder: fields[1].parse().unwrap(),
            price: fields[2].parse().unwrap(),
            date_time: fields[3].parse().unwrap(),
        };
        let from_csv: Vec<Bid> = lines.map(|l| parse(l.split(',').collect())).collect();
        assert_eq!(from_csv, expected);

        let ndjson = text(BidFormat::Ndjson, 2_000);
        let from_json: Vec<Bid> = ndjson
            .lines()
            .map(|l| {
                let inner = l.strip_prefix('{').unwrap().strip_suffix('}').unwrap();
                let members: Vec<(&str, &str)> = inner
                    .split(',')
                    .map(|m| m.split_once(':').unwrap())
                    .collect();
                let names: Vec<&str> = members.iter().map(|m| m.0).collect();
                assert_eq!(
                    names,
                    [
                        r#""auction""#,
                        r#""bidder""#,
                        r#""price""#,
                        r#""date_time""#
                    ]
                );
                parse(members.iter().map(|m| m.1).collect())
            })
            .collect();
        assert_eq!(from_json, expected);
    }

    #[test]
    fn hot_auctions_and_increasing_times() {
        let config = BidConfig::default();
        let bids: Vec<Bid> = BidStream::new(&config).take(100_000).collect();
        let mut counts: HashMap<u64, usize> = HashMap::new();
        for bid in &bids {
            *counts.entry(bid.auction).or_default() += 1;
            assert!((FIRST_AUCTION_ID..FIRST_AUCTION_ID + 10_000).contains(&bid.auction));
            assert!((FIRST_PERSON_ID..FIRST_PERSON_ID + 10_000).contains(&bid.bidder));
        }
        // Zipf(1) over 10 000 auctions: the hottest has about a tenth.
        assert!(
            counts[&FIRST_AUCTION_ID] > 8_000,
            "{}",
            counts[&FIRST_AUCTION_ID]
        );
        assert!(bids.windows(2).all(|w| w[0].date_time <= w[1].date_time));
        assert_eq!(bids[99_999].date_time, config.start_ms + 9_999);
        let top = bids.iter().map(|b| b.price).max().unwrap();
        assert!(top > 10_000_000, "top price {top}");
    }
}
