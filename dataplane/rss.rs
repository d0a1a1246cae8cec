//! Receive-side scaling in software: the Toeplitz hash a NIC computes over the
//! IP addresses and TCP/UDP ports, and the redirection table that turns a hash
//! into a queue. With the 0x6d5a-repeated key the hash is symmetric, so both
//! directions of a connection land on the same worker whether a NIC or the
//! replay reader did the spreading. The redirection table is filled the way
//! DPDK fills a port's by default (entry i -> queue i mod n), so a replay and a
//! NIC-RSS deployment with the same key and queue count agree packet for
//! packet.

use crate::decode::{Decoded, Network};

/// 0x6d5a repeated over 40 bytes: a Toeplitz key under which swapping source
/// and destination (addresses and ports together) leaves the hash unchanged.
pub const SYMMETRIC_KEY: [u8; 40] = {
    let mut k = [0u8; 40];
    let mut i = 0;
    while i < 40 {
        k[i] = if i % 2 == 0 { 0x6d } else { 0x5a };
        i += 1;
    }
    k
};

/// Longest hash input: two IPv6 addresses and two ports.
const MAX_INPUT: usize = 36;

/// A Toeplitz hasher with a per-byte lookup table: 36 x 256 words, so one
/// hash is one load and one XOR per input byte.
pub struct Toeplitz {
    table: Box<[[u32; 256]; MAX_INPUT]>,
}

impl Toeplitz {
    pub fn new(key: &[u8; 40]) -> Self {
        let mut table = Box::new([[0u32; 256]; MAX_INPUT]);
        for (pos, row) in table.iter_mut().enumerate() {
            for (value, slot) in row.iter_mut().enumerate() {
                let mut h = 0u32;
                for bit in 0..8 {
                    if value & (0x80 >> bit) != 0 {
                        h ^= key_window(key, pos * 8 + bit);
                    }
                }
                *slot = h;
            }
        }
        Toeplitz { table }
    }

    /// Hashes up to 36 input bytes (longer input is cut at 36).
    pub fn hash(&self, input: &[u8]) -> u32 {
        input
            .iter()
            .zip(self.table.iter())
            .fold(0, |h, (&b, row)| h ^ row[usize::from(b)])
    }

    /// The hash a NIC computes for this packet: addresses and ports for TCP
    /// and UDP, addresses alone for fragments and other IP protocols, and 0
    /// (queue 0, like a NIC) for anything that is not IP.
    pub fn hash_packet(&self, d: &Decoded) -> u32 {
        let mut input = [0u8; MAX_INPUT];
        let addr_len = match d.network {
            Network::Ipv4 => 4,
            Network::Ipv6 => 16,
            Network::Arp => return 0,
        };
        input[..addr_len].copy_from_slice(&d.src[..addr_len]);
        input[addr_len..2 * addr_len].copy_from_slice(&d.dst[..addr_len]);
        let mut len = 2 * addr_len;
        if !d.fragment && matches!(d.proto, 6 | 17) {
            input[len..len + 2].copy_from_slice(&d.src_port.to_be_bytes());
            input[len + 2..len + 4].copy_from_slice(&d.dst_port.to_be_bytes());
            len += 4;
        }
        self.hash(&input[..len])
    }
}

/// The 32 key bits starting at bit `start` (MSB first), zero past the key.
fn key_window(key: &[u8; 40], start: usize) -> u32 {
    let mut w = 0u64;
    for i in 0..8 {
        w = (w << 8) | u64::from(*key.get(start / 8 + i).unwrap_or(&0));
    }
    (w << (start % 8) >> 32) as u32
}

/// RSS in software, for captures and for ports without usable RSS: decode
/// the frame, hash it as the NIC would, look the queue up. The replay reader
/// and the DPDK RX lcore both spread packets with this.
pub struct SoftRss {
    toeplitz: Toeplitz,
    reta: Reta,
    /// Fragment steering (see `steer`): (datagram key hash, queue) per slot.
    steer: Box<[(u64, u16)]>,
}

/// Datagrams a dispatcher remembers the queue of, by hashed key.
const STEER_SLOTS: usize = 4096;

impl SoftRss {
    pub fn new(queues: u16) -> Self {
        Self::with_reta_size(queues, RETA_SIZE)
    }

    /// With a redirection table of `size` entries, as a port that spreads in
    /// hardware has it: the queue is `entry[hash mod size]`, so the software
    /// and the NIC only agree on a worker when their tables are the same size
    /// (for worker counts that do not divide 128 it matters).
    pub fn with_reta_size(queues: u16, size: usize) -> Self {
        SoftRss {
            toeplitz: Toeplitz::new(&SYMMETRIC_KEY),
            reta: Reta::with_size(queues, size),
            steer: vec![(0, 0); STEER_SLOTS].into_boxed_slice(),
        }
    }

    /// Like `queue_for`, but keeps every fragment of a datagram together and,
    /// when the first fragment (which carries the transport ports) comes
    /// first, sends them all to the queue that owns the datagram's flow, so
    /// the flow's worker reassembles it in order with the rest of the flow.
    /// Fragments seen before their first fragment go where their addresses
    /// hash (as a NIC sends them), and the rest of the datagram follows them
    /// there; the workers' handoff then takes it to its flow. Used by the
    /// software dispatchers, which see every packet in order.
    pub fn steer(&mut self, frame: &[u8], pass: u16) -> u16 {
        // Most packets are a plain TCP or UDP segment: hashed from their
        // headers without decoding the rest.
        if let Some(mut d) = quick_tuple(frame) {
            if pass != 0 {
                d.offset_addresses(pass);
            }
            return self.reta.queue(self.toeplitz.hash_packet(&d));
        }
        let Ok(mut d) = crate::decode::decode(frame) else {
            return 0;
        };
        if pass != 0 {
            d.offset_addresses(pass);
        }
        if !d.fragment {
            return self.reta.queue(self.toeplitz.hash_packet(&d));
        }
        let key = frag_key(&d, pass);
        let slot = &mut self.steer[key as usize % STEER_SLOTS];
        if slot.0 == key {
            return slot.1;
        }
        let start = d.payload_offset as usize;
        let ports = frame.get(start..start + 4);
        let q = match ports {
            Some(p) if d.frag.offset == 0 && matches!(d.proto, 6 | 17) => {
                d.src_port = u16::from_be_bytes([p[0], p[1]]);
                d.dst_port = u16::from_be_bytes([p[2], p[3]]);
                d.fragment = false;
                self.reta.queue(self.toeplitz.hash_packet(&d))
            }
            _ => self.reta.queue(self.toeplitz.hash_packet(&d)),
        };
        *slot = (key, q);
        q
    }

    /// The worker for a frame. `pass` is the replay pass (`--loop`), whose
    /// address shift the hash must see; 0 on live traffic. What does not
    /// decode goes to queue 0, as a NIC sends what it cannot parse.
    pub fn queue_for(&self, frame: &[u8], pass: u16) -> u16 {
        match crate::decode::decode(frame) {
            Ok(mut d) => {
                if pass != 0 {
                    d.offset_addresses(pass);
                }
                self.reta.queue(self.toeplitz.hash_packet(&d))
            }
            Err(_) => 0,
        }
    }
}

/// A datagram's identity (addresses, id, protocol, VLANs, VNI, pass) as one
/// hash, never 0 (0 marks an empty steering slot).
fn frag_key(d: &crate::decode::Decoded, pass: u16) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut mix = |b: &[u8]| {
        for x in b {
            h = (h ^ u64::from(*x)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    mix(&d.src);
    mix(&d.dst);
    mix(&d.frag.id.to_be_bytes());
    mix(&[d.proto, d.vlan_count]);
    for v in d.vlan {
        mix(&v.to_be_bytes());
    }
    mix(&d.vni.unwrap_or(u32::MAX).to_be_bytes());
    mix(&pass.to_be_bytes());
    h | 1
}

/// Entries in the redirection table; the common size on 10/25/100G NICs and
/// a multiple of every small queue count.
pub const RETA_SIZE: usize = 128;

/// The redirection table: the low bits of the hash pick an entry, the entry
/// names the queue (worker).
pub struct Reta {
    entries: Box<[u16]>,
}

impl Reta {
    /// Fills entry i with queue i mod `queues`, as DPDK does by default.
    pub fn new(queues: u16) -> Self {
        Self::with_size(queues, RETA_SIZE)
    }

    /// A table of `size` entries (at least one), entry i -> queue i mod
    /// `queues`: what `tollgate run` programs into every port.
    pub fn with_size(queues: u16, size: usize) -> Self {
        let queues = usize::from(queues.max(1));
        Reta {
            entries: (0..size.max(1)).map(|i| (i % queues) as u16).collect(),
        }
    }

    pub fn queue(&self, hash: u32) -> u16 {
        self.entries[hash as usize % self.entries.len()]
    }
}

/// The addresses and ports of a plain TCP or UDP packet (Ethernet, up to
/// two VLAN tags, IPv4 without options' worth of checks, or IPv6 with the
/// transport header first), as `decode` would find them; None for anything
/// else (fragments, tunnels, other protocols, extension headers, short or
/// odd frames), which is decoded in full.
fn quick_tuple(frame: &[u8]) -> Option<Decoded> {
    let be16 = |b: &[u8]| u16::from_be_bytes([b[0], b[1]]);
    let mut et = be16(frame.get(12..14)?);
    let mut at = 14;
    for _ in 0..2 {
        if et == 0x8100 || et == 0x88a8 {
            et = be16(frame.get(at + 2..at + 4)?);
            at += 4;
        }
    }
    let mut d = Decoded::default();
    let (proto, l4) = match et {
        0x0800 => {
            let ip = frame.get(at..at + 20)?;
            let ihl = usize::from(ip[0] & 0x0f) * 4;
            let total = usize::from(be16(&ip[2..4]));
            if ip[0] >> 4 != 4 || ihl < 20 || total < ihl || frame.len() < at + total {
                return None;
            }
            // More fragments, or an offset: fragments are steered apart.
            if be16(&ip[6..8]) & 0x3fff != 0 {
                return None;
            }
            d.network = Network::Ipv4;
            d.src[..4].copy_from_slice(&ip[12..16]);
            d.dst[..4].copy_from_slice(&ip[16..20]);
            (ip[9], at + ihl)
        }
        0x86dd => {
            let ip = frame.get(at..at + 40)?;
            if ip[0] >> 4 != 6 || frame.len() < at + 40 + usize::from(be16(&ip[4..6])) {
                return None;
            }
            d.network = Network::Ipv6;
            d.src.copy_from_slice(&ip[8..24]);
            d.dst.copy_from_slice(&ip[24..40]);
            (ip[6], at + 40)
        }
        _ => return None,
    };
    let min = match proto {
        6 => 20,
        17 => 8,
        _ => return None,
    };
    let t = frame.get(l4..l4 + min)?;
    (d.src_port, d.dst_port) = (be16(&t[0..2]), be16(&t[2..4]));
    // Tunnels (VXLAN, and GRE above) carry the flow that counts inside.
    if proto == 17 && d.dst_port == crate::decode::vxlan::PORT {
        return None;
    }
    if proto == 6 {
        let hl = usize::from(t[12] >> 4) * 4;
        if hl < 20 || l4 + hl > frame.len() {
            return None;
        }
    }
    d.proto = proto;
    Some(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    #[test]
    fn the_quick_path_steers_as_a_full_decode_does() {
        use crate::craft::{fragment, Route};
        let ip = |s: &str| -> IpAddr { s.parse().unwrap() };
        let v4 = Route::new(ip("10.1.2.3"), ip("192.0.2.9"));
        let v6 = Route::new(ip("2001:db8::1"), ip("2001:db8::2"));
        let mut frames = Vec::new();
        for r in [
            v4.clone(),
            v6.clone(),
            v4.clone().vlan(7),
            v6.clone().qinq(100, 7),
            v4.clone().vlan(1).vlan(2).vlan(3),
        ] {
            frames.push(r.tcp(40000, 443, 1, 2, 0x18, 1000, &[2, 4, 5, 0xb4], b"hello"));
            frames.push(r.tcp(443, 40000, 2, 1, 0x10, 1000, &[], b""));
            frames.push(r.udp(5353, 53, b"\x12\x34query"));
            frames.push(r.frame(1, &[8, 0, 0, 0, 0, 1, 0, 1]));
        }
        let inner = v4.tcp(1, 2, 0, 0, 2, 100, &[], b"");
        frames.push(v4.vxlan(50000, 42, &inner));
        let big = v4.udp(1000, 2000, &[7u8; 3000]);
        frames.extend(fragment(&big, 1400, 9));
        let (mut fast, mut total) = (0, 0);
        for f in &frames {
            // Every cut of it too: the quick path must never hash what a
            // decode would not, or hash it otherwise.
            for cut in [f.len(), f.len() - 1, 60, 54, 40, 34, 20, 13] {
                let f = &f[..cut.min(f.len())];
                total += 1;
                for pass in [0u16, 3] {
                    let Some(mut q) = quick_tuple(f) else {
                        continue;
                    };
                    fast += 1;
                    let mut d = crate::decode::decode(f).expect("quick only on what decodes");
                    if pass != 0 {
                        q.offset_addresses(pass);
                        d.offset_addresses(pass);
                    }
                    let t = Toeplitz::new(&SYMMETRIC_KEY);
                    assert_eq!(t.hash_packet(&q), t.hash_packet(&d), "{f:02x?}");
                }
            }
        }
        assert!(fast > 20 && fast < 2 * total, "{fast} of {total}");
        // Tunnels, fragments and the rest take the full decode.
        assert!(quick_tuple(&v4.vxlan(50000, 42, &inner)).is_none());
        assert!(quick_tuple(&fragment(&big, 1400, 9)[1]).is_none());
        assert!(quick_tuple(&v4.frame(1, &[8, 0, 0, 0])).is_none());
    }

    /// Microsoft's RSS verification key (the 82599 datasheet and DPDK's
    /// test_thash use the same).
    const MS_KEY: [u8; 40] = [
        0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f,
        0xb0, 0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30,
        0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
    ];

    /// The hash input: source and destination address, then the ports.
    fn input(src: &str, dst: &str, ports: Option<(u16, u16)>) -> Vec<u8> {
        let octets = |a: &str| match a.parse::<IpAddr>().unwrap() {
            IpAddr::V4(v) => v.octets().to_vec(),
            IpAddr::V6(v) => v.octets().to_vec(),
        };
        let mut v = octets(src);
        v.extend(octets(dst));
        if let Some((sp, dp)) = ports {
            v.extend_from_slice(&sp.to_be_bytes());
            v.extend_from_slice(&dp.to_be_bytes());
        }
        v
    }

    /// The published verification suite: (source, destination, source port,
    /// destination port, IP-only hash, IP+TCP hash).
    #[test]
    fn microsoft_ipv4_vectors() {
        let t = Toeplitz::new(&MS_KEY);
        let vectors = [
            (
                "66.9.149.187",
                "161.142.100.80",
                2794,
                1766,
                0x323e8fc2,
                0x51ccc178,
            ),
            (
                "199.92.111.2",
                "65.69.140.83",
                14230,
                4739,
                0xd718262a,
                0xc626b0ea,
            ),
            (
                "24.19.198.95",
                "12.22.207.184",
                12898,
                38024,
                0xd2d0a5de,
                0x5c2b394a,
            ),
            (
                "38.27.205.30",
                "209.142.163.6",
                48228,
                2217,
                0x82989176,
                0xafc7327f,
            ),
            (
                "153.39.163.191",
                "202.188.127.2",
                44251,
                1303,
                0x5d1809c5,
                0x10e828a2,
            ),
        ];
        for (s, d, sp, dp, ip, tcp) in vectors {
            assert_eq!(t.hash(&input(s, d, None)), ip, "{s} -> {d}");
            assert_eq!(t.hash(&input(s, d, Some((sp, dp)))), tcp, "{s} -> {d}");
        }
    }

    #[test]
    fn microsoft_ipv6_vectors() {
        let t = Toeplitz::new(&MS_KEY);
        let vectors = [
            (
                "3ffe:2501:200:1fff::7",
                "3ffe:2501:200:3::1",
                2794,
                1766,
                0x2cc18cd5,
                0x40207d3d,
            ),
            (
                "3ffe:501:8::260:97ff:fe40:efab",
                "ff02::1",
                14230,
                4739,
                0x0f0c461c,
                0xdde51bbf,
            ),
            (
                "3ffe:1900:4545:3:200:f8ff:fe21:67cf",
                "fe80::200:f8ff:fe21:67cf",
                44251,
                38024,
                0x4b61e985,
                0x02d1feef,
            ),
        ];
        for (s, d, sp, dp, ip, tcp) in vectors {
            assert_eq!(t.hash(&input(s, d, None)), ip, "{s} -> {d}");
            assert_eq!(t.hash(&input(s, d, Some((sp, dp)))), tcp, "{s} -> {d}");
        }
    }

    #[test]
    fn symmetric_key_is_direction_free() {
        assert_eq!(&SYMMETRIC_KEY[..4], &[0x6d, 0x5a, 0x6d, 0x5a]);
        let t = Toeplitz::new(&SYMMETRIC_KEY);
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..1000 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let b = x.to_be_bytes();
            let (sp, dp) = (
                u16::from_be_bytes([b[0], b[1]]),
                u16::from_be_bytes([b[2], b[3]]),
            );
            let a = [b[4], b[5], b[6], b[7]];
            let c = [b[7], b[1], b[3], b[5]];
            let mut fwd = a.to_vec();
            fwd.extend_from_slice(&c);
            fwd.extend_from_slice(&sp.to_be_bytes());
            fwd.extend_from_slice(&dp.to_be_bytes());
            let mut rev = c.to_vec();
            rev.extend_from_slice(&a);
            rev.extend_from_slice(&dp.to_be_bytes());
            rev.extend_from_slice(&sp.to_be_bytes());
            assert_eq!(t.hash(&fwd), t.hash(&rev));
        }
    }

    #[test]
    fn reta_spreads_like_dpdk_default() {
        let r = Reta::new(3);
        assert_eq!(r.queue(0), 0);
        assert_eq!(r.queue(1), 1);
        assert_eq!(r.queue(5), 2);
        assert_eq!(r.queue(127), 127 % 3);
        assert_eq!(r.queue(128), 0, "only the low 7 bits index the table");
        let one = Reta::new(1);
        assert!((0..1000).all(|h| one.queue(h) == 0));
    }

    #[test]
    fn fragments_follow_their_first_fragment_or_stay_together() {
        use crate::craft::{fragment, Route};
        let r = Route::new("10.1.0.5".parse().unwrap(), "203.0.113.10".parse().unwrap());
        let mut rss = SoftRss::new(8);
        // Find a segment whose flow's queue differs from its addresses' queue.
        let (whole, frags) = (40000u16..41000)
            .map(|sp| r.tcp(sp, 80, 1, 1, 0x18, 100, &[], &[b'k'; 2000]))
            .map(|f| (f.clone(), fragment(&f, 600, 9)))
            .find(|(w, fr)| rss.queue_for(w, 0) != rss.queue_for(&fr[1], 0))
            .unwrap();
        let owner = rss.queue_for(&whole, 0);
        // In order: every fragment goes to the flow's owner.
        assert!(frags.iter().all(|f| rss.steer(f, 0) == owner));
        // Reversed (another datagram id): all stay together on the address queue.
        let rev = fragment(&whole, 600, 10);
        let addr_q = rss.queue_for(&rev[1], 0);
        let got: Vec<u16> = rev.iter().rev().map(|f| rss.steer(f, 0)).collect();
        assert!(got.iter().all(|&q| q == addr_q), "{got:?}");
        assert_eq!(rss.steer(&whole, 0), owner, "whole packets are not steered");
    }

    #[test]
    fn table_size_matters_unless_the_worker_count_divides_it() {
        let (small, big) = (Reta::with_size(3, 128), Reta::with_size(3, 512));
        assert_eq!(big.queue(130), 130 % 3);
        assert_ne!(
            small.queue(130),
            big.queue(130),
            "(130 mod 128) mod 3 != 130 mod 3"
        );
        let (small, big) = (Reta::with_size(4, 128), Reta::with_size(4, 512));
        assert!((0..10_000).all(|h| small.queue(h) == big.queue(h)));
    }
}
