//! Header keywords: `itype`, `icode` (ICMP and ICMPv6 type and code),
//! `flags` (TCP flags) and `ip_proto`, read from the decoded packet with
//! Suricata's meanings. A keyword about ICMP never holds on a TCP packet,
//! and `flags` never holds on anything but TCP.

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

impl Cmp {
    pub fn parse(v: &str) -> Option<Cmp> {
        let v = v.trim();
        let num = |s: &str| s.trim().parse::<u32>().ok();
        if let Some((a, b)) = v.split_once("<>") {
            return Some(Cmp::Range(num(a)?, num(b)?));
        }
        for (p, f) in [
            ("<=", Cmp::Le as fn(u32) -> Cmp),
            (">=", Cmp::Ge),
            ("<", Cmp::Lt),
            (">", Cmp::Gt),
            ("!", Cmp::Ne),
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
            other => Err(format!("{other} is not a header keyword")),
        }
    }

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
        }
    }
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

    #[test]
    fn ip_proto_by_number_and_name() {
        let gre = view(47, 0, (0, 0));
        assert!(holds("ip_proto", "47", &gre) && holds("ip_proto", "gre", &gre));
        assert!(!holds("ip_proto", "!gre", &gre) && holds("ip_proto", "!6", &gre));
        assert!(holds("ip_proto", ">46", &gre) && !holds("ip_proto", "<47", &gre));
    }
}
