//! Rule variables (`$HOME_NET`, `$HTTP_PORTS` …): Suricata's default address
//! and port groups, overridden by `--set-var NAME=VALUE`, and the resolution
//! of a rule's address and port expressions into matchers. A list means its
//! positive members minus its negated ones (only negated members: anything
//! but them), as Suricata reads it. Undefined and self-referring variables
//! are errors that name the variable.

use super::{parse_addr, parse_ports, AddrExpr, PortExpr};
use std::collections::BTreeMap;
use std::net::IpAddr;

/// How deep variables may refer to variables.
const MAX_DEPTH: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vars {
    addr: BTreeMap<String, String>,
    ports: BTreeMap<String, String>,
}

impl Vars {
    /// The address-groups and port-groups of Suricata's default
    /// suricata.yaml.
    pub fn suricata_defaults() -> Self {
        let home = "[192.168.0.0/16,10.0.0.0/8,172.16.0.0/12]";
        let addr = [
            ("HOME_NET", home),
            ("EXTERNAL_NET", "!$HOME_NET"),
            ("HTTP_SERVERS", "$HOME_NET"),
            ("SMTP_SERVERS", "$HOME_NET"),
            ("SQL_SERVERS", "$HOME_NET"),
            ("DNS_SERVERS", "$HOME_NET"),
            ("TELNET_SERVERS", "$HOME_NET"),
            ("AIM_SERVERS", "$EXTERNAL_NET"),
            ("DC_SERVERS", "$HOME_NET"),
            ("DNP3_SERVER", "$HOME_NET"),
            ("DNP3_CLIENT", "$HOME_NET"),
            ("MODBUS_CLIENT", "$HOME_NET"),
            ("MODBUS_SERVER", "$HOME_NET"),
            ("ENIP_CLIENT", "$HOME_NET"),
            ("ENIP_SERVER", "$HOME_NET"),
        ];
        let ports = [
            ("HTTP_PORTS", "80"),
            ("SHELLCODE_PORTS", "!80"),
            ("ORACLE_PORTS", "1521"),
            ("SSH_PORTS", "22"),
            ("DNP3_PORTS", "20000"),
            ("MODBUS_PORTS", "502"),
            ("FILE_DATA_PORTS", "[$HTTP_PORTS,110,143]"),
            ("FTP_PORTS", "21"),
            ("GENEVE_PORTS", "6081"),
            ("VXLAN_PORTS", "4789"),
            ("TEREDO_PORTS", "3544"),
        ];
        Vars {
            addr: addr
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ports: ports
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    /// Sets `NAME=VALUE` (as `--set-var` gives it). A name already known as
    /// a port group, or ending in `_PORTS`, is a port group; any other is an
    /// address group. The value is checked now.
    pub fn set(&mut self, assignment: &str) -> Result<(), String> {
        let (name, value) = assignment
            .split_once('=')
            .map(|(n, v)| (n.trim().trim_start_matches('$'), v.trim()))
            .filter(|(n, v)| !n.is_empty() && !v.is_empty())
            .ok_or_else(|| format!("expected NAME=VALUE, got `{assignment}`"))?;
        if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("bad variable name `{name}`"));
        }
        if self.ports.contains_key(name) || name.ends_with("_PORTS") {
            parse_ports(value).map_err(|e| format!("{name}: {e}"))?;
            self.ports.insert(name.to_string(), value.to_string());
        } else {
            parse_addr(value).map_err(|e| format!("{name}: {e}"))?;
            self.addr.insert(name.to_string(), value.to_string());
        }
        Ok(())
    }

    /// Reads a vars file: one `NAME=VALUE` per line, or suricata.yaml's
    /// `NAME: "VALUE"` lines under `vars:` / `address-groups:` /
    /// `port-groups:` (those headers, blank lines and `#` comments are
    /// skipped). An error names the line.
    pub fn load_file_text(&mut self, text: &str) -> Result<(), String> {
        // A whole suricata.yaml (or any YAML with the groups under `vars`):
        // read as YAML, its address and port groups only.
        let key_value = text.lines().any(|l| {
            let l = l.split('#').next().unwrap_or("").trim();
            l.contains('=') && !l.contains(':')
        });
        if !key_value {
            if let Some(groups) = yaml_groups(text)? {
                for (name, value) in groups {
                    self.set(&format!("{name}={value}"))
                        .map_err(|e| format!("vars.{name}: {e}"))?;
                }
                return Ok(());
            }
        }
        for (i, line) in text.lines().enumerate() {
            let l = line.split('#').next().unwrap_or("").trim();
            if l.is_empty() || matches!(l, "vars:" | "address-groups:" | "port-groups:") {
                continue;
            }
            let assignment = match l.split_once('=') {
                Some(_) => l.to_string(),
                None => match l.split_once(':') {
                    Some((n, v)) => {
                        let v = v.trim();
                        let v = v
                            .strip_prefix('"')
                            .and_then(|x| x.strip_suffix('"'))
                            .or_else(|| v.strip_prefix('\'').and_then(|x| x.strip_suffix('\'')))
                            .unwrap_or(v);
                        format!("{n}={v}")
                    }
                    None => l.to_string(),
                },
            };
            self.set(&assignment)
                .map_err(|e| format!("line {}: {e}", i + 1))?;
        }
        Ok(())
    }

    pub fn addr_matcher(&self, e: &AddrExpr) -> Result<AddrMatch, String> {
        self.addr_at(e, 0)
    }

    pub fn port_matcher(&self, e: &PortExpr) -> Result<PortMatch, String> {
        self.port_at(e, 0)
    }

    fn addr_at(&self, e: &AddrExpr, depth: usize) -> Result<AddrMatch, String> {
        Ok(match e {
            AddrExpr::Any => AddrMatch::Any,
            AddrExpr::Net(ip, bits) => AddrMatch::Net(*ip, *bits),
            AddrExpr::Not(inner) => AddrMatch::Not(Box::new(self.addr_at(inner, depth)?)),
            AddrExpr::List(items) => AddrMatch::list(
                items
                    .iter()
                    .map(|i| self.addr_at(i, depth))
                    .collect::<Result<_, _>>()?,
            ),
            AddrExpr::Var(name) => {
                if depth >= MAX_DEPTH {
                    return Err(format!("variable ${name} refers to itself"));
                }
                let text = self
                    .addr
                    .get(name)
                    .ok_or_else(|| format!("undefined address variable ${name}"))?;
                let parsed = parse_addr(text).map_err(|e| format!("${name}: {e}"))?;
                self.addr_at(&parsed, depth + 1)?
            }
        })
    }

    fn port_at(&self, e: &PortExpr, depth: usize) -> Result<PortMatch, String> {
        Ok(match e {
            PortExpr::Any => PortMatch::Any,
            PortExpr::Range(lo, hi) => PortMatch::Range(*lo, *hi),
            PortExpr::Not(inner) => PortMatch::Not(Box::new(self.port_at(inner, depth)?)),
            PortExpr::List(items) => PortMatch::list(
                items
                    .iter()
                    .map(|i| self.port_at(i, depth))
                    .collect::<Result<_, _>>()?,
            ),
            PortExpr::Var(name) => {
                if depth >= MAX_DEPTH {
                    return Err(format!("variable ${name} refers to itself"));
                }
                let text = self
                    .ports
                    .get(name)
                    .ok_or_else(|| format!("undefined port variable ${name}"))?;
                let parsed = parse_ports(text).map_err(|e| format!("${name}: {e}"))?;
                self.port_at(&parsed, depth + 1)?
            }
        })
    }
}

/// A resolved address expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddrMatch {
    Any,
    Net(IpAddr, u8),
    Not(Box<AddrMatch>),
    /// Positive members minus negated ones; the plain networks of each
    /// side in a `NetSet` (reputation lists name hundreds), the rest as
    /// they are.
    List {
        pos: Vec<AddrMatch>,
        pos_nets: NetSet,
        neg: Vec<AddrMatch>,
        neg_nets: NetSet,
    },
}

/// Networks as sorted, merged ranges: membership by binary search, not by
/// walking the list.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NetSet {
    /// As written (for the address index).
    pub prefixes: Vec<(IpAddr, u8)>,
    v4: Vec<(u32, u32)>,
    v6: Vec<(u128, u128)>,
}

impl NetSet {
    pub(crate) fn new(prefixes: Vec<(IpAddr, u8)>) -> NetSet {
        fn merged<T: Ord + Copy>(mut r: Vec<(T, T)>, next: impl Fn(T) -> Option<T>) -> Vec<(T, T)> {
            r.sort_unstable();
            let mut out: Vec<(T, T)> = Vec::with_capacity(r.len());
            for (lo, hi) in r {
                match out.last_mut() {
                    Some(last) if next(last.1).is_none_or(|n| lo <= n) => last.1 = last.1.max(hi),
                    _ => out.push((lo, hi)),
                }
            }
            out
        }
        let (mut v4, mut v6) = (Vec::new(), Vec::new());
        for &(ip, bits) in &prefixes {
            match ip {
                // The host part's bits: all ones past the prefix.
                IpAddr::V4(a) => {
                    let span = u32::MAX.checked_shr(u32::from(bits)).unwrap_or(0);
                    let lo = u32::from(a) & !span;
                    v4.push((lo, lo | span));
                }
                IpAddr::V6(a) => {
                    let span = u128::MAX.checked_shr(u32::from(bits)).unwrap_or(0);
                    let lo = u128::from(a) & !span;
                    v6.push((lo, lo | span));
                }
            }
        }
        NetSet {
            prefixes,
            v4: merged(v4, |x: u32| x.checked_add(1)),
            v6: merged(v6, |x: u128| x.checked_add(1)),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.prefixes.is_empty()
    }

    /// The merged IPv4 ranges, sorted.
    pub fn v4_ranges(&self) -> &[(u32, u32)] {
        &self.v4
    }

    /// The merged IPv6 ranges, sorted.
    pub fn v6_ranges(&self) -> &[(u128, u128)] {
        &self.v6
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        fn within<T: Ord + Copy>(r: &[(T, T)], x: T) -> bool {
            let i = r.partition_point(|&(lo, _)| lo <= x);
            i > 0 && x <= r[i - 1].1
        }
        match ip {
            IpAddr::V4(a) => within(&self.v4, u32::from(a)),
            IpAddr::V6(a) => within(&self.v6, u128::from(a)),
        }
    }
}

impl AddrMatch {
    fn list(items: Vec<AddrMatch>) -> Self {
        let (neg, pos) = items
            .into_iter()
            .partition::<Vec<_>, _>(|m| matches!(m, AddrMatch::Not(_)));
        let neg = neg.into_iter().map(|m| match m {
            AddrMatch::Not(inner) => *inner,
            other => other,
        });
        let split = |items: Box<dyn Iterator<Item = AddrMatch>>| {
            let (mut nets, mut rest) = (Vec::new(), Vec::new());
            for m in items {
                match m {
                    AddrMatch::Net(ip, bits) => nets.push((ip, bits)),
                    other => rest.push(other),
                }
            }
            (rest, NetSet::new(nets))
        };
        let (pos, pos_nets) = split(Box::new(pos.into_iter()));
        let (neg, neg_nets) = split(Box::new(neg));
        AddrMatch::List {
            pos,
            pos_nets,
            neg,
            neg_nets,
        }
    }

    pub fn matches(&self, ip: IpAddr) -> bool {
        match self {
            AddrMatch::Any => true,
            AddrMatch::Net(net, bits) => in_net(ip, *net, *bits),
            AddrMatch::Not(inner) => !inner.matches(ip),
            AddrMatch::List {
                pos,
                pos_nets,
                neg,
                neg_nets,
            } => {
                let any_pos = (pos.is_empty() && pos_nets.is_empty())
                    || pos_nets.contains(ip)
                    || pos.iter().any(|m| m.matches(ip));
                any_pos && !neg_nets.contains(ip) && !neg.iter().any(|m| m.matches(ip))
            }
        }
    }
}

fn in_net(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(bits.min(32)))
            };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(bits.min(128)))
            };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// A resolved port expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortMatch {
    Any,
    Range(u16, u16),
    Not(Box<PortMatch>),
    List {
        pos: Vec<PortMatch>,
        neg: Vec<PortMatch>,
    },
}

impl PortMatch {
    fn list(items: Vec<PortMatch>) -> Self {
        let (neg, pos) = items
            .into_iter()
            .partition::<Vec<_>, _>(|m| matches!(m, PortMatch::Not(_)));
        let neg = neg
            .into_iter()
            .map(|m| match m {
                PortMatch::Not(inner) => *inner,
                other => other,
            })
            .collect();
        PortMatch::List { pos, neg }
    }

    pub fn matches(&self, port: u16) -> bool {
        match self {
            PortMatch::Any => true,
            PortMatch::Range(lo, hi) => (*lo..=*hi).contains(&port),
            PortMatch::Not(inner) => !inner.matches(port),
            PortMatch::List { pos, neg } => {
                (pos.is_empty() || pos.iter().any(|m| m.matches(port)))
                    && !neg.iter().any(|m| m.matches(port))
            }
        }
    }
}

/// The `address-groups` and `port-groups` of a YAML document (under
/// `vars:` as suricata.yaml has them, or at the top), as `(NAME, VALUE)`;
/// None when the text is YAML without them (the line reader takes it).
fn yaml_groups(text: &str) -> Result<Option<Vec<(String, String)>>, String> {
    use yaml_rust2::{Yaml, YamlLoader};
    let docs = YamlLoader::load_from_str(text).map_err(|e| format!("not valid YAML: {e}"))?;
    let Some(doc) = docs.first() else {
        return Ok(None);
    };
    let vars = if doc["vars"].is_badvalue() {
        doc
    } else {
        &doc["vars"]
    };
    let mut out = Vec::new();
    for group in ["address-groups", "port-groups"] {
        let Some(h) = vars[group].as_hash() else {
            continue;
        };
        for (k, v) in h {
            let name = match k {
                Yaml::String(s) => s.clone(),
                _ => return Err(format!("{group}: a group name that is not a string")),
            };
            let value = match v {
                Yaml::String(s) => s.clone(),
                Yaml::Integer(n) => n.to_string(),
                Yaml::Array(a) => {
                    let items: Vec<String> = a
                        .iter()
                        .map(|i| match i {
                            Yaml::String(s) => s.clone(),
                            Yaml::Integer(n) => n.to_string(),
                            _ => String::new(),
                        })
                        .collect();
                    format!("[{}]", items.join(","))
                }
                _ => return Err(format!("{group}.{name}: expected a string")),
            };
            out.push((name, value));
        }
    }
    Ok((!out.is_empty()).then_some(out))
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_list_of_networks_matches_as_walking_it_would() {
        // A pseudo-random reputation list: /32s, wider prefixes, some
        // overlapping or adjacent, IPv6 among them; and a negated part.
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut items = Vec::new();
        for _ in 0..400 {
            let r = next();
            let a = std::net::Ipv4Addr::from((r >> 8) as u32 & 0x0fff_ffff | 0x0a00_0000);
            let bits = [32u8, 32, 32, 24, 28, 30, 16][(r % 7) as usize];
            items.push(AddrMatch::Net(IpAddr::V4(a), bits));
        }
        items.push(AddrMatch::Net("2001:db8::".parse().unwrap(), 64));
        items.push(AddrMatch::Not(Box::new(AddrMatch::Net(
            "10.20.0.0".parse().unwrap(),
            16,
        ))));
        let naive = |ip: IpAddr| {
            items
                .iter()
                .any(|m| matches!(m, AddrMatch::Net(..)) && m.matches(ip))
                && !items
                    .iter()
                    .any(|m| matches!(m, AddrMatch::Not(_)) && !m.matches(ip))
        };
        let list = AddrMatch::list(items.clone());
        for _ in 0..20_000 {
            let r = next();
            let ip = IpAddr::V4(std::net::Ipv4Addr::from(
                (r >> 16) as u32 & 0x0fff_ffff | 0x0a00_0000,
            ));
            assert_eq!(list.matches(ip), naive(ip), "{ip}");
        }
        for (ip, want) in [
            ("2001:db8::5", true),
            ("2001:db9::5", false),
            ("0.0.0.0", false),
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(list.matches(ip), want, "{ip}");
        }
        // The ends of the address space.
        let all = AddrMatch::list(vec![AddrMatch::Net("0.0.0.0".parse().unwrap(), 0)]);
        assert!(all.matches("255.255.255.255".parse().unwrap()));
        assert!(!all.matches("::1".parse().unwrap()));
    }

    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_vars_file_in_either_form() {
        let mut v = Vars::suricata_defaults();
        v.load_file_text(
            "# tenant edge\nvars:\n  address-groups:\n    HOME_NET: \"[10.20.0.0/16]\"\n  port-groups:\n    LLM_PORTS: \"[8000,8443]\"\nGATEWAY=192.0.2.1\n",
        )
        .unwrap();
        let home = v.addr_matcher(&AddrExpr::Var("HOME_NET".into())).unwrap();
        assert!(home.matches(ip("10.20.3.4")) && !home.matches(ip("10.21.0.1")));
        let gw = v.addr_matcher(&AddrExpr::Var("GATEWAY".into())).unwrap();
        assert!(gw.matches(ip("192.0.2.1")));
        let ports = v.port_matcher(&PortExpr::Var("LLM_PORTS".into())).unwrap();
        assert!(ports.matches(8443) && !ports.matches(8444));
        let err = v
            .load_file_text("HOME_NET=[10.0.0.0/8]\nEXTERNAL_NET: [300.1.1.1]\n")
            .unwrap_err();
        assert!(err.starts_with("line 2: EXTERNAL_NET"), "{err}");
    }

    #[test]
    fn a_whole_suricata_yaml_gives_its_vars() {
        // The shape of Suricata's default suricata.yaml: a directive, a
        // document start, groups under vars, other sections around them.
        let yaml = "%YAML 1.1\n---\n\nvars:\n  # more specific is better\n  address-groups:\n    HOME_NET: \"[10.30.0.0/16,fd00::/8]\"\n    EXTERNAL_NET: \"!$HOME_NET\"\n    DNS_SERVERS: \"$HOME_NET\"\n  port-groups:\n    HTTP_PORTS: \"80\"\n    SSH_PORTS: 22\n    ORACLE_PORTS: 1521\n\ndefault-log-dir: /var/log/suricata/\noutputs:\n  - fast:\n      enabled: yes\n";
        let mut v = Vars::suricata_defaults();
        v.load_file_text(yaml).unwrap();
        let home = v.addr_matcher(&AddrExpr::Var("HOME_NET".into())).unwrap();
        assert!(home.matches(ip("10.30.1.1")) && home.matches(ip("fd00::1")));
        assert!(!home.matches(ip("10.1.1.1")));
        let ext = v
            .addr_matcher(&AddrExpr::Var("EXTERNAL_NET".into()))
            .unwrap();
        assert!(ext.matches(ip("10.1.1.1")) && !ext.matches(ip("10.30.1.1")));
        let ssh = v.port_matcher(&PortExpr::Var("SSH_PORTS".into())).unwrap();
        assert!(ssh.matches(22) && !ssh.matches(23));
        assert!(v
            .load_file_text("vars:\n  address-groups:\n    HOME_NET: [")
            .is_err());
    }

    #[test]
    fn default_groups_resolve_as_suricata_reads_them() {
        let v = Vars::suricata_defaults();
        let home = v.addr_matcher(&AddrExpr::Var("HOME_NET".into())).unwrap();
        let ext = v
            .addr_matcher(&AddrExpr::Var("EXTERNAL_NET".into()))
            .unwrap();
        for (a, inside) in [
            ("10.1.2.3", true),
            ("172.20.0.1", true),
            ("192.168.9.9", true),
            ("8.8.8.8", false),
            ("172.32.0.1", false),
        ] {
            assert_eq!(home.matches(ip(a)), inside, "{a}");
            assert_eq!(ext.matches(ip(a)), !inside, "{a}");
        }
        let aim = v
            .addr_matcher(&AddrExpr::Var("AIM_SERVERS".into()))
            .unwrap();
        assert!(
            aim.matches(ip("8.8.8.8")) && !aim.matches(ip("10.0.0.1")),
            "a variable of a variable"
        );
        let shell = v
            .port_matcher(&PortExpr::Var("SHELLCODE_PORTS".into()))
            .unwrap();
        assert!(!shell.matches(80) && shell.matches(81));
        let fd = v
            .port_matcher(&PortExpr::Var("FILE_DATA_PORTS".into()))
            .unwrap();
        assert!(fd.matches(80) && fd.matches(143) && !fd.matches(25));
    }

    #[test]
    fn lists_are_positives_minus_negations() {
        let v = Vars::suricata_defaults();
        let m = v
            .addr_matcher(&parse_addr("[10.0.0.0/8,!10.1.0.0/16]").unwrap())
            .unwrap();
        assert!(
            m.matches(ip("10.2.0.1")) && !m.matches(ip("10.1.5.5")) && !m.matches(ip("11.0.0.1"))
        );
        let only_neg = v
            .addr_matcher(&parse_addr("[!10.0.0.0/8,!192.168.0.0/16]").unwrap())
            .unwrap();
        assert!(only_neg.matches(ip("8.8.8.8")) && !only_neg.matches(ip("10.0.0.1")));
        let p = v
            .port_matcher(&parse_ports("[1024:,!8080]").unwrap())
            .unwrap();
        assert!(p.matches(5000) && !p.matches(8080) && !p.matches(80));
        let v6 = v
            .addr_matcher(&parse_addr("2001:db8::/32").unwrap())
            .unwrap();
        assert!(
            v6.matches(ip("2001:db8:1::5"))
                && !v6.matches(ip("2001:db9::1"))
                && !v6.matches(ip("10.0.0.1"))
        );
    }

    #[test]
    fn set_var_overrides_and_errors_name_the_variable() {
        let mut v = Vars::suricata_defaults();
        v.set("HOME_NET=[10.20.0.0/16]").unwrap();
        v.set("HTTP_PORTS=[80,8000,8080]").unwrap();
        let ext = v
            .addr_matcher(&AddrExpr::Var("EXTERNAL_NET".into()))
            .unwrap();
        assert!(ext.matches(ip("10.1.0.1")), "EXTERNAL_NET follows HOME_NET");
        assert!(v
            .port_matcher(&PortExpr::Var("HTTP_PORTS".into()))
            .unwrap()
            .matches(8000));
        assert!(v.set("HOME_NET").is_err());
        assert!(v
            .set("HOME_NET=[10.0.0.0/8")
            .unwrap_err()
            .contains("HOME_NET"));
        assert!(v.set("WEB_PORTS=eighty").is_err());
        let e = v.addr_matcher(&AddrExpr::Var("NOPE".into())).unwrap_err();
        assert!(e.contains("$NOPE"));
        v.set("A=$B").unwrap();
        v.set("B=$A").unwrap();
        assert!(v
            .addr_matcher(&AddrExpr::Var("A".into()))
            .unwrap_err()
            .contains("refers to itself"));
    }
}
