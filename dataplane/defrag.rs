//! IP fragment reassembly, one table per worker, preallocated from
//! `--defrag-memcap`: each datagram in flight holds one slot of 64 KiB of
//! payload and a bitmap of the 8-byte blocks it has. Policies, all counted:
//! - IPv4 overlaps: first data wins (what is already held is kept); an
//!   overlap whose bytes differ is also counted as a conflict, since a
//!   receiver with another policy would see other bytes.
//! - IPv6 overlaps: the whole datagram is discarded (RFC 5722), including
//!   fragments that arrive later.
//! - Exact duplicates (same blocks, same bytes) are ignored.
//! - A first fragment too short to hold its transport header is counted
//!   (`tiny_first`); it is still reassembled.
//! - More than `MAX_FRAGMENTS` fragments, a datagram past 65,535 bytes, a
//!   non-last fragment not a multiple of 8: the datagram is dropped, and
//!   like an IPv6 overlap it stays discarded until its timeout, so the rest
//!   of a fragment flood is ignored rather than starting new datagrams.
//! - Timeouts run on capture time, like flows.
//!
//! A completed datagram is rebuilt as one frame (the first fragment's link
//! and IP headers, lengths fixed, no fragment fields) that the pipeline
//! decodes like any packet.

use crate::craft::internet_checksum;
use crate::decode::{Decoded, Network, MAX_VLAN_TAGS};
use serde_json::{json, Value};

/// Largest IP payload a datagram can reassemble to.
pub const MAX_DATAGRAM: usize = 65_535;
/// Link and unfragmentable IP headers copied from the first fragment.
const MAX_HEAD: usize = 512;
/// Fragments one datagram may take.
pub const MAX_FRAGMENTS: u16 = 128;
const BLOCKS: usize = MAX_DATAGRAM.div_ceil(8);
const BITMAP_WORDS: usize = BLOCKS.div_ceil(64);
/// Bytes one slot costs: payload, bitmap, headers.
pub const SLOT_BYTES: usize = MAX_DATAGRAM + BITMAP_WORDS * 8 + MAX_HEAD;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DefragConfig {
    /// Bytes of reassembly state per worker.
    pub memcap: usize,
    pub timeout_ns: u64,
}

impl Default for DefragConfig {
    fn default() -> Self {
        DefragConfig {
            memcap: 16 << 20,
            timeout_ns: 30_000_000_000,
        }
    }
}

/// What reassembly counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FragCounters {
    pub fragments: u64,
    pub reassembled: u64,
    pub timeouts: u64,
    pub overlaps: u64,
    pub overlap_conflicts: u64,
    pub duplicates: u64,
    pub ipv6_overlap_discards: u64,
    pub tiny_first: u64,
    pub too_many_fragments: u64,
    pub invalid: u64,
    pub no_slot: u64,
    /// Reassembled datagrams handed to the worker that owns their flow,
    /// and those lost because its ring or the buffer pool was full.
    pub handoffs: u64,
    pub handoff_drops: u64,
    /// Fragments of datagrams that could not be reassembled (evicted under
    /// pressure) met by the exception policy.
    pub exception: u64,
}

impl FragCounters {
    pub fn add(&mut self, o: &FragCounters) {
        self.fragments += o.fragments;
        self.reassembled += o.reassembled;
        self.timeouts += o.timeouts;
        self.overlaps += o.overlaps;
        self.overlap_conflicts += o.overlap_conflicts;
        self.duplicates += o.duplicates;
        self.ipv6_overlap_discards += o.ipv6_overlap_discards;
        self.tiny_first += o.tiny_first;
        self.too_many_fragments += o.too_many_fragments;
        self.invalid += o.invalid;
        self.no_slot += o.no_slot;
        self.handoffs += o.handoffs;
        self.handoff_drops += o.handoff_drops;
        self.exception += o.exception;
    }

    pub fn to_json(self) -> Value {
        json!({
            "fragments": self.fragments, "reassembled": self.reassembled,
            "timeouts": self.timeouts, "overlaps": self.overlaps,
            "overlap_conflicts": self.overlap_conflicts, "duplicates": self.duplicates,
            "ipv6_overlap_discards": self.ipv6_overlap_discards, "tiny_first": self.tiny_first,
            "too_many_fragments": self.too_many_fragments, "invalid": self.invalid,
            "no_slot": self.no_slot, "handoffs": self.handoffs, "handoff_drops": self.handoff_drops,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct FragKey {
    network: Network,
    src: [u8; 16],
    dst: [u8; 16],
    id: u32,
    proto: u8,
    vlan: [u16; MAX_VLAN_TAGS],
    vni: Option<u32>,
    pass: u16,
}

struct Slot {
    key: FragKey,
    in_use: bool,
    discarded: bool,
    first_ns: u64,
    head: Box<[u8]>,
    head_len: usize,
    l3_offset: usize,
    unfrag_len: usize,
    next_field: usize,
    data: Box<[u8]>,
    blocks: Box<[u64]>,
    total: Option<usize>,
    fragments: u16,
}

impl Slot {
    fn new() -> Self {
        Slot {
            key: FragKey::default(),
            in_use: false,
            discarded: false,
            first_ns: 0,
            head: vec![0; MAX_HEAD].into_boxed_slice(),
            head_len: 0,
            l3_offset: 0,
            unfrag_len: 0,
            next_field: 0,
            data: vec![0; MAX_DATAGRAM].into_boxed_slice(),
            blocks: vec![0; BITMAP_WORDS].into_boxed_slice(),
            total: None,
            fragments: 0,
        }
    }

    fn has(&self, b: usize) -> bool {
        self.blocks[b / 64] & (1 << (b % 64)) != 0
    }

    fn set(&mut self, b: usize) {
        self.blocks[b / 64] |= 1 << (b % 64);
    }

    fn reset(&mut self, key: FragKey, now_ns: u64) {
        self.key = key;
        self.in_use = true;
        self.discarded = false;
        self.first_ns = now_ns;
        self.head_len = 0;
        self.total = None;
        self.fragments = 0;
        self.blocks.fill(0);
    }

    fn complete(&self) -> bool {
        match self.total {
            Some(t) if self.head_len > 0 => (0..t.div_ceil(8)).all(|b| self.has(b)),
            _ => false,
        }
    }
}

pub struct Defrag {
    slots: Vec<Slot>,
    timeout_ns: u64,
    out: Box<[u8]>,
    pub counters: FragCounters,
}

impl Defrag {
    /// Preallocates `memcap / SLOT_BYTES` slots (at least one).
    pub fn new(cfg: DefragConfig) -> Self {
        let n = (cfg.memcap / SLOT_BYTES).max(1);
        Defrag {
            slots: (0..n).map(|_| Slot::new()).collect(),
            timeout_ns: cfg.timeout_ns,
            out: vec![0; MAX_HEAD + MAX_DATAGRAM].into_boxed_slice(),
            counters: FragCounters::default(),
        }
    }

    /// Datagrams that can be in flight at once.
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    pub fn in_flight(&self) -> usize {
        self.slots.iter().filter(|s| s.in_use).count()
    }

    /// Takes one fragment (`d` decoded from `frame`). Returns the rebuilt
    /// datagram when this fragment completes it.
    pub fn fragment(&mut self, frame: &[u8], d: &Decoded, now_ns: u64, pass: u16) -> Option<&[u8]> {
        self.counters.fragments += 1;
        let key = FragKey {
            network: d.network,
            src: d.src,
            dst: d.dst,
            id: d.frag.id,
            proto: if d.network == Network::Ipv4 {
                d.proto
            } else {
                0
            },
            vlan: d.vlan,
            vni: d.vni,
            pass,
        };
        let i = match self.slots.iter().position(|s| s.in_use && s.key == key) {
            Some(i) => i,
            None => match self.slots.iter().position(|s| !s.in_use) {
                Some(i) => {
                    self.slots[i].reset(key, now_ns);
                    i
                }
                None => {
                    self.counters.no_slot += 1;
                    return None;
                }
            },
        };
        let slot = &mut self.slots[i];
        if slot.discarded {
            return None;
        }
        slot.fragments += 1;
        let start = d.payload_offset as usize;
        let data = frame
            .get(start..start + d.payload_len as usize)
            .unwrap_or(&[]);
        let off = d.frag.offset as usize;
        let end = off + data.len();
        let bad = slot.fragments > MAX_FRAGMENTS
            || end > MAX_DATAGRAM
            || (d.frag.more && data.len() % 8 != 0)
            || slot
                .total
                .is_some_and(|t| end > t || (!d.frag.more && end != t));
        if bad {
            if slot.fragments > MAX_FRAGMENTS {
                self.counters.too_many_fragments += 1;
            } else {
                self.counters.invalid += 1;
            }
            slot.discarded = true;
            return None;
        }
        if !d.frag.more {
            slot.total = Some(end);
        }

        // Overlaps, block by block (offsets are multiples of 8; only a last
        // fragment may end mid-block).
        let first_block = off / 8;
        let last_block = end.div_ceil(8);
        let mut overlap = false;
        let mut differs = false;
        for b in first_block..last_block {
            if slot.has(b) {
                overlap = true;
                let (lo, hi) = (b * 8, (b * 8 + 8).min(end));
                if slot.data[lo..hi] != data[lo - off..hi - off] {
                    differs = true;
                }
            }
        }
        let all_present = (first_block..last_block).all(|b| slot.has(b));
        if overlap && all_present && !differs {
            self.counters.duplicates += 1;
        } else if overlap {
            self.counters.overlaps += 1;
            if differs {
                self.counters.overlap_conflicts += 1;
            }
            if d.network == Network::Ipv6 {
                self.counters.ipv6_overlap_discards += 1;
                slot.discarded = true;
                return None;
            }
        }
        // First data wins: copy only the blocks not held yet.
        for b in first_block..last_block {
            if !slot.has(b) {
                let (lo, hi) = (b * 8, (b * 8 + 8).min(end));
                slot.data[lo..hi].copy_from_slice(&data[lo - off..hi - off]);
                slot.set(b);
            }
        }
        if off == 0 && slot.head_len == 0 {
            let l3 = usize::from(d.frag.l3_offset);
            let unfrag = usize::from(d.frag.unfrag_len);
            if l3 + unfrag > MAX_HEAD || l3 + unfrag > frame.len() {
                self.counters.invalid += 1;
                slot.discarded = true;
                return None;
            }
            slot.head[..l3 + unfrag].copy_from_slice(&frame[..l3 + unfrag]);
            slot.head_len = l3 + unfrag;
            slot.l3_offset = l3;
            slot.unfrag_len = unfrag;
            slot.next_field = usize::from(d.frag.next_field);
            let min_l4 = match d.proto {
                6 => 20,
                17 | 1 | 58 => 8,
                _ => 0,
            };
            if data.len() < min_l4 {
                self.counters.tiny_first += 1;
            }
        }
        // (The upper protocol of an IPv6 datagram is the fragment header's
        // next header; the key leaves it out, so keep it here.)
        let upper = d.proto;
        if !slot.complete() {
            return None;
        }
        slot.in_use = false;
        self.counters.reassembled += 1;
        let total = slot.total.unwrap_or(0);
        let (hl, l3) = (slot.head_len, slot.l3_offset);
        let out = &mut self.out;
        out[..hl].copy_from_slice(&slot.head[..hl]);
        out[hl..hl + total].copy_from_slice(&slot.data[..total]);
        match d.network {
            Network::Ipv4 => {
                let ip = &mut out[l3..hl];
                ip[2..4].copy_from_slice(&((slot.unfrag_len + total) as u16).to_be_bytes());
                // Keep DF, clear MF and the offset.
                ip[6] &= 0x40;
                ip[7] = 0;
                ip[10..12].copy_from_slice(&[0, 0]);
                let c = internet_checksum(&[ip]);
                ip[10..12].copy_from_slice(&c.to_be_bytes());
            }
            _ => {
                out[l3 + slot.next_field] = upper;
                let plen = (slot.unfrag_len - 40 + total) as u16;
                out[l3 + 4..l3 + 6].copy_from_slice(&plen.to_be_bytes());
            }
        }
        Some(&self.out[..hl + total])
    }

    /// Drops datagrams still incomplete `timeout` after their first
    /// fragment, on capture time.
    pub fn expire(&mut self, now_ns: u64) {
        for s in self.slots.iter_mut().filter(|s| s.in_use) {
            if s.first_ns.saturating_add(self.timeout_ns) <= now_ns {
                s.in_use = false;
                if !s.discarded {
                    self.counters.timeouts += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::craft::{fragment, Ipv6Ext, Route};
    use crate::decode::decode;

    const SEC: u64 = 1_000_000_000;

    /// The same datagram, but for what fragmentation itself changes: the
    /// IPv4 identification, flags and header checksum.
    fn same_datagram(got: &[u8], original: &[u8]) -> bool {
        let l3 = 14 + 4 * usize::from(decode(original).unwrap().vlan_count);
        let v4 = original[l3] >> 4 == 4;
        got.len() == original.len()
            && got.iter().zip(original).enumerate().all(|(i, (a, b))| {
                a == b || (v4 && ((l3 + 4..l3 + 8).contains(&i) || (l3 + 10..l3 + 12).contains(&i)))
            })
    }

    fn table() -> Defrag {
        Defrag::new(DefragConfig {
            memcap: 4 * SLOT_BYTES,
            timeout_ns: 30 * SEC,
        })
    }

    fn v4_segment() -> Vec<u8> {
        let r = Route::new("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap()).vlan(9);
        let payload: Vec<u8> = (0..3000u32).map(|i| (i * 7 % 251) as u8).collect();
        r.tcp(40000, 8000, 1000, 2000, 0x18, 500, &[], &payload)
    }

    fn v6_datagram() -> Vec<u8> {
        let r = Route::new(
            "2001:db8::1".parse().unwrap(),
            "2001:db8::2".parse().unwrap(),
        )
        .ipv6_ext(&[Ipv6Ext::HopByHop, Ipv6Ext::DestOpts]);
        let payload: Vec<u8> = (0..2500u32).map(|i| (i * 13 % 253) as u8).collect();
        r.udp(5000, 6000, &payload)
    }

    /// Feeds fragments in `order`; returns the reassembled frame, if any.
    fn feed(t: &mut Defrag, frags: &[Vec<u8>], order: &[usize]) -> Option<Vec<u8>> {
        let mut done = None;
        for &i in order {
            let d = decode(&frags[i]).unwrap();
            assert!(d.fragment);
            if let Some(f) = t.fragment(&frags[i], &d, 0, 0) {
                done = Some(f.to_vec());
            }
        }
        done
    }

    #[test]
    fn in_order_reversed_and_shuffled_all_rebuild_the_datagram() {
        for original in [v4_segment(), v6_datagram()] {
            let frags = fragment(&original, 800, 77);
            assert!(frags.len() >= 3);
            let n = frags.len();
            let orders: [Vec<usize>; 3] = [
                (0..n).collect(),
                (0..n).rev().collect(),
                (1..n).step_by(2).chain((0..n).step_by(2)).collect(),
            ];
            for order in &orders {
                let mut t = table();
                let got = feed(&mut t, &frags, order).expect("complete");
                let (a, b) = (decode(&got).unwrap(), decode(&original).unwrap());
                assert!(!a.fragment);
                assert_eq!(
                    (a.src_port, a.dst_port, a.proto, a.vlan),
                    (b.src_port, b.dst_port, b.proto, b.vlan)
                );
                // The payload is the original's, byte for byte.
                assert_eq!(
                    &got[a.payload_offset as usize..][..a.payload_len as usize],
                    &original[b.payload_offset as usize..][..b.payload_len as usize]
                );
                assert!(same_datagram(&got, &original), "order {order:?}");
                assert_eq!(t.counters.reassembled, 1);
                assert_eq!(t.in_flight(), 0);
            }
        }
    }

    #[test]
    fn rebuilt_ipv4_header_is_valid() {
        let original = v4_segment();
        let frags = fragment(&original, 1024, 5);
        let got = feed(&mut table(), &frags, &[0, 1, 2]).unwrap();
        let ip = &got[18..38];
        assert_eq!(internet_checksum(&[ip]), 0);
        assert_eq!(
            &ip[6..8],
            &[0, 0],
            "MF and offset cleared (fragments never carry DF)"
        );
        assert_eq!(
            &ip[4..6],
            &5u16.to_be_bytes(),
            "the fragments' identification"
        );
        assert!(same_datagram(&got, &original));
    }

    #[test]
    fn duplicates_are_ignored() {
        let frags = fragment(&v4_segment(), 800, 1);
        let mut t = table();
        let got = feed(&mut t, &frags, &[0, 1, 1, 0, 2, 3]);
        assert!(got.is_some());
        assert_eq!(t.counters.duplicates, 2);
        assert_eq!(t.counters.overlaps, 0);
    }

    #[test]
    fn ipv4_overlap_keeps_the_first_data_and_counts_the_conflict() {
        let original = v4_segment();
        let frags = fragment(&original, 800, 1);
        // A forged fragment over the second one's range, with other bytes.
        let mut forged = frags[1].clone();
        let d = decode(&forged).unwrap();
        for b in &mut forged[d.payload_offset as usize..] {
            *b = b'X';
        }
        let mut all = frags.clone();
        all.push(forged);
        let mut t = table();
        let n = frags.len();
        let mut order: Vec<usize> = vec![1, n]; // real first, then the forgery
        order.extend((0..n).filter(|&i| i != 1));
        let got = feed(&mut t, &all, &order).unwrap();
        assert_eq!(t.counters.overlaps, 1);
        assert_eq!(t.counters.overlap_conflicts, 1);
        assert!(same_datagram(&got, &original), "the first data won");
    }

    #[test]
    fn ipv6_overlap_discards_the_whole_datagram() {
        let frags = fragment(&v6_datagram(), 800, 9);
        let mut shifted = frags[1].clone();
        // Same data, offset moved back by 8: it overlaps fragment 0.
        let d = decode(&shifted).unwrap();
        let fo = usize::from(d.frag.l3_offset) + usize::from(d.frag.unfrag_len) + 2;
        let off = u16::from_be_bytes([shifted[fo], shifted[fo + 1]]) & 0xfff8;
        shifted[fo..fo + 2].copy_from_slice(&((off - 8) | 1).to_be_bytes());
        let mut all = frags.clone();
        all.push(shifted);
        let mut t = table();
        let n = frags.len();
        let mut order = vec![0, n];
        order.extend(1..n);
        assert!(feed(&mut t, &all, &order).is_none(), "never completes");
        assert_eq!(t.counters.ipv6_overlap_discards, 1);
        t.expire(31 * SEC);
        assert_eq!(t.in_flight(), 0);
        assert_eq!(
            t.counters.timeouts, 0,
            "a discarded datagram is not a timeout"
        );
    }

    #[test]
    fn incomplete_datagrams_time_out_on_capture_time() {
        let frags = fragment(&v4_segment(), 800, 3);
        let mut t = table();
        assert!(feed(&mut t, &frags, &[0, 2]).is_none());
        t.expire(29 * SEC);
        assert_eq!(t.in_flight(), 1);
        t.expire(30 * SEC);
        assert_eq!((t.in_flight(), t.counters.timeouts), (0, 1));
    }

    #[test]
    fn tiny_first_fragments_are_counted() {
        let frags = fragment(&v4_segment(), 8, 4);
        let mut t = Defrag::new(DefragConfig {
            memcap: SLOT_BYTES,
            timeout_ns: SEC,
        });
        let order: Vec<usize> = (0..frags.len().min(MAX_FRAGMENTS as usize)).collect();
        let _ = feed(&mut t, &frags, &order);
        assert_eq!(t.counters.tiny_first, 1);
        assert!(frags.len() > MAX_FRAGMENTS as usize);
        let rest: Vec<usize> = (MAX_FRAGMENTS as usize..frags.len()).collect();
        let _ = feed(&mut t, &frags, &rest);
        assert_eq!(t.counters.too_many_fragments, 1);
    }

    #[test]
    fn hostile_fragments_never_panic_or_grow_the_table() {
        // Real fragments with their offset, MF bit, identification and
        // length scrambled, IPv4 and IPv6, thousands of them.
        let mut t = Defrag::new(DefragConfig {
            memcap: 8 * SLOT_BYTES,
            timeout_ns: SEC,
        });
        let mut x: u64 = 0x1234_5678_9abc_def1;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let seeds = [
            fragment(&v4_segment(), 800, 1),
            fragment(&v6_datagram(), 800, 2),
        ];
        for round in 0..20_000u64 {
            let base = &seeds[(round % 2) as usize];
            let mut f = base[(next() % base.len() as u64) as usize].clone();
            let d = decode(&f).unwrap();
            let at = usize::from(d.frag.l3_offset)
                + if d.network == Network::Ipv4 {
                    6
                } else {
                    usize::from(d.frag.unfrag_len) + 2
                };
            let r = next();
            f[at] = r as u8;
            f[at + 1] = (r >> 8) as u8;
            if d.network == Network::Ipv4 {
                f[at - 2] = (r >> 16) as u8 % 4; // a few identifications
            } else {
                f[at + 5] = (r >> 16) as u8 % 4;
            }
            if r >> 24 & 3 == 0 {
                let keep = (r >> 26) as usize % f.len();
                f.truncate(keep.max(1));
            }
            if let Ok(d) = decode(&f) {
                if d.fragment {
                    let _ = t.fragment(&f, &d, round * 1000, 0);
                }
            }
            assert!(t.in_flight() <= t.capacity());
            if round % 1000 == 0 {
                t.expire(round * 1000);
            }
        }
        assert!(t.counters.fragments > 10_000);
    }

    #[test]
    fn a_full_table_counts_and_refuses_new_datagrams() {
        let mut t = Defrag::new(DefragConfig {
            memcap: SLOT_BYTES,
            timeout_ns: SEC,
        });
        let a = fragment(&v4_segment(), 800, 1);
        let b = fragment(&v4_segment(), 800, 2);
        let _ = feed(&mut t, &a, &[0]);
        let _ = feed(&mut t, &b, &[0]);
        assert_eq!(t.counters.no_slot, 1);
        assert_eq!(t.capacity(), 1);
    }
}
