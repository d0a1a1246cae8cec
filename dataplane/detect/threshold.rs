//! `threshold` and `detection_filter`: how many of a rule's matches become
//! alerts, counted per tracked key (source, destination, both, the rule, or
//! the flow) over a window of capture time, as Suricata's
//! detect-engine-threshold.c counts them:
//!
//! - `limit`: the first `count` matches of each window alert.
//! - `threshold`: every `count`-th match of a window alerts.
//! - `both`: the `count`-th match of a window alerts, once.
//! - `detection_filter`: every match after the first `count` of a window.
//!
//! A window opens on the first match of a key and lasts `seconds`; the next
//! match after it opens a new one. A match that does not alert does not act
//! either: a drop rule with a detection_filter drops only past its count.
//!
//! Each worker keeps its own table, bounded and allocated once. A source's
//! flows spread over workers, so with N workers a by_src count sees the
//! matches of that source's flows on each worker (Suricata shares one host
//! table between threads, under locks; we don't take locks per packet).

use std::collections::HashMap;
use std::net::IpAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Limit,
    Threshold,
    Both,
    DetectionFilter,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Track {
    Src,
    Dst,
    Both,
    Rule,
    Flow,
}

/// A rule's `threshold` or `detection_filter`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Threshold {
    pub kind: Kind,
    pub track: Track,
    pub count: u32,
    pub seconds: u32,
}

impl Threshold {
    /// Reads the value of `keyword` (`threshold` or `detection_filter`);
    /// the parser has already checked its items.
    pub fn parse(keyword: &str, v: &str) -> Result<Threshold, String> {
        let mut kind = (keyword == "detection_filter").then_some(Kind::DetectionFilter);
        let (mut track, mut count, mut seconds) = (None, None, None);
        for item in v.split(',').map(str::trim) {
            let (k, val) = item
                .split_once(char::is_whitespace)
                .map(|(a, b)| (a.trim(), b.trim()))
                .ok_or_else(|| format!("{keyword}: `{item}`"))?;
            match (k, val) {
                ("type", "limit") => kind = Some(Kind::Limit),
                ("type", "threshold") => kind = Some(Kind::Threshold),
                ("type", "both") => kind = Some(Kind::Both),
                ("type", "backoff") => return Err("threshold: type backoff".into()),
                ("track", "by_src") => track = Some(Track::Src),
                ("track", "by_dst") => track = Some(Track::Dst),
                ("track", "by_both") => track = Some(Track::Both),
                ("track", "by_rule") => track = Some(Track::Rule),
                ("track", "by_flow") => track = Some(Track::Flow),
                ("count", n) => count = n.parse().ok(),
                ("seconds", n) => seconds = n.parse().ok(),
                _ => return Err(format!("{keyword}: `{item}`")),
            }
        }
        let missing = |what: &str| format!("{keyword}: missing {what}");
        Ok(Threshold {
            kind: kind.ok_or_else(|| missing("type"))?,
            track: track.ok_or_else(|| missing("track"))?,
            count: count.ok_or_else(|| missing("count"))?,
            seconds: seconds.ok_or_else(|| missing("seconds"))?,
        })
    }
}

/// What a tracked key is counted under: the rule and up to two addresses
/// (or the flow id).
type Key = (u32, [u8; 16], [u8; 16]);

#[derive(Debug, Clone, Copy)]
struct Window {
    start_ns: u64,
    len_ns: u64,
    count: u32,
}

/// One match's identity, for the tracked key.
#[derive(Debug, Clone, Copy)]
pub struct Seen {
    pub rule: u32,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub flow_id: u64,
    pub ts_ns: u64,
}

fn octets(a: IpAddr) -> [u8; 16] {
    match a {
        IpAddr::V4(v) => v.to_ipv6_mapped().octets(),
        IpAddr::V6(v) => v.octets(),
    }
}

/// A worker's threshold counters: at most `capacity` keys, allocated once.
#[derive(Debug)]
pub struct ThresholdTable {
    windows: HashMap<Key, Window>,
    capacity: usize,
    /// Matches whose key found no room even after expired windows were
    /// dropped: they alert, as if unthresholded (seen beats silent).
    pub full: u64,
    /// Matches a threshold kept from alerting.
    pub suppressed: u64,
}

impl ThresholdTable {
    pub fn new(capacity: usize) -> Self {
        ThresholdTable {
            windows: HashMap::with_capacity(capacity),
            capacity,
            full: 0,
            suppressed: 0,
        }
    }

    /// Takes over `old`'s windows and counters for reloaded rules:
    /// `rules[old]` is a rule's new number (`u32::MAX`: gone, its windows
    /// dropped). Windows go in only as far as this table has room (it was
    /// sized off the worker's core; none when the new rules have no
    /// thresholds), so nothing is allocated here.
    pub fn carry_from(&mut self, old: &mut ThresholdTable, rules: &[u32]) {
        self.full += old.full;
        self.suppressed += old.suppressed;
        for ((rule, a, b), w) in old.windows.drain() {
            if self.windows.len() >= self.capacity {
                break;
            }
            if let Some(&new) = rules.get(rule as usize).filter(|&&n| n != u32::MAX) {
                self.windows.insert((new, a, b), w);
            }
        }
    }

    /// Counts one match and says whether it alerts.
    pub fn allow(&mut self, t: &Threshold, m: &Seen) -> bool {
        let zero = [0u8; 16];
        let key = match t.track {
            Track::Src => (m.rule, octets(m.src), zero),
            Track::Dst => (m.rule, octets(m.dst), zero),
            Track::Both => (m.rule, octets(m.src), octets(m.dst)),
            Track::Rule => (m.rule, zero, zero),
            Track::Flow => {
                let mut k = zero;
                k[..8].copy_from_slice(&m.flow_id.to_le_bytes());
                (m.rule, k, zero)
            }
        };
        let len_ns = u64::from(t.seconds) * 1_000_000_000;
        if !self.windows.contains_key(&key) && self.windows.len() >= self.capacity {
            let now = m.ts_ns;
            self.windows
                .retain(|_, w| now.saturating_sub(w.start_ns) <= w.len_ns);
            if self.windows.len() >= self.capacity {
                self.full += 1;
                return true;
            }
        }
        let w = self.windows.entry(key).or_insert(Window {
            start_ns: m.ts_ns,
            len_ns,
            count: 0,
        });
        if m.ts_ns.saturating_sub(w.start_ns) > w.len_ns {
            *w = Window {
                start_ns: m.ts_ns,
                len_ns,
                count: 0,
            };
        }
        w.count = w.count.saturating_add(1);
        let alert = match t.kind {
            Kind::Limit => w.count <= t.count,
            Kind::Threshold => {
                let hit = w.count >= t.count;
                if hit {
                    w.count = 0;
                }
                hit
            }
            Kind::Both => w.count == t.count,
            Kind::DetectionFilter => w.count > t.count,
        };
        if !alert {
            self.suppressed += 1;
        }
        alert
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_follow_their_rule_to_its_new_number() {
        let t = Threshold {
            kind: Kind::Limit,
            track: Track::Src,
            count: 1,
            seconds: 60,
        };
        let mut old = ThresholdTable::new(8);
        let at = |rule| Seen {
            rule,
            ..seen("10.0.0.1", 1)
        };
        assert!(old.allow(&t, &at(3)) && !old.allow(&t, &at(3)));
        assert!(old.allow(&t, &at(4)));
        let mut new = ThresholdTable::new(8);
        // Rule 3 is now 0; rule 4 is gone.
        let map = [u32::MAX, u32::MAX, u32::MAX, 0, u32::MAX];
        new.carry_from(&mut old, &map);
        assert_eq!(new.suppressed, 1);
        assert!(!new.allow(&t, &at(0)), "the limit goes on counting");
        assert!(new.allow(&t, &at(4)), "a new rule 4 starts afresh");
    }

    const SEC: u64 = 1_000_000_000;

    fn seen(src: &str, ts_ns: u64) -> Seen {
        Seen {
            rule: 7,
            src: src.parse().unwrap(),
            dst: "192.0.2.1".parse().unwrap(),
            flow_id: 1,
            ts_ns,
        }
    }

    /// Which of `n` matches one second apart from one source alert.
    fn alerts(rule: &str, n: u64) -> Vec<u64> {
        let (kw, v) = rule.split_once(':').unwrap();
        let t = Threshold::parse(kw, v).unwrap();
        let mut tab = ThresholdTable::new(16);
        (1..=n)
            .filter(|i| tab.allow(&t, &seen("10.0.0.1", i * SEC)))
            .collect()
    }

    #[test]
    fn each_type_counts_as_suricata_does() {
        // Windows of 10 s open at matches 1, 12 (11 s after 1 is past it) …
        let t = "type limit, track by_src, count 2, seconds 10";
        assert_eq!(
            alerts(&format!("threshold:{t}"), 25),
            [1, 2, 12, 13, 23, 24]
        );
        let t = "type threshold, track by_src, count 3, seconds 10";
        assert_eq!(alerts(&format!("threshold:{t}"), 15), [3, 6, 9, 14]);
        let t = "type both, track by_src, count 3, seconds 10";
        assert_eq!(alerts(&format!("threshold:{t}"), 25), [3, 14, 25]);
        let t = "track by_src, count 3, seconds 10";
        assert_eq!(
            alerts(&format!("detection_filter:{t}"), 13),
            [4, 5, 6, 7, 8, 9, 10, 11]
        );
    }

    #[test]
    fn keys_are_counted_apart_and_the_table_stays_bounded() {
        let t =
            Threshold::parse("threshold", "type limit, track by_src, count 1, seconds 60").unwrap();
        let mut tab = ThresholdTable::new(2);
        assert!(tab.allow(&t, &seen("10.0.0.1", SEC)));
        assert!(!tab.allow(&t, &seen("10.0.0.1", 2 * SEC)), "limit 1");
        assert!(tab.allow(&t, &seen("10.0.0.2", 2 * SEC)), "another source");
        // Full, nothing expired: the third source alerts, counted.
        assert!(tab.allow(&t, &seen("10.0.0.3", 3 * SEC)));
        assert!(tab.allow(&t, &seen("10.0.0.3", 4 * SEC)));
        assert_eq!((tab.full, tab.suppressed), (2, 1));
        // A minute on, expired windows make room.
        assert!(tab.allow(&t, &seen("10.0.0.3", 100 * SEC)));
        assert!(!tab.allow(&t, &seen("10.0.0.3", 101 * SEC)));
        assert_eq!(tab.windows.len(), 1);
        // By destination: different sources to one server share a count.
        let d =
            Threshold::parse("threshold", "type limit, track by_dst, count 1, seconds 60").unwrap();
        let mut tab = ThresholdTable::new(4);
        assert!(tab.allow(&d, &seen("10.0.0.1", SEC)));
        assert!(!tab.allow(&d, &seen("10.0.0.2", SEC)));
    }

    #[test]
    fn bad_values_are_named() {
        assert!(
            Threshold::parse("threshold", "track by_src, count 1, seconds 1")
                .unwrap_err()
                .contains("type")
        );
        assert!(Threshold::parse("threshold", "type often, track by_src")
            .unwrap_err()
            .contains("type often"));
    }
}
