//! Header keywords: `itype`, `icode` (ICMP and ICMPv6 type and code),
//! `icmp_id`, `icmp_seq`, `flags`/`tcp.flags`, `seq`, `ack`, `window`,
//! `tcp.mss`, `ip_proto`, `ttl`, `tos`, `id`, `ipopts` and `vlan.id`, read
//! from the decoded packet and its header bytes with Suricata's meanings.
//! A keyword about a header the packet does not have never holds (ICMP
//! keywords on TCP, TCP ones on UDP, IPv4 ones on IPv6).

use super::PacketView;

/// A number compared as `N`, `<N`, `>N`, `<=N`, `>=N`, `A<>B` (exclusive)
/// or `!N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    Eq(u32),
    Ne(u32),
    Lt(u32),
    Gt(u32),
    Le(u32),
    Ge(u32),
    Range(u32, u32),
}

/// A number as Suricata writes them: decimal or `0x` hex.
fn number(s: &str) -> Option<u32> {
    let s = s.trim();
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u32::from_str_radix(h, 16).ok(),
        None => s.parse::<u32>().ok(),
    }
}

impl Cmp {
    /// `N`, `<N`, `>N`, `<=N`, `>=N`, `!N`, `!=N`, `A<>B` and `A-B`
    /// (both exclusive ranges, as Suricata's integer keywords read them).
    pub fn parse(v: &str) -> Option<Cmp> {
        let v = v.trim();
        let num = number;
        if let Some((a, b)) = v.split_once("<>") {
            return Some(Cmp::Range(num(a)?, num(b)?));
        }
        if let Some((a, b)) = v.split_once('-').filter(|(a, _)| !a.trim().is_empty()) {
            return Some(Cmp::Range(num(a)?, num(b)?));
        }
        for (p, f) in [
            ("<=", Cmp::Le as fn(u32) -> Cmp),
            (">=", Cmp::Ge),
            ("!=", Cmp::Ne),
            ("<", Cmp::Lt),
            (">", Cmp::Gt),
            ("!", Cmp::Ne),
            ("=", Cmp::Eq),
        ] {
            if let Some(r) = v.strip_prefix(p) {
                return num(r).map(f);
            }
        }
        num(v).map(Cmp::Eq)
    }

    pub fn holds(self, n: u32) -> bool {
        match self {
            Cmp::Eq(a) => n == a,
            Cmp::Ne(a) => n != a,
            Cmp::Lt(a) => n < a,
            Cmp::Gt(a) => n > a,
            Cmp::Le(a) => n <= a,
            Cmp::Ge(a) => n >= a,
            Cmp::Range(a, b) => n > a && n < b,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagsMode {
    /// Exactly these (after the ignored ones are cleared).
    Exact,
    /// `+`: these and maybe others.
    All,
    /// `*`: any of these.
    Any,
    /// `!`: not all of these.
    Not,
}

/// Which VLAN tags `vlan.id` looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VlanLayer {
    /// Any tag may match.
    Any,
    /// Every tag must.
    All,
    /// The tag at this index, outermost 0; negative counts from the last.
    At(i8),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderCheck {
    IType(Cmp),
    ICode(Cmp),
    Flags {
        mode: FlagsMode,
        flags: u8,
        ignore: u8,
    },
    IpProto(Cmp),
    Ttl(Cmp),
    /// IPv4 identification.
    IpId(Cmp),
    Tos {
        negated: bool,
        value: u8,
    },
    Seq(u32),
    Ack(u32),
    Window {
        negated: bool,
        value: u16,
    },
    /// The TCP MSS option (no option: no match).
    Mss(Cmp),
    IcmpId(u16),
    IcmpSeq(u16),
    /// An IPv4 option by its type (None: any option).
    IpOpt(Option<u8>),
    Vlan {
        id: Cmp,
        layer: VlanLayer,
    },
    /// `stream_size`: which streams, compared how.
    StreamSize {
        which: StreamSide,
        size: Cmp,
    },
}

/// The streams `stream_size` compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamSide {
    Client,
    Server,
    Both,
    Either,
}

/// The IPv4 options of an IPv4 header, by type: what `ipopts` finds.
fn ipv4_options(hdr: &[u8]) -> impl Iterator<Item = u8> + '_ {
    let mut opts = hdr.get(20..).unwrap_or(&[]);
    std::iter::from_fn(move || {
        let (&kind, rest) = opts.split_first()?;
        match kind {
            // End of list: seen, and nothing after it.
            0 => opts = &[],
            1 => opts = rest,
            _ => {
                let len = usize::from(*rest.first()?);
                if len < 2 || len > opts.len() {
                    opts = &[];
                } else {
                    opts = &opts[len..];
                }
            }
        }
        Some(kind)
    })
}

/// The TCP MSS option of a TCP header with options.
fn tcp_mss(hdr: &[u8]) -> Option<u16> {
    let mut opts = hdr.get(20..)?;
    while let Some((&kind, rest)) = opts.split_first() {
        match kind {
            0 => return None,
            1 => opts = rest,
            _ => {
                let len = usize::from(*rest.first()?);
                if len < 2 || len > opts.len() {
                    return None;
                }
                if kind == 2 && len == 4 {
                    return Some(u16::from_be_bytes([opts[2], opts[3]]));
                }
                opts = &opts[len..];
            }
        }
    }
    None
}

/// An ICMP header's identifier and sequence number, for the message types
/// that carry them (echo, timestamp, information, address mask; ICMPv6
/// echo).
fn icmp_id_seq(p: &PacketView<'_>) -> Option<(u16, u16)> {
    let (hdr, has) = if !p.headers.icmpv4.is_empty() {
        (
            p.headers.icmpv4,
            matches!(p.icmp_type, 0 | 8 | 13 | 14 | 15 | 16 | 17 | 18),
        )
    } else {
        (p.headers.icmpv6, matches!(p.icmp_type, 128 | 129))
    };
    if !has {
        return None;
    }
    let b = hdr.get(4..8)?;
    Some((
        u16::from_be_bytes([b[0], b[1]]),
        u16::from_be_bytes([b[2], b[3]]),
    ))
}

fn flag_bits(s: &str) -> Option<u8> {
    s.chars().try_fold(0u8, |acc, c| {
        let bit = match c.to_ascii_uppercase() {
            'F' => 0x01,
            'S' => 0x02,
            'R' => 0x04,
            'P' => 0x08,
            'A' => 0x10,
            'U' => 0x20,
            'E' | '2' => 0x40,
            'C' | '1' => 0x80,
            '0' => 0,
            _ => return None,
        };
        Some(acc | bit)
    })
}

impl HeaderCheck {
    pub fn parse(keyword: &str, v: &str) -> Result<HeaderCheck, String> {
        let bad = || format!("{keyword}: `{v}`");
        let v = v.trim();
        match keyword {
            "itype" => Cmp::parse(v).map(HeaderCheck::IType).ok_or_else(bad),
            "icode" => Cmp::parse(v).map(HeaderCheck::ICode).ok_or_else(bad),
            "ip_proto" => {
                let named = |n: &str| match n {
                    "tcp" => Some(6),
                    "udp" => Some(17),
                    "icmp" => Some(1),
                    "ipv6-icmp" => Some(58),
                    "gre" => Some(47),
                    "esp" => Some(50),
                    "ah" => Some(51),
                    "sctp" => Some(132),
                    _ => None,
                };
                let (neg, name) = v.strip_prefix('!').map_or((false, v), |r| (true, r));
                match named(name) {
                    Some(n) if neg => Ok(HeaderCheck::IpProto(Cmp::Ne(n))),
                    Some(n) => Ok(HeaderCheck::IpProto(Cmp::Eq(n))),
                    None => Cmp::parse(v).map(HeaderCheck::IpProto).ok_or_else(bad),
                }
            }
            "flags" => {
                let (set, ignore) = match v.split_once(',') {
                    Some((a, b)) => (a.trim(), flag_bits(b.trim()).ok_or_else(bad)?),
                    None => (v, 0),
                };
                let (mode, letters) = match set.chars().next() {
                    Some('+') => (FlagsMode::All, &set[1..]),
                    Some('*') => (FlagsMode::Any, &set[1..]),
                    Some('!') => (FlagsMode::Not, &set[1..]),
                    _ => (FlagsMode::Exact, set),
                };
                // Suricata also accepts the modifier after the letters.
                let (mode, letters) = match letters.chars().last() {
                    Some('+') => (FlagsMode::All, &letters[..letters.len() - 1]),
                    Some('*') => (FlagsMode::Any, &letters[..letters.len() - 1]),
                    _ => (mode, letters),
                };
                let flags = flag_bits(letters).filter(|_| !letters.is_empty());
                Ok(HeaderCheck::Flags {
                    mode,
                    flags: flags.ok_or_else(bad)?,
                    ignore,
                })
            }
            "tcp.flags" => HeaderCheck::parse("flags", v),
            "ttl" => Cmp::parse(v).map(HeaderCheck::Ttl).ok_or_else(bad),
            "id" => Cmp::parse(v).map(HeaderCheck::IpId).ok_or_else(bad),
            "tcp.mss" => Cmp::parse(v).map(HeaderCheck::Mss).ok_or_else(bad),
            "tos" | "window" => {
                let (negated, n) = v.strip_prefix('!').map_or((false, v), |r| (true, r));
                let n = number(n).ok_or_else(bad)?;
                if keyword == "tos" {
                    let value = u8::try_from(n).map_err(|_| bad())?;
                    Ok(HeaderCheck::Tos { negated, value })
                } else {
                    let value = u16::try_from(n).map_err(|_| bad())?;
                    Ok(HeaderCheck::Window { negated, value })
                }
            }
            "seq" => number(v).map(HeaderCheck::Seq).ok_or_else(bad),
            "ack" => number(v).map(HeaderCheck::Ack).ok_or_else(bad),
            "icmp_id" | "icmp_seq" => {
                let n = number(v)
                    .and_then(|n| u16::try_from(n).ok())
                    .ok_or_else(bad)?;
                Ok(if keyword == "icmp_id" {
                    HeaderCheck::IcmpId(n)
                } else {
                    HeaderCheck::IcmpSeq(n)
                })
            }
            "ipopts" => Ok(HeaderCheck::IpOpt(match v {
                "eol" => Some(0),
                "nop" => Some(1),
                "rr" => Some(7),
                "ts" => Some(68),
                "sec" => Some(130),
                "lsrr" => Some(131),
                "esec" => Some(133),
                "satid" => Some(136),
                "ssrr" => Some(137),
                "any" => None,
                _ => return Err(bad()),
            })),
            "vlan.id" => {
                let (id, layer) = match v.split_once(',') {
                    Some((id, l)) => (id, l.trim()),
                    None => (v, ""),
                };
                let layer = match layer {
                    "" => VlanLayer::Any,
                    "all" => VlanLayer::All,
                    n => VlanLayer::At(n.parse::<i8>().map_err(|_| bad())?),
                };
                let id = Cmp::parse(id).ok_or_else(bad)?;
                Ok(HeaderCheck::Vlan { id, layer })
            }
            "stream_size" => {
                let parts: Vec<&str> = v.split(',').map(str::trim).collect();
                let [which, op, n] = parts.as_slice() else {
                    return Err(bad());
                };
                let which = match *which {
                    "client" => StreamSide::Client,
                    "server" => StreamSide::Server,
                    "both" => StreamSide::Both,
                    "either" => StreamSide::Either,
                    _ => return Err(bad()),
                };
                let n: u32 = n.parse().map_err(|_| bad())?;
                let size = match *op {
                    "<" => Cmp::Lt(n),
                    "<=" => Cmp::Le(n),
                    "=" => Cmp::Eq(n),
                    "!=" => Cmp::Ne(n),
                    ">=" => Cmp::Ge(n),
                    ">" => Cmp::Gt(n),
                    _ => return Err(bad()),
                };
                Ok(HeaderCheck::StreamSize { which, size })
            }
            other => Err(format!("{other} is not a header keyword")),
        }
    }

    /// The keywords `parse` reads.
    pub const KEYWORDS: [&'static str; 17] = [
        "itype",
        "icode",
        "flags",
        "tcp.flags",
        "ip_proto",
        "ttl",
        "id",
        "tcp.mss",
        "tos",
        "window",
        "seq",
        "ack",
        "icmp_id",
        "icmp_seq",
        "ipopts",
        "vlan.id",
        "stream_size",
    ];

    pub fn holds(&self, p: &PacketView<'_>) -> bool {
        let icmp = matches!(p.proto, 1 | 58);
        match *self {
            HeaderCheck::IType(c) => icmp && c.holds(u32::from(p.icmp_type)),
            HeaderCheck::ICode(c) => icmp && c.holds(u32::from(p.icmp_code)),
            HeaderCheck::IpProto(c) => c.holds(u32::from(p.proto)),
            HeaderCheck::Flags {
                mode,
                flags,
                ignore,
            } => {
                if p.proto != 6 {
                    return false;
                }
                let f = p.tcp_flags & !ignore;
                match mode {
                    FlagsMode::Exact => f == flags,
                    FlagsMode::All => f & flags == flags,
                    FlagsMode::Any => f & flags != 0,
                    FlagsMode::Not => f & flags != flags,
                }
            }
            HeaderCheck::Ttl(c) => {
                let h = &p.headers;
                let ttl = if !h.ipv4.is_empty() {
                    h.ipv4.get(8)
                } else {
                    h.ipv6.get(7)
                };
                ttl.is_some_and(|&t| c.holds(u32::from(t)))
            }
            HeaderCheck::IpId(c) => p
                .headers
                .ipv4
                .get(4..6)
                .is_some_and(|b| c.holds(u32::from(u16::from_be_bytes([b[0], b[1]])))),
            HeaderCheck::Tos { negated, value } => p
                .headers
                .ipv4
                .get(1)
                .is_some_and(|&t| (t == value) != negated),
            HeaderCheck::Seq(n) => tcp_u32(p, 4) == Some(n),
            HeaderCheck::Ack(n) => tcp_u32(p, 8) == Some(n),
            HeaderCheck::Window { negated, value } => p
                .headers
                .tcp
                .get(14..16)
                .is_some_and(|b| (u16::from_be_bytes([b[0], b[1]]) == value) != negated),
            HeaderCheck::Mss(c) => tcp_mss(p.headers.tcp).is_some_and(|m| c.holds(u32::from(m))),
            HeaderCheck::IcmpId(n) => icmp_id_seq(p).is_some_and(|(id, _)| id == n),
            HeaderCheck::IcmpSeq(n) => icmp_id_seq(p).is_some_and(|(_, seq)| seq == n),
            HeaderCheck::IpOpt(kind) => {
                let mut opts = ipv4_options(p.headers.ipv4);
                match kind {
                    Some(k) => opts.any(|o| o == k),
                    None => opts.next().is_some(),
                }
            }
            HeaderCheck::StreamSize { which, size } => {
                let Some((client, server)) = p.stream_sizes.filter(|_| p.proto == 6) else {
                    return false;
                };
                match which {
                    StreamSide::Client => size.holds(client),
                    StreamSide::Server => size.holds(server),
                    StreamSide::Both => size.holds(client) && size.holds(server),
                    StreamSide::Either => size.holds(client) || size.holds(server),
                }
            }
            HeaderCheck::Vlan { id, layer } => {
                let tags = p.vlan;
                let ok = |t: &u16| id.holds(u32::from(*t));
                match layer {
                    VlanLayer::Any => tags.iter().any(ok),
                    VlanLayer::All => !tags.is_empty() && tags.iter().all(ok),
                    VlanLayer::At(i) => {
                        let at = if i < 0 {
                            tags.len().checked_sub(usize::from(i.unsigned_abs()))
                        } else {
                            Some(i as usize)
                        };
                        at.and_then(|i| tags.get(i)).is_some_and(ok)
                    }
                }
            }
        }
    }
}

/// A 32-bit field of the TCP header at `at`.
fn tcp_u32(p: &PacketView<'_>, at: usize) -> Option<u32> {
    let b = p.headers.tcp.get(at..at + 4)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(proto: u8, tcp_flags: u8, icmp: (u8, u8)) -> PacketView<'static> {
        PacketView {
            proto,
            src: "10.0.0.1".parse().unwrap(),
            dst: "10.0.0.2".parse().unwrap(),
            src_port: 0,
            dst_port: 0,
            to_server: true,
            established: false,
            tcp_flags,
            icmp_type: icmp.0,
            icmp_code: icmp.1,
            payload: b"",
            headers: Default::default(),
            vlan: &[],
            stream_sizes: None,
            app_proto: crate::applayer::AppProto::Unknown,
            events: 0,
        }
    }

    fn holds(kw: &str, v: &str, p: &PacketView<'_>) -> bool {
        HeaderCheck::parse(kw, v).unwrap().holds(p)
    }

    #[test]
    fn icmp_type_and_code() {
        let echo = view(1, 0, (8, 0));
        assert!(holds("itype", "8", &echo));
        assert!(!holds("itype", "9", &echo), "one off");
        assert!(holds("itype", ">7", &echo) && !holds("itype", ">8", &echo));
        assert!(holds("itype", "7<>9", &echo) && !holds("itype", "8<>9", &echo));
        assert!(holds("icode", "0", &echo) && !holds("icode", "!0", &echo));
        assert!(!holds("itype", "8", &view(6, 0, (8, 0))), "not on TCP");
        assert!(holds("itype", "128", &view(58, 0, (128, 0))), "ICMPv6");
    }

    #[test]
    fn tcp_flags_with_modifiers_and_ignore() {
        let syn = view(6, 0x02, (0, 0));
        let synack = view(6, 0x12, (0, 0));
        let syn_ecn = view(6, 0xc2, (0, 0));
        assert!(holds("flags", "S", &syn) && !holds("flags", "S", &synack));
        assert!(holds("flags", "S,12", &syn_ecn) && !holds("flags", "S", &syn_ecn));
        assert!(holds("flags", "+S", &synack) && holds("flags", "SA+", &synack));
        assert!(holds("flags", "*AF", &synack) && !holds("flags", "*FR", &synack));
        assert!(holds("flags", "!A", &syn) && !holds("flags", "!A", &synack));
        assert!(holds("flags", "0", &view(6, 0, (0, 0))), "null scan");
        assert!(!holds("flags", "S", &view(17, 0x02, (0, 0))), "not on UDP");
        assert!(HeaderCheck::parse("flags", "SX").is_err());
    }

    /// An Ethernet/IPv4 (with a Record Route option)/TCP (with MSS 1400)
    /// SYN, and an ICMP echo request, both under two VLAN tags.
    fn frames() -> (Vec<u8>, Vec<u8>) {
        let eth = |et: [u8; 2]| {
            let mut f = vec![0u8; 12];
            f.extend_from_slice(&[0x81, 0, 0, 100, 0x81, 0, 0, 200]);
            f.extend_from_slice(&et);
            f
        };
        let mut tcp = eth([0x08, 0]);
        // IPv4, IHL 6 (one options word): tos 0x10, id 0x1234, ttl 33.
        tcp.extend_from_slice(&[0x46, 0x10, 0, 48, 0x12, 0x34, 0, 0, 33, 6, 0, 0]);
        tcp.extend_from_slice(&[10, 0, 0, 1, 10, 0, 0, 2]);
        tcp.extend_from_slice(&[7, 3, 4, 0]); // RR, then EOL
                                              // TCP, data offset 6: seq 1000, ack 0, SYN, window 512, MSS 1400.
        tcp.extend_from_slice(&[0x9c, 0x40, 0, 80, 0, 0, 0x03, 0xe8, 0, 0, 0, 0]);
        tcp.extend_from_slice(&[0x60, 0x02, 0x02, 0x00, 0, 0, 0, 0, 2, 4, 0x05, 0x78]);
        let mut icmp = eth([0x08, 0]);
        icmp.extend_from_slice(&[0x45, 0, 0, 28, 0, 1, 0, 0, 64, 1, 0, 0]);
        icmp.extend_from_slice(&[10, 0, 0, 1, 10, 0, 0, 2]);
        icmp.extend_from_slice(&[8, 0, 0, 0, 0x00, 0x2a, 0x00, 0x07]);
        (tcp, icmp)
    }

    fn real_view<'a>(frame: &'a [u8], d: &'a crate::decode::Decoded) -> PacketView<'a> {
        PacketView {
            headers: crate::decode::HeaderBytes::of(frame, d),
            vlan: &d.vlan[..usize::from(d.vlan_count)],
            tcp_flags: d.tcp.flags,
            icmp_type: d.icmp_type,
            icmp_code: d.icmp_code,
            ..view(d.proto, 0, (0, 0))
        }
    }

    #[test]
    fn ip_and_tcp_header_fields() {
        let (tcp, icmp) = frames();
        let d = crate::decode::decode(&tcp).unwrap();
        let p = real_view(&tcp, &d);
        assert!(holds("ttl", "33", &p) && holds("ttl", "<34", &p) && !holds("ttl", ">33", &p));
        assert!(holds("id", "4660", &p) && holds("tos", "0x10", &p) && holds("tos", "!0", &p));
        assert!(holds("seq", "1000", &p) && holds("ack", "0", &p) && !holds("seq", "999", &p));
        assert!(holds("window", "512", &p) && holds("window", "!513", &p));
        assert!(holds("tcp.mss", "1400", &p) && holds("tcp.mss", ">=1400", &p));
        assert!(!holds("tcp.mss", "<536", &p));
        assert!(holds("tcp.flags", "S", &p));
        assert!(
            holds("ipopts", "rr", &p) && holds("ipopts", "eol", &p) && holds("ipopts", "any", &p)
        );
        assert!(!holds("ipopts", "ts", &p));
        let d2 = crate::decode::decode(&icmp).unwrap();
        let q = real_view(&icmp, &d2);
        assert!(!holds("ipopts", "any", &q), "no options");
        assert!(holds("icmp_id", "42", &q) && holds("icmp_seq", "7", &q));
        assert!(!holds("icmp_id", "42", &p), "not on TCP");
        assert!(!holds("tcp.mss", ">0", &q), "not on ICMP");
    }

    #[test]
    fn vlan_ids_by_layer() {
        let (tcp, _) = frames();
        let d = crate::decode::decode(&tcp).unwrap();
        let p = real_view(&tcp, &d);
        assert!(holds("vlan.id", "200", &p) && holds("vlan.id", "100,0", &p));
        assert!(holds("vlan.id", "200,-1", &p) && !holds("vlan.id", "200,0", &p));
        assert!(holds("vlan.id", "0xC8,1", &p) && holds("vlan.id", "!300,all", &p));
        assert!(!holds("vlan.id", "!200,all", &p) && holds("vlan.id", "99-101,0", &p));
        assert!(!holds("vlan.id", "100,2", &p), "no third tag");
        let untagged = view(6, 0, (0, 0));
        assert!(!holds("vlan.id", "!5", &untagged), "no tag, no match");
    }

    #[test]
    fn ip_proto_by_number_and_name() {
        let gre = view(47, 0, (0, 0));
        assert!(holds("ip_proto", "47", &gre) && holds("ip_proto", "gre", &gre));
        assert!(!holds("ip_proto", "!gre", &gre) && holds("ip_proto", "!6", &gre));
        assert!(holds("ip_proto", ">46", &gre) && !holds("ip_proto", "<47", &gre));
    }
}
