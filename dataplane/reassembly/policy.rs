//! Target-based reassembly: which copy of overlapping TCP data the
//! receiving host keeps, as Suricata's `host-os-policy` models it, per host
//! prefix (`--stream-policy`), and what becomes of urgent data
//! (`--stream-urgent`, Suricata's `stream.reassembly.urgent.policy`).
//!
//! Overlaps with bytes already delivered in order keep the old bytes on
//! every stack (the host has handed them to the application). The policies
//! decide overlaps among segments still waiting out of order, by where the
//! new segment starts and ends against the one it overlaps, exactly as
//! Suricata's `DoHandleDataOverlap` does. Inline (IPS) the first copy always
//! wins and a differing copy is dropped, so the host only ever gets what
//! was inspected.

use std::net::IpAddr;

/// An operating system's reassembly policy (Suricata's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OsPolicy {
    First,
    Last,
    #[default]
    Linux,
    OldLinux,
    Bsd,
    BsdRight,
    Windows,
    Windows2k3,
    Vista,
    Solaris,
    OldSolaris,
    Hpux10,
    Hpux11,
    Irix,
    Macos,
}

impl OsPolicy {
    pub const ALL: [OsPolicy; 15] = [
        OsPolicy::First,
        OsPolicy::Last,
        OsPolicy::Linux,
        OsPolicy::OldLinux,
        OsPolicy::Bsd,
        OsPolicy::BsdRight,
        OsPolicy::Windows,
        OsPolicy::Windows2k3,
        OsPolicy::Vista,
        OsPolicy::Solaris,
        OsPolicy::OldSolaris,
        OsPolicy::Hpux10,
        OsPolicy::Hpux11,
        OsPolicy::Irix,
        OsPolicy::Macos,
    ];

    pub fn name(self) -> &'static str {
        match self {
            OsPolicy::First => "first",
            OsPolicy::Last => "last",
            OsPolicy::Linux => "linux",
            OsPolicy::OldLinux => "old-linux",
            OsPolicy::Bsd => "bsd",
            OsPolicy::BsdRight => "bsd-right",
            OsPolicy::Windows => "windows",
            OsPolicy::Windows2k3 => "windows2k3",
            OsPolicy::Vista => "vista",
            OsPolicy::Solaris => "solaris",
            OsPolicy::OldSolaris => "old-solaris",
            OsPolicy::Hpux10 => "hpux10",
            OsPolicy::Hpux11 => "hpux11",
            OsPolicy::Irix => "irix",
            OsPolicy::Macos => "macos",
        }
    }

    pub fn parse(s: &str) -> Option<OsPolicy> {
        OsPolicy::ALL.into_iter().find(|p| p.name() == s)
    }

    /// Whether a new segment `[new_start, new_end)` overwrites the bytes of
    /// a held one `[old_start, old_end)` it overlaps (and differs from).
    pub fn new_wins(self, new_start: u64, new_end: u64, old_start: u64, old_end: u64) -> bool {
        use OsPolicy::*;
        match self {
            Last => return true,
            First => return false,
            _ => {}
        }
        if new_start == old_start {
            if new_end < old_end {
                false
            } else if new_end > old_end {
                matches!(self, Linux | OldLinux | Solaris | Hpux11)
            } else {
                matches!(self, OldLinux | Solaris | Hpux11)
            }
        } else if new_start < old_start {
            (new_end >= old_end && matches!(self, Solaris | Hpux11))
                || matches!(
                    self,
                    Bsd | Hpux10 | Irix | Windows | Windows2k3 | OldLinux | Linux | Macos
                )
        } else {
            new_end > old_end && matches!(self, Solaris | Hpux11)
        }
    }
}

/// Host prefixes `--stream-policy` may name.
pub const MAX_HOST_POLICIES: usize = 64;

/// Reassembly policies by host: the longest prefix holding the receiver
/// wins, else the default. Fixed-size, so the worker configuration that
/// carries it stays `Copy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostPolicies {
    pub default: OsPolicy,
    /// (network, prefix length, policy), longest first; IPv4 networks as
    /// mapped IPv6.
    prefixes: [(u128, u8, OsPolicy); MAX_HOST_POLICIES],
    n: usize,
}

impl Default for HostPolicies {
    fn default() -> Self {
        HostPolicies {
            default: OsPolicy::default(),
            prefixes: [(0, 0, OsPolicy::default()); MAX_HOST_POLICIES],
            n: 0,
        }
    }
}

fn as_u128(a: IpAddr) -> (u128, u8) {
    match a {
        IpAddr::V4(v4) => (u128::from(v4.to_ipv6_mapped()), 96),
        IpAddr::V6(v6) => (u128::from(v6), 0),
    }
}

impl HostPolicies {
    /// Reads `--stream-policy` values: `POLICY` (the default) or
    /// `PREFIX=POLICY`, e.g. `10.20.0.0/16=windows`.
    pub fn parse(args: &[String]) -> Result<HostPolicies, String> {
        let mut out = HostPolicies::default();
        let names = || {
            OsPolicy::ALL
                .iter()
                .map(|p| p.name())
                .collect::<Vec<_>>()
                .join(", ")
        };
        for a in args {
            let (net, pol) = match a.split_once('=') {
                Some((n, p)) => (Some(n.trim()), p.trim()),
                None => (None, a.trim()),
            };
            let policy = OsPolicy::parse(pol)
                .ok_or_else(|| format!("`{pol}`: expected one of {}", names()))?;
            let Some(net) = net else {
                out.default = policy;
                continue;
            };
            let (addr, len) = net.split_once('/').unwrap_or((net, ""));
            let addr: IpAddr = addr
                .parse()
                .map_err(|_| format!("`{net}`: expected an address or prefix like 10.0.0.0/8"))?;
            let (bits, base) = as_u128(addr);
            let max = 128 - base;
            let len: u8 = if len.is_empty() {
                max
            } else {
                len.parse()
                    .ok()
                    .filter(|l| *l <= max)
                    .ok_or_else(|| format!("`{net}`: prefix length 0 to {max}"))?
            };
            let total = base + len;
            let mask = if total == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(total))
            };
            if out.n == MAX_HOST_POLICIES {
                return Err(format!("at most {MAX_HOST_POLICIES} host prefixes"));
            }
            out.prefixes[out.n] = (bits & mask, total, policy);
            out.n += 1;
        }
        // Longest first, so the first that holds the host is the one.
        out.prefixes[..out.n].sort_by_key(|p| std::cmp::Reverse(p.1));
        Ok(out)
    }

    /// The policy of the host at `addr`.
    pub fn for_host(&self, addr: IpAddr) -> OsPolicy {
        let (bits, _) = as_u128(addr);
        self.prefixes[..self.n]
            .iter()
            .find(|(net, len, _)| {
                let mask = if *len == 0 {
                    0
                } else {
                    u128::MAX << (128 - u32::from(*len))
                };
                bits & mask == *net
            })
            .map_or(self.default, |p| p.2)
    }
}

/// What becomes of TCP urgent data (the byte before the urgent pointer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UrgentPolicy {
    /// Part of the stream, as any byte.
    Inline,
    /// Taken out of the stream, as Linux does (the application reads it
    /// out of band, if at all).
    #[default]
    Oob,
    /// Taken out, and the stream restarts after it: no match spans it.
    Gap,
    /// Inline: the packet is dropped. Observing: as `oob`.
    Drop,
}

impl UrgentPolicy {
    pub fn parse(s: &str) -> Option<UrgentPolicy> {
        match s {
            "inline" => Some(UrgentPolicy::Inline),
            "oob" => Some(UrgentPolicy::Oob),
            "gap" => Some(UrgentPolicy::Gap),
            "drop" => Some(UrgentPolicy::Drop),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_decide_as_suricata_does() {
        use OsPolicy::*;
        // (new start, new end) against an old segment at [10, 20).
        let cases: [(u64, u64, &[OsPolicy]); 7] = [
            // Same start, ends beyond.
            (10, 25, &[Last, Linux, OldLinux, Solaris, Hpux11]),
            // Same start and end.
            (10, 20, &[Last, OldLinux, Solaris, Hpux11]),
            // Same start, ends inside.
            (10, 15, &[Last]),
            // Starts before, ends inside.
            (
                5,
                15,
                &[
                    Last, Bsd, Hpux10, Irix, Windows, Windows2k3, OldLinux, Linux, Macos,
                ],
            ),
            // Starts before, covers it all.
            (
                5,
                25,
                &[
                    Last, Bsd, Hpux10, Irix, Windows, Windows2k3, OldLinux, Linux, Macos, Solaris,
                    Hpux11,
                ],
            ),
            // Starts after, ends beyond.
            (15, 25, &[Last, Solaris, Hpux11]),
            // Starts after, ends inside.
            (12, 18, &[Last]),
        ];
        for (s, e, winners) in cases {
            for p in OsPolicy::ALL {
                assert_eq!(
                    p.new_wins(s, e, 10, 20),
                    winners.contains(&p),
                    "{} on [{s}, {e})",
                    p.name()
                );
            }
        }
    }

    #[test]
    fn hosts_take_their_longest_prefix() {
        let h = HostPolicies::parse(&[
            "10.0.0.0/8=windows".into(),
            "10.1.0.0/16=bsd".into(),
            "2001:db8::/32=macos".into(),
            "first".into(),
        ])
        .unwrap();
        assert_eq!(h.for_host("10.1.2.3".parse().unwrap()), OsPolicy::Bsd);
        assert_eq!(h.for_host("10.9.2.3".parse().unwrap()), OsPolicy::Windows);
        assert_eq!(h.for_host("192.0.2.1".parse().unwrap()), OsPolicy::First);
        assert_eq!(h.for_host("2001:db8::5".parse().unwrap()), OsPolicy::Macos);
        assert_eq!(
            HostPolicies::parse(&[])
                .unwrap()
                .for_host("10.0.0.1".parse().unwrap()),
            OsPolicy::Linux,
            "linux by default"
        );
        for bad in [
            "beos",
            "10.0.0.0/33=linux",
            "nonsense=linux",
            "10.0.0.0/8=qnx",
        ] {
            assert!(HostPolicies::parse(&[bad.into()]).is_err(), "{bad}");
        }
    }
}
