//! The prefilter for rules without content: an index from the networks a
//! rule's header names to the rule. IP-reputation rules (ET's TOR, CINS,
//! compromised-host lists) have no content, only long address lists; tried
//! one by one on every packet, 1,000 of them cost ~70 µs a packet. Here a
//! packet looks its two addresses up once per prefix length the rules use,
//! and only the rules found are confirmed in full.
//!
//! A rule is indexed on one side of its header, the first whose addresses
//! are a finite list of networks no wider than a /16 (IPv6: /32) (negations
//! only narrow a list, so its positives bound it). A rule neither side of
//! which is such a list stays on the every-packet path.

use crate::rules::vars::AddrMatch;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::IpAddr;

/// A multiply-mix hasher for the index's masked addresses: keys are rule
/// authors' networks, not attacker input chosen to collide, and a packet
/// does up to two lookups per prefix length, so SipHash's cost matters.
#[derive(Default)]
struct AddrHasher(u64);

impl Hasher for AddrHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut w = [0u8; 8];
            w[..chunk.len()].copy_from_slice(chunk);
            self.0 = (self.0 ^ u64::from_le_bytes(w))
                .wrapping_mul(0x9e37_79b9_7f4a_7c15)
                .rotate_left(29);
        }
    }

    fn finish(&self) -> u64 {
        self.0 ^ (self.0 >> 32)
    }
}

type Table = HashMap<u128, Vec<u32>, BuildHasherDefault<AddrHasher>>;

/// Networks shorter than these are too wide to index: a rule under
/// $HOME_NET's 10.0.0.0/8 would be a candidate on every local packet, and
/// the lookup, sort and confirm cost more than checking it on every packet
/// (where its cheap conditions usually reject it first).
const MIN_PREFIX_V4: u8 = 16;
const MIN_PREFIX_V6: u8 = 32;

/// Candidates one packet gathers before the lookup gives up on sorting
/// them out and says "try every indexed rule".
pub const MAX_CANDIDATES: usize = 128;

/// The networks `m` can match, if it is a finite list of them.
fn nets(m: &AddrMatch) -> Option<Vec<(IpAddr, u8)>> {
    match m {
        AddrMatch::Net(ip, bits) => {
            let (full, min) = if ip.is_ipv4() {
                (32, MIN_PREFIX_V4)
            } else {
                (128, MIN_PREFIX_V6)
            };
            (*bits >= min).then(|| vec![(*ip, (*bits).min(full))])
        }
        AddrMatch::List { pos, pos_nets, .. } if !(pos.is_empty() && pos_nets.is_empty()) => {
            let mut out = Vec::new();
            for &(ip, bits) in &pos_nets.prefixes {
                out.extend(nets(&AddrMatch::Net(ip, bits))?);
            }
            for p in pos {
                out.extend(nets(p)?);
            }
            Some(out)
        }
        _ => None,
    }
}

/// An address as 128 bits (IPv4 mapped), with whether it is IPv4.
fn wide(ip: IpAddr) -> (u128, bool) {
    match ip {
        IpAddr::V4(a) => (u128::from(u32::from(a)), true),
        IpAddr::V6(a) => (u128::from(a), false),
    }
}

fn mask(addr: u128, v4: bool, bits: u8) -> u128 {
    let width = if v4 { 32 } else { 128 };
    let bits = u32::from(bits).min(width);
    if bits == 0 {
        return 0;
    }
    let keep = if bits == 128 {
        u128::MAX
    } else {
        ((1u128 << bits) - 1) << (width - bits)
    };
    addr & keep
}

#[derive(Debug, Default)]
pub struct AddrIndex {
    /// One table per (family, prefix length) in use.
    tables: Vec<(bool, u8, Table)>,
    /// Every indexed rule, for the overflow path.
    all: Vec<u32>,
    /// The IPv4 /16s (a bit each) and IPv6 /32s (sorted) some indexed
    /// network lies in: every network is at least that narrow, so an
    /// address outside them all has no candidate, and the usual packet
    /// (a tenant's own) pays one bit test, not a lookup per prefix length.
    v4_16: Vec<u64>,
    v6_32: Vec<u32>,
}

impl AddrIndex {
    /// Indexes rule `id` under `src`, else `dst`; false if neither is a
    /// finite list of networks (the caller checks it on every packet).
    pub fn insert(&mut self, id: u32, src: &AddrMatch, dst: &AddrMatch) -> bool {
        let Some(list) = nets(src).or_else(|| nets(dst)) else {
            return false;
        };
        for (ip, bits) in list {
            let (a, v4) = wide(ip);
            let t = match self
                .tables
                .iter_mut()
                .position(|(f, b, _)| *f == v4 && *b == bits)
            {
                Some(i) => &mut self.tables[i].2,
                None => {
                    self.tables.push((v4, bits, Table::default()));
                    &mut self.tables.last_mut().expect("just pushed").2
                }
            };
            let ids = t.entry(mask(a, v4, bits)).or_default();
            if ids.last() != Some(&id) {
                ids.push(id);
            }
            if v4 {
                if self.v4_16.is_empty() {
                    self.v4_16 = vec![0; 1 << 10];
                }
                let k = (a >> 16) as usize & 0xffff;
                self.v4_16[k / 64] |= 1 << (k % 64);
            } else {
                let k = (a >> 96) as u32;
                if let Err(i) = self.v6_32.binary_search(&k) {
                    self.v6_32.insert(i, k);
                }
            }
        }
        self.all.push(id);
        true
    }

    /// Whether some indexed network may hold the address.
    fn may_hold(&self, addr: u128, v4: bool) -> bool {
        if v4 {
            let k = (addr >> 16) as usize & 0xffff;
            self.v4_16
                .get(k / 64)
                .is_some_and(|w| w & (1 << (k % 64)) != 0)
        } else {
            self.v6_32.binary_search(&((addr >> 96) as u32)).is_ok()
        }
    }

    pub fn len(&self) -> usize {
        self.all.len()
    }

    pub fn is_empty(&self) -> bool {
        self.all.is_empty()
    }

    /// Calls `f` once with each rule indexed under a network holding `a`
    /// or `b`.
    pub fn candidates(&self, a: IpAddr, b: IpAddr, mut f: impl FnMut(u32)) {
        if self.all.is_empty() {
            return;
        }
        let mut found = [0u32; MAX_CANDIDATES];
        let mut n = 0;
        for ip in [a, b] {
            let (addr, v4) = wide(ip);
            if !self.may_hold(addr, v4) {
                continue;
            }
            for (fam, bits, t) in &self.tables {
                if *fam != v4 {
                    continue;
                }
                for &id in t.get(&mask(addr, v4, *bits)).map_or(&[][..], Vec::as_slice) {
                    if n == MAX_CANDIDATES {
                        // Pathological overlap: every indexed rule, once.
                        self.all.iter().for_each(|&id| f(id));
                        return;
                    }
                    found[n] = id;
                    n += 1;
                }
            }
        }
        let found = &mut found[..n];
        found.sort_unstable();
        let mut last = None;
        for &id in found.iter() {
            if last != Some(id) {
                f(id);
                last = Some(id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::parse_addr;
    use crate::rules::vars::Vars;

    fn addr(v: &Vars, text: &str) -> AddrMatch {
        v.addr_matcher(&parse_addr(text).unwrap()).unwrap()
    }

    fn found(ix: &AddrIndex, a: &str, b: &str) -> Vec<u32> {
        let mut out = Vec::new();
        ix.candidates(a.parse().unwrap(), b.parse().unwrap(), |i| out.push(i));
        out
    }

    #[test]
    fn finds_rules_by_either_address_once() {
        let v = Vars::suricata_defaults();
        let any = addr(&v, "any");
        let home = addr(&v, "$HOME_NET");
        let ext = addr(&v, "$EXTERNAL_NET");
        let mut ix = AddrIndex::default();
        assert!(ix.insert(0, &addr(&v, "[198.51.100.7,203.0.113.0/24]"), &home));
        assert!(ix.insert(1, &any, &addr(&v, "[203.0.113.9,2001:db8::/32]")));
        assert!(!ix.insert(2, &any, &ext), "a negation bounds nothing");
        assert!(!ix.insert(3, &addr(&v, "0.0.0.0/0"), &any), "too wide");
        assert!(!ix.insert(5, &home, &any), "$HOME_NET's /8 is too wide");
        assert!(ix.insert(4, &addr(&v, "[203.0.113.0/24,!203.0.113.5]"), &any));
        assert_eq!(ix.len(), 3);
        assert_eq!(found(&ix, "198.51.100.7", "10.0.0.1"), [0]);
        assert_eq!(found(&ix, "10.0.0.1", "198.51.100.7"), [0], "either side");
        assert_eq!(
            found(&ix, "203.0.113.9", "203.0.113.1"),
            [0, 1, 4],
            "once each"
        );
        assert_eq!(found(&ix, "2001:db8:1::1", "::1"), [1]);
        assert!(found(&ix, "198.51.100.8", "10.0.0.1").is_empty());
        // Outside every indexed /16 and /32: nothing looked up.
        assert!(!ix.may_hold(wide("10.0.0.1".parse().unwrap()).0, true));
        assert!(ix.may_hold(wide("203.0.200.1".parse().unwrap()).0, true));
        assert!(!ix.may_hold(wide("2001:db9::1".parse().unwrap()).0, false));
    }
}
