//! The Yahoo Streaming Benchmark's ad events and campaign table (`ysb`).

use std::io::{self, Write};

use crate::num::{CachedDecimal, Clock, DecimalTable};
use crate::{Generator, Rng};

/// The benchmark's ad types, drawn uniformly.
pub const AD_TYPES: [&str; 5] = ["banner", "modal", "sponsored-search", "mail", "mobile"];
/// The benchmark's event types, drawn uniformly.
pub const EVENT_TYPES: [&str; 3] = ["view", "click", "purchase"];
/// The member names of an event line, in the order they are written.
pub const YSB_MEMBERS: [&str; 7] = [
    "user_id",
    "page_id",
    "ad_id",
    "ad_type",
    "event_type",
    "event_time",
    "ip_address",
];

/// How an event line is spelled: the same members and values either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum YsbSpelling {
    /// No space anywhere: `{"user_id":"…","page_id":"…",…}` (the default).
    #[default]
    Compact,
    /// A space after every colon and comma, as the original benchmark's
    /// generator writes its events: `{"user_id": "…", "page_id": "…", …}`.
    Spaced,
}

impl YsbSpelling {
    /// What goes before each member's value, member by member (the member
    /// names of [`YSB_MEMBERS`] with their quotes, the separators, the
    /// value's opening quote).
    fn prefixes(self) -> &'static [&'static [u8]; 7] {
        const COMPACT: [&[u8]; 7] = [
            br#"{"user_id":""#,
            br#"","page_id":""#,
            br#"","ad_id":""#,
            br#"","ad_type":""#,
            br#"","event_type":""#,
            br#"","event_time":""#,
            br#"","ip_address":""#,
        ];
        const SPACED: [&[u8]; 7] = [
            br#"{"user_id": ""#,
            br#"", "page_id": ""#,
            br#"", "ad_id": ""#,
            br#"", "ad_type": ""#,
            br#"", "event_type": ""#,
            br#"", "event_time": ""#,
            br#"", "ip_address": ""#,
        ];
        match self {
            YsbSpelling::Compact => &COMPACT,
            YsbSpelling::Spaced => &SPACED,
        }
    }
}

/// Parameters of [`YsbStream`]; the defaults are the benchmark's.
#[derive(Debug, Clone)]
pub struct YsbConfig {
    /// Seed: of the ids (users, pages, ads, campaigns) and of the events.
    pub seed: u64,
    /// Events per second of event time: event `i` has time
    /// `start_ms + i * 1000 / rate`.
    pub rate: u64,
    /// Time of the first event, epoch ms.
    pub start_ms: i64,
    /// Distinct `user_id`s (100).
    pub users: usize,
    /// Distinct `page_id`s (100).
    pub pages: usize,
    /// Campaigns (100).
    pub campaigns: usize,
    /// Ads of each campaign (10): `campaigns * ads_per_campaign` `ad_id`s.
    pub ads_per_campaign: usize,
}

impl Default for YsbConfig {
    fn default() -> Self {
        Self {
            seed: 42,
            rate: 100_000,
            start_ms: 1_700_000_000_000,
            users: 100,
            pages: 100,
            campaigns: 100,
            ads_per_campaign: 10,
        }
    }
}

/// One ad event; the ids borrow the stream's tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct YsbEvent<'a> {
    /// A UUID-like user id.
    pub user_id: &'a str,
    /// A UUID-like page id.
    pub page_id: &'a str,
    /// A UUID-like ad id, one of [`YsbStream::ad_ids`].
    pub ad_id: &'a str,
    /// One of [`AD_TYPES`].
    pub ad_type: &'static str,
    /// One of [`EVENT_TYPES`].
    pub event_type: &'static str,
    /// Event time, epoch ms (written as a JSON string).
    pub event_time: i64,
    /// IPv4 address, written dotted.
    pub ip_address: [u8; 4],
}

/// An endless, seeded stream of Yahoo Streaming Benchmark ad events, as
/// JSON lines, and its ad → campaign table.
///
/// A line has exactly the members [`YSB_MEMBERS`], all strings, in that
/// order and without spaces, e.g.
///
/// ```text
/// {"user_id":"…","page_id":"…","ad_id":"…","ad_type":"banner","event_type":"view","event_time":"1700000000000","ip_address":"10.0.3.7"}
/// ```
///
/// or, [`with_spelling`](Self::with_spelling)`(`[`YsbSpelling::Spaced`]`)`,
/// with a space after every colon and comma, as the original benchmark's
/// generator writes them (the same events otherwise).
///
/// Users, pages, ads, ad types and event types are drawn uniformly; event
/// times increase at [`YsbConfig::rate`]. Ids are random version-4 UUIDs
/// (`8-4-4-4-12` lower-case hex digits). The table maps each of the
/// `campaigns * ads_per_campaign` ads (every ad an event may name) to its
/// campaign, `ads_per_campaign` ads a campaign; it depends only on the seed
/// and those two counts.
///
/// ```
/// use datasets::{Limit, YsbConfig, YsbStream};
/// let mut ysb = YsbStream::new(&YsbConfig::default());
/// assert_eq!(ysb.campaigns().count(), 1_000);
/// let ad_id = ysb.next_event().ad_id.to_owned();
/// assert!(ysb.campaigns().any(|(ad, _campaign)| ad == ad_id));
///
/// let mut lines = Vec::new();
/// datasets::write_records(&mut ysb, Limit::Records(2), &mut lines, |_| {}).unwrap();
/// let text = String::from_utf8(lines).unwrap();
/// assert!(text.lines().all(|l| l.starts_with(r#"{"user_id":""#)));
///
/// let mut table = Vec::new();
/// ysb.write_campaigns_csv(&mut table).unwrap();
/// assert_eq!(String::from_utf8(table).unwrap().lines().count(), 1 + 1_000);
/// ```
#[derive(Debug, Clone)]
pub struct YsbStream {
    rng: Rng,
    users: Vec<String>,
    pages: Vec<String>,
    ads: Vec<String>,
    campaigns: Vec<String>,
    ads_per_campaign: usize,
    clock: Clock,
    time_text: CachedDecimal,
    /// Texts of `0..=255`.
    octets: DecimalTable,
    spelling: YsbSpelling,
}

/// A random version-4 UUID, lower-case.
fn uuid(rng: &mut Rng) -> String {
    let (a, b) = (rng.next_u64(), rng.next_u64());
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        0x8000 | ((b >> 48) & 0x3fff),
        b & 0xffff_ffff_ffff
    )
}

/// Seed offsets of the id tables, so that each depends only on its sizes.
const CAMPAIGN_SEED: u64 = 0x6361_6d70_6169_676e;
const AUDIENCE_SEED: u64 = 0x7573_6572_7061_6765;

impl YsbStream {
    /// The stream of `config`.
    #[must_use]
    pub fn new(config: &YsbConfig) -> Self {
        let campaigns_count = config.campaigns.max(1);
        let ads_per_campaign = config.ads_per_campaign.max(1);
        let mut ids = Rng::new(config.seed ^ CAMPAIGN_SEED);
        let campaigns = (0..campaigns_count).map(|_| uuid(&mut ids)).collect();
        let ads = (0..campaigns_count * ads_per_campaign)
            .map(|_| uuid(&mut ids))
            .collect();
        let mut ids = Rng::new(config.seed ^ AUDIENCE_SEED);
        let users = (0..config.users.max(1)).map(|_| uuid(&mut ids)).collect();
        let pages = (0..config.pages.max(1)).map(|_| uuid(&mut ids)).collect();
        Self {
            rng: Rng::new(config.seed),
            users,
            pages,
            ads,
            campaigns,
            ads_per_campaign,
            clock: Clock::new(config.start_ms, config.rate),
            time_text: CachedDecimal::new(),
            octets: DecimalTable::new(0, 256).unwrap_or_else(|| unreachable!()),
            spelling: YsbSpelling::Compact,
        }
    }

    /// The same stream written in `spelling` (the events do not change).
    ///
    /// ```
    /// use datasets::{Limit, YsbConfig, YsbSpelling, YsbStream};
    /// let mut spaced = YsbStream::new(&YsbConfig::default()).with_spelling(YsbSpelling::Spaced);
    /// let mut line = Vec::new();
    /// datasets::write_records(&mut spaced, Limit::Records(1), &mut line, |_| {}).unwrap();
    /// assert!(line.starts_with(br#"{"user_id": ""#));
    /// ```
    #[must_use]
    pub fn with_spelling(mut self, spelling: YsbSpelling) -> Self {
        self.spelling = spelling;
        self
    }

    /// Every ad id, campaign by campaign: ads `c * ads_per_campaign ..
    /// (c + 1) * ads_per_campaign` belong to campaign `c`.
    #[must_use]
    pub fn ad_ids(&self) -> &[String] {
        &self.ads
    }

    /// Every campaign id.
    #[must_use]
    pub fn campaign_ids(&self) -> &[String] {
        &self.campaigns
    }

    /// The ad → campaign table: `(ad_id, campaign_id)` for every ad.
    pub fn campaigns(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.ads.iter().enumerate().map(|(i, ad)| {
            (
                ad.as_str(),
                self.campaigns[i / self.ads_per_campaign].as_str(),
            )
        })
    }

    /// Writes the ad → campaign table as CSV: the header `ad_id,campaign_id`,
    /// then one line an ad.
    pub fn write_campaigns_csv<W: Write>(&self, mut out: W) -> io::Result<()> {
        let mut text = String::with_capacity(16 + self.ads.len() * 74);
        text.push_str("ad_id,campaign_id\n");
        for (ad, campaign) in self.campaigns() {
            text.push_str(ad);
            text.push(',');
            text.push_str(campaign);
            text.push('\n');
        }
        out.write_all(text.as_bytes())?;
        out.flush()
    }

    /// The next event.
    #[inline]
    pub fn next_event(&mut self) -> YsbEvent<'_> {
        let event_time = self.clock.tick();
        let rng = &mut self.rng;
        let user = rng.below(self.users.len() as u64) as usize;
        let page = rng.below(self.pages.len() as u64) as usize;
        let ad = rng.below(self.ads.len() as u64) as usize;
        let ad_type = AD_TYPES[rng.below(AD_TYPES.len() as u64) as usize];
        let event_type = EVENT_TYPES[rng.below(EVENT_TYPES.len() as u64) as usize];
        let ip_address = (rng.next_u64() as u32).to_be_bytes();
        YsbEvent {
            user_id: &self.users[user],
            page_id: &self.pages[page],
            ad_id: &self.ads[ad],
            ad_type,
            event_type,
            event_time,
            ip_address,
        }
    }
}

impl Generator for YsbStream {
    #[inline]
    fn append_record(&mut self, out: &mut Vec<u8>) {
        let prefixes = self.spelling.prefixes();
        let e = self.next_event();
        let (ad_type, event_type, event_time, ip) =
            (e.ad_type, e.event_type, e.event_time, e.ip_address);
        let [user, page, ad, ad_kind, kind, time, ip_prefix] = prefixes;
        out.extend_from_slice(user);
        out.extend_from_slice(e.user_id.as_bytes());
        out.extend_from_slice(page);
        out.extend_from_slice(e.page_id.as_bytes());
        out.extend_from_slice(ad);
        out.extend_from_slice(e.ad_id.as_bytes());
        out.extend_from_slice(ad_kind);
        out.extend_from_slice(ad_type.as_bytes());
        out.extend_from_slice(kind);
        out.extend_from_slice(event_type.as_bytes());
        out.extend_from_slice(time);
        self.time_text.push(out, event_time);
        out.extend_from_slice(ip_prefix);
        for (i, octet) in ip.iter().enumerate() {
            if i > 0 {
                out.push(b'.');
            }
            self.octets.push(out, i64::from(*octet));
        }
        out.extend_from_slice(b"\"}\n");
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use super::*;
    use crate::{write_records, Limit};

    fn lines(config: &YsbConfig, n: u64) -> String {
        let mut out = Vec::new();
        let mut stream = YsbStream::new(config);
        write_records(&mut stream, Limit::Records(n), &mut out, |_| {}).unwrap();
        String::from_utf8(out).unwrap()
    }

    /// The members of a flat JSON object of string values without escapes.
    fn members(line: &str) -> Vec<(&str, &str)> {
        let inner = line
            .strip_prefix('{')
            .and_then(|l| l.strip_suffix('}'))
            .unwrap_or_else(|| panic!("not an object: {line}"));
        inner
            .split(',')
            .map(|member| {
                let (name, value) = member.split_once(':').unwrap();
                let name = name.strip_prefix('"').and_then(|n| n.strip_suffix('"'));
                let value = value.strip_prefix('"').and_then(|v| v.strip_suffix('"'));
                let (Some(name), Some(value)) = (name, value) else {
                    panic!("not a string member: {member:?} in {line}");
                };
                assert!(!name.contains('"') && !value.contains('"') && !value.contains('\\'));
                (name, value)
            })
            .collect()
    }

    fn is_uuid(s: &str) -> bool {
        let groups: Vec<&str> = s.split('-').collect();
        groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
            && groups.iter().all(|g| {
                g.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            })
    }

    #[test]
    fn lines_are_objects_of_the_seven_members() {
        let config = YsbConfig::default();
        let text = lines(&config, 5_000);
        let mut last_time = i64::MIN;
        for (i, line) in text.lines().enumerate() {
            let members = members(line);
            let names: Vec<&str> = members.iter().map(|m| m.0).collect();
            assert_eq!(names, YSB_MEMBERS, "{line}");
            let value = |name: &str| members.iter().find(|m| m.0 == name).unwrap().1;
            for id in ["user_id", "page_id", "ad_id"] {
                assert!(is_uuid(value(id)), "{id} of {line}");
            }
            assert!(AD_TYPES.contains(&value("ad_type")));
            assert!(EVENT_TYPES.contains(&value("event_type")));
            let time: i64 = value("event_time").parse().unwrap();
            assert_eq!(time, config.start_ms + i as i64 / 100);
            assert!(time >= last_time);
            last_time = time;
            let octets: Vec<u8> = value("ip_address")
                .split('.')
                .map(|o| o.parse().unwrap())
                .collect();
            assert_eq!(octets.len(), 4);
        }
        assert_eq!(text.lines().count(), 5_000);
    }

    #[test]
    fn campaign_table_covers_every_ad_of_the_events() {
        let config = YsbConfig::default();
        let stream = YsbStream::new(&config);
        let mut csv = Vec::new();
        stream.write_campaigns_csv(&mut csv).unwrap();
        let csv = String::from_utf8(csv).unwrap();
        let mut rows = csv.lines();
        assert_eq!(rows.next(), Some("ad_id,campaign_id"));
        let table: HashMap<&str, &str> = rows
            .map(|row| {
                let (ad, campaign) = row.split_once(',').unwrap();
                assert!(is_uuid(ad) && is_uuid(campaign), "{row}");
                (ad, campaign)
            })
            .collect();
        assert_eq!(table.len(), 1_000);
        let campaigns: HashSet<&str> = table.values().copied().collect();
        assert_eq!(campaigns.len(), 100);
        let mut per_campaign: HashMap<&str, usize> = HashMap::new();
        for campaign in table.values() {
            *per_campaign.entry(campaign).or_default() += 1;
        }
        assert!(per_campaign.values().all(|&n| n == 10));

        let text = lines(&config, 20_000);
        let mut used = HashSet::new();
        for line in text.lines() {
            let ad = members(line)[2].1;
            assert!(table.contains_key(ad), "{ad} is in no campaign");
            used.insert(ad.to_owned());
        }
        assert_eq!(used.len(), 1_000, "every ad appears in 20 000 events");
        // The table depends on the seed only, not on the audience sizes.
        let other = YsbStream::new(&YsbConfig {
            users: 7,
            rate: 3,
            ..config
        });
        assert!(other.campaigns().eq(stream.campaigns()));
    }

    #[test]
    fn the_spaced_spelling_has_the_same_events_with_a_space_after_colons_and_commas() {
        let config = YsbConfig::default();
        let compact = lines(&config, 2_000);
        let mut out = Vec::new();
        let mut stream = YsbStream::new(&config).with_spelling(YsbSpelling::Spaced);
        write_records(&mut stream, Limit::Records(2_000), &mut out, |_| {}).unwrap();
        let spaced = String::from_utf8(out).unwrap();
        assert_ne!(spaced, compact);
        for (s, c) in spaced.lines().zip(compact.lines()) {
            // The original generator's shape: `{"user_id": "…", "page_id": …`.
            assert!(s.starts_with(r#"{"user_id": ""#), "{s}");
            assert_eq!(s.matches("\", \"").count(), YSB_MEMBERS.len() - 1, "{s}");
            assert_eq!(s.matches("\": \"").count(), YSB_MEMBERS.len(), "{s}");
            // Without the spaces (no value holds one) it is the compact line.
            assert_eq!(s.replace(' ', ""), c);
        }
        assert_eq!(spaced.lines().count(), 2_000);
    }

    #[test]
    fn same_seed_same_bytes() {
        let config = YsbConfig::default();
        assert_eq!(lines(&config, 1_000), lines(&config, 1_000));
        let other = YsbConfig {
            seed: 43,
            ..YsbConfig::default()
        };
        assert_ne!(lines(&config, 10), lines(&other, 10));
    }
}
