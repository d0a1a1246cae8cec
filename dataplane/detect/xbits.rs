//! `xbits`: named bits set on a host (`track ip_src`, `ip_dst`) or on a
//! pair of hosts (`ip_pair`, either direction) rather than on a flow, with
//! an expiry, so one connection can mark what another is judged by. The
//! bits live in one table the engine owns and every worker shares: fixed
//! room allocated at load, lock-free (a slot is claimed with a
//! compare-and-swap on its key and carries an expiry in capture time), so
//! no packet waits on another worker. A bit that finds no room in its
//! probe window is counted and not set.

use super::BitCmd;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};

/// Which addresses a bit is kept for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Track {
    Src,
    Dst,
    Pair,
}

/// One `xbits` option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Xbit {
    pub cmd: BitCmd,
    pub name: String,
    /// The name's number in the engine.
    pub id: u16,
    pub track: Track,
    /// Seconds a set bit lives.
    pub expire_s: u32,
}

/// Suricata's default lifetime of a set xbit.
const DEFAULT_EXPIRE_S: u32 = 30;

impl Xbit {
    /// `cmd,name,track ip_src|ip_dst|ip_pair[,expire N]`.
    pub fn parse(v: &str) -> Result<Xbit, String> {
        let bad = |what: &str| format!("xbits: {what}");
        let parts: Vec<&str> = v.split(',').map(str::trim).collect();
        let [cmd, name, rest @ ..] = parts.as_slice() else {
            return Err(bad("expected cmd, name, track"));
        };
        let cmd = match *cmd {
            "set" => BitCmd::Set,
            "unset" => BitCmd::Unset,
            "toggle" => BitCmd::Toggle,
            "isset" => BitCmd::IsSet,
            "isnotset" => BitCmd::IsNotSet,
            other => return Err(bad(&format!("`{other}`"))),
        };
        if name.is_empty() {
            return Err(bad("empty name"));
        }
        let (mut track, mut expire_s) = (None, DEFAULT_EXPIRE_S);
        for item in rest {
            let (word, arg) = item
                .split_once(char::is_whitespace)
                .map_or((*item, ""), |(a, b)| (a, b.trim()));
            match (word, arg) {
                ("track", "ip_src") => track = Some(Track::Src),
                ("track", "ip_dst") => track = Some(Track::Dst),
                ("track", "ip_pair") => track = Some(Track::Pair),
                ("track", "tx") => return Err(bad("track tx")),
                ("expire", n) => {
                    expire_s = n
                        .parse::<u32>()
                        .ok()
                        .filter(|&n| n > 0)
                        .ok_or_else(|| bad("expire"))?
                }
                _ => return Err(bad(&format!("`{item}`"))),
            }
        }
        Ok(Xbit {
            cmd,
            name: name.to_string(),
            id: 0,
            track: track.ok_or_else(|| bad("expected track ip_src, ip_dst or ip_pair"))?,
            expire_s,
        })
    }

    pub fn reads(&self) -> bool {
        matches!(self.cmd, BitCmd::IsSet | BitCmd::IsNotSet)
    }

    /// The table key of this bit for a packet from `src` to `dst`.
    fn key(&self, src: IpAddr, dst: IpAddr) -> u64 {
        let octets = |a: IpAddr| match a {
            IpAddr::V4(v) => v.to_ipv6_mapped().octets(),
            IpAddr::V6(v) => v.octets(),
        };
        let (a, b) = match self.track {
            Track::Src => (octets(src), [0; 16]),
            Track::Dst => (octets(dst), [0; 16]),
            Track::Pair => {
                let (x, y) = (octets(src), octets(dst));
                if x <= y {
                    (x, y)
                } else {
                    (y, x)
                }
            }
        };
        // FNV-1a over the name's number, the kind of track and the
        // addresses; 0 marks a free slot, so it is never a key.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let kind = self.track as u8;
        for byte in self
            .id
            .to_le_bytes()
            .iter()
            .chain([kind].iter())
            .chain(&a)
            .chain(&b)
        {
            h ^= u64::from(*byte);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h.max(1)
    }
}

struct Slot {
    key: AtomicU64,
    /// Capture time (ns) the bit expires at; 0 is unset.
    expires: AtomicU64,
}

/// The shared table of set xbits.
pub struct XbitTable {
    slots: Box<[Slot]>,
    /// Sets that found no room.
    pub full: AtomicU64,
}

/// Slots looked at for one key.
const PROBE: usize = 16;

impl std::fmt::Debug for XbitTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "XbitTable({} slots)", self.slots.len())
    }
}

impl XbitTable {
    /// A table of `slots` slots (a power of two; none when no rule uses
    /// xbits).
    pub fn new(slots: usize) -> Self {
        let slots = if slots == 0 {
            0
        } else {
            slots.next_power_of_two()
        };
        XbitTable {
            slots: (0..slots)
                .map(|_| Slot {
                    key: AtomicU64::new(0),
                    expires: AtomicU64::new(0),
                })
                .collect(),
            full: AtomicU64::new(0),
        }
    }

    fn window(&self, key: u64) -> impl Iterator<Item = &Slot> {
        let n = self.slots.len();
        let start = if n == 0 { 0 } else { (key as usize) & (n - 1) };
        (0..PROBE.min(n)).map(move |i| &self.slots[(start + i) & (n.max(1) - 1)])
    }

    fn is_set_key(&self, key: u64, now_ns: u64) -> bool {
        self.window(key).any(|s| {
            s.key.load(Ordering::Acquire) == key && s.expires.load(Ordering::Acquire) > now_ns
        })
    }

    fn set_key(&self, key: u64, until_ns: u64, now_ns: u64) -> bool {
        // The bit's own slot first, then a free or expired one.
        for s in self.window(key) {
            if s.key.load(Ordering::Acquire) == key {
                s.expires.store(until_ns, Ordering::Release);
                return true;
            }
        }
        for s in self.window(key) {
            let k = s.key.load(Ordering::Acquire);
            let free = k == 0 || s.expires.load(Ordering::Acquire) <= now_ns;
            if free
                && s.key
                    .compare_exchange(k, key, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
            {
                s.expires.store(until_ns, Ordering::Release);
                return true;
            }
        }
        self.full.fetch_add(1, Ordering::Relaxed);
        false
    }

    fn unset_key(&self, key: u64) {
        for s in self.window(key) {
            if s.key.load(Ordering::Acquire) == key {
                s.expires.store(0, Ordering::Release);
            }
        }
    }

    /// Whether `x` (a test) holds for a packet from `src` to `dst` at
    /// `now_ns`; anything else holds.
    pub fn holds(&self, x: &Xbit, src: IpAddr, dst: IpAddr, now_ns: u64) -> bool {
        let set = || self.is_set_key(x.key(src, dst), now_ns);
        match x.cmd {
            BitCmd::IsSet => set(),
            BitCmd::IsNotSet => !set(),
            _ => true,
        }
    }

    /// Runs `x` (set, unset, toggle) for a packet from `src` to `dst` at
    /// `now_ns`; false when a set found no room.
    pub fn apply(&self, x: &Xbit, src: IpAddr, dst: IpAddr, now_ns: u64) -> bool {
        let key = x.key(src, dst);
        let until = now_ns.saturating_add(u64::from(x.expire_s) * 1_000_000_000);
        match x.cmd {
            BitCmd::Set => self.set_key(key, until, now_ns),
            BitCmd::Unset => {
                self.unset_key(key);
                true
            }
            BitCmd::Toggle => {
                if self.is_set_key(key, now_ns) {
                    self.unset_key(key);
                    true
                } else {
                    self.set_key(key, until, now_ns)
                }
            }
            BitCmd::IsSet | BitCmd::IsNotSet => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn x(v: &str, id: u16) -> Xbit {
        Xbit {
            id,
            ..Xbit::parse(v).unwrap()
        }
    }

    #[test]
    fn bits_follow_their_track_and_expire() {
        let t = XbitTable::new(1024);
        let (a, b, c) = (ip("10.0.0.1"), ip("10.0.0.2"), ip("10.0.0.3"));
        const S: u64 = 1_000_000_000;
        let set_dst = x("set,seen,track ip_dst,expire 10", 1);
        let is_dst = x("isset,seen,track ip_dst", 1);
        assert!(t.apply(&set_dst, a, b, 0));
        assert!(
            t.holds(&is_dst, c, b, 5 * S),
            "any source, same destination"
        );
        assert!(!t.holds(&is_dst, b, a, 5 * S), "another destination");
        assert!(!t.holds(&is_dst, c, b, 10 * S), "expired");
        let set_pair = x("set,pair,track ip_pair", 2);
        let is_pair = x("isset,pair,track ip_pair", 2);
        let not_pair = x("isnotset,pair,track ip_pair", 2);
        t.apply(&set_pair, a, b, 0);
        assert!(t.holds(&is_pair, b, a, S), "either direction");
        assert!(t.holds(&not_pair, a, c, S));
        assert!(t.holds(&is_pair, a, b, 29 * S) && !t.holds(&is_pair, a, b, 30 * S));
        t.apply(&x("unset,pair,track ip_pair", 2), b, a, S);
        assert!(!t.holds(&is_pair, a, b, S));
        t.apply(&x("toggle,pair,track ip_pair", 2), b, a, S);
        assert!(t.holds(&is_pair, a, b, S));
    }

    #[test]
    fn a_full_window_is_counted() {
        let t = XbitTable::new(16);
        let mut refused = 0;
        for i in 0..40u8 {
            let src = IpAddr::from([10, 0, 0, i]);
            if !t.apply(&x("set,b,track ip_src", 1), src, src, 0) {
                refused += 1;
            }
        }
        assert_eq!(refused, 40 - 16);
        assert_eq!(t.full.load(Ordering::Relaxed), 24);
    }

    #[test]
    fn bad_options_are_named() {
        assert!(Xbit::parse("set,a").unwrap_err().contains("track"));
        assert!(Xbit::parse("set,a,track tx").unwrap_err().contains("tx"));
        assert!(Xbit::parse("flip,a,track ip_src").is_err());
        assert_eq!(Xbit::parse("set,a,track ip_src").unwrap().expire_s, 30);
    }
}
