//! Community ID v1 (corelight/community-id-spec): a flow hash that Zeek,
//! Suricata and SIEMs compute the same way, so a flow can be followed
//! across their logs. SHA-1 over the seed, the ordered endpoints, the
//! protocol and the ports (ICMP: type and the counterpart type, or code),
//! base64, prefixed `1:`.

use crate::detect::content::base64_encode as base64;
use std::net::IpAddr;

/// ICMP types that come in request/reply pairs (ICMPv4, then ICMPv6): the
/// other type of the pair stands in for the destination port.
fn icmp_counterpart(v6: bool, t: u8) -> Option<u8> {
    let pairs: &[(u8, u8)] = if v6 {
        &[(128, 129), (133, 134), (135, 136), (130, 131), (144, 145)]
    } else {
        &[(8, 0), (13, 14), (15, 16), (10, 9), (17, 18)]
    };
    pairs.iter().find_map(|&(a, b)| {
        if t == a {
            Some(b)
        } else if t == b {
            Some(a)
        } else {
            None
        }
    })
}

/// The Community ID of a packet's flow: `src`:`sport` to `dst`:`dport`
/// over `proto` (for ICMP, `sport` is the type and `dport` the code).
pub fn community_id(
    seed: u16,
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    sport: u16,
    dport: u16,
) -> String {
    let octets = |a: IpAddr| -> ([u8; 16], usize) {
        match a {
            IpAddr::V4(v) => {
                let mut o = [0u8; 16];
                o[..4].copy_from_slice(&v.octets());
                (o, 4)
            }
            IpAddr::V6(v) => (v.octets(), 16),
        }
    };
    let (mut s, len) = octets(src);
    let (mut d, _) = octets(dst);
    let (mut sp, mut dp) = (sport, dport);
    let has_ports = matches!(proto, 1 | 6 | 17 | 58 | 132);
    let mut one_way = false;
    if matches!(proto, 1 | 58) {
        let t = sport as u8;
        match icmp_counterpart(proto == 58, t) {
            Some(other) => dp = u16::from(other),
            None => one_way = true,
        }
        sp = u16::from(t);
    }
    // Lower endpoint first (address, then port), unless the ICMP message
    // has no counterpart.
    let keep = one_way || s[..len] < d[..len] || (s[..len] == d[..len] && sp < dp);
    if !keep {
        std::mem::swap(&mut s, &mut d);
        std::mem::swap(&mut sp, &mut dp);
    }
    let mut h = Sha1::new();
    h.update(&seed.to_be_bytes());
    h.update(&s[..len]);
    h.update(&d[..len]);
    h.update(&[proto, 0]);
    if has_ports {
        h.update(&sp.to_be_bytes());
        h.update(&dp.to_be_bytes());
    }
    format!("1:{}", base64(&h.finish()))
}

/// SHA-1 (FIPS 180-4), for the Community ID only (it is the spec's hash;
/// nothing here relies on it for security).
struct Sha1 {
    h: [u32; 5],
    buf: [u8; 64],
    n: usize,
    len: u64,
}

impl Sha1 {
    fn new() -> Self {
        Sha1 {
            h: [
                0x6745_2301,
                0xefcd_ab89,
                0x98ba_dcfe,
                0x1032_5476,
                0xc3d2_e1f0,
            ],
            buf: [0; 64],
            n: 0,
            len: 0,
        }
    }

    fn update(&mut self, mut data: &[u8]) {
        self.len += data.len() as u64;
        while !data.is_empty() {
            let take = (64 - self.n).min(data.len());
            self.buf[self.n..self.n + take].copy_from_slice(&data[..take]);
            self.n += take;
            data = &data[take..];
            if self.n == 64 {
                let block = self.buf;
                self.block(&block);
                self.n = 0;
            }
        }
    }

    fn block(&mut self, b: &[u8; 64]) {
        let mut w = [0u32; 80];
        for (i, c) in b.chunks_exact(4).enumerate() {
            w[i] = u32::from_be_bytes([c[0], c[1], c[2], c[3]]);
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        // Four rounds of twenty, each with its own function and constant
        // (no branch inside a round).
        let mut s = self.h;
        let step = |s: &mut [u32; 5], f: u32, k: u32, wi: u32| {
            let [a, b, c, d, e] = *s;
            let t = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(wi);
            *s = [t, a, b.rotate_left(30), c, d];
        };
        for &wi in &w[..20] {
            let [_, b, c, d, _] = s;
            step(&mut s, (b & c) | (!b & d), 0x5a82_7999, wi);
        }
        for &wi in &w[20..40] {
            let [_, b, c, d, _] = s;
            step(&mut s, b ^ c ^ d, 0x6ed9_eba1, wi);
        }
        for &wi in &w[40..60] {
            let [_, b, c, d, _] = s;
            step(&mut s, (b & c) | (b & d) | (c & d), 0x8f1b_bcdc, wi);
        }
        for &wi in &w[60..] {
            let [_, b, c, d, _] = s;
            step(&mut s, b ^ c ^ d, 0xca62_c1d6, wi);
        }
        for (h, v) in self.h.iter_mut().zip(s) {
            *h = h.wrapping_add(v);
        }
    }

    fn finish(mut self) -> [u8; 20] {
        let bits = self.len.wrapping_mul(8);
        // 0x80, zeros to 56 bytes into a block, the length in bits.
        let zeros = (64 + 55 - self.n) % 64;
        let mut pad = [0u8; 72];
        pad[0] = 0x80;
        pad[1 + zeros..9 + zeros].copy_from_slice(&bits.to_be_bytes());
        self.update(&pad[..9 + zeros]);
        debug_assert_eq!(self.n, 0);
        let mut out = [0u8; 20];
        for (o, h) in out.chunks_exact_mut(4).zip(self.h) {
            o.copy_from_slice(&h.to_be_bytes());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn sha1_and_base64_are_the_standard_ones() {
        let mut h = Sha1::new();
        h.update(b"abc");
        let d = h.finish();
        assert_eq!(base64(&d), "qZk+NkcGgWq6PiVxeFDCbJzQ2J0=");
        // FIPS 180-2's two-block example: the padding spills into a
        // second block.
        let mut h = Sha1::new();
        h.update(b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq");
        let hex: String = h.finish().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
        // A whole block exactly (64 bytes), and the empty message.
        let mut h = Sha1::new();
        h.update(&[b'a'; 64]);
        let hex: String = h.finish().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "0098ba824b5c16427bd7a1122a5a442a25ec644d");
        let hex: String = Sha1::new()
            .finish()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(hex, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
        let mut h = Sha1::new();
        h.update(&[b'a'; 1000]);
        let hex: String = h.finish().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "291e9a6c66994949b57ba5e650361e98fc36b1ba");
        assert_eq!(base64(b"ab"), "YWI=");
    }

    #[test]
    fn the_specs_published_vectors() {
        let (a, b) = (ip("1.2.3.4"), ip("5.6.7.8"));
        let v6a = ip("fe80:1:203:405:607:809:a0b:c0d");
        let v6b = ip("fe80:1011:1213:1415:1617:1819:1a1b:1c1d");
        for (seed, tcp, udp, icmp, icmp6) in [
            (
                0,
                "1:wCb3OG7yAFWelaUydu0D+125CLM=",
                "1:0Mu9InQx6z4ZiCZM/7HXi2WMhOg=",
                "1:crodRHL2FEsHjbv3UkRrfbs4bZ0=",
                "1:0bf7hyMJUwt3fMED7z8LIfRpBeo=",
            ),
            (
                1,
                "1:HhA1B+6CoLbiKPEs5nhNYN4XWfk=",
                "1:OShq+iKDAMVouh/4bMxB9Sz4amw=",
                "1:9pr4ZGTICiuZoIh90RRYE2RyXpU=",
                "1:IO27GQzPuCtNnwFvjWALMHu5tJE=",
            ),
        ] {
            assert_eq!(community_id(seed, a, b, 6, 1122, 3344), tcp);
            assert_eq!(community_id(seed, b, a, 6, 3344, 1122), tcp, "either way");
            assert_eq!(community_id(seed, a, b, 17, 1122, 3344), udp);
            // Echo request and its reply are one flow.
            assert_eq!(community_id(seed, a, b, 1, 8, 0), icmp);
            assert_eq!(community_id(seed, b, a, 1, 0, 0), icmp);
            assert_eq!(community_id(seed, v6a, v6b, 58, 128, 0), icmp6);
            assert_eq!(community_id(seed, v6b, v6a, 58, 129, 0), icmp6);
        }
        // A protocol without ports (RSVP).
        assert_eq!(
            community_id(0, a, b, 46, 0, 0),
            "1:ikv3kmf89luf73WPz1jOs49S768="
        );
    }
}
