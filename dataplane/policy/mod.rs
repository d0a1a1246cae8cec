//! Zero-trust segmentation between tenants: zones and a default-deny policy
//! between them (`--policy FILE`, `tollgate policy check FILE`).
//!
//! A policy file names **zones** and what places a flow's endpoint in one:
//! VLAN ids or ranges (the innermost tag unless the zone says
//! `vlan-outer`), VXLAN VNIs, and IPv4/IPv6 prefixes, alone or combined (a
//! tenant is VNI 5001 *and* 10.8.0.0/16). The segment (VLAN, VNI) is the
//! flow's; the address is the endpoint's own:
//! - the **initiator** (the SYN's sender, or the first packet's for UDP) is
//!   in a zone when every selector of the zone matches;
//! - the **responder** is named by its address first: a zone with a prefix
//!   holding it takes it whatever segment the flow is on (tenant B's
//!   service is tenant B's when tenant A's traffic on VNI 5001 reaches
//!   it; storage is storage when a VLAN-100 host reaches it); only when no
//!   zone's prefix holds it do zones without prefixes take it by segment.
//!
//! When several zones match, the most specific wins: more selectors beat
//! fewer, then a VNI beats a VLAN beats a prefix, then the longest prefix.
//! Two zones equally specific for the same traffic are refused at load.
//! What no zone takes is in `default-zone`.
//!
//! **Rules** (`allow` / `deny`, first match in file order) name a zone
//! pair by direction (`A -> B`, or `A <-> B` for both), optionally a
//! protocol and the responder's ports. Without a matching rule, a flow is
//! allowed within a zone and denied between two. A TCP flow first seen
//! without its SYN has no known initiator: it must be allowed both ways,
//! so a forged SYN-ACK cannot open what a one-way deny closes.

pub mod enforce;
pub mod yaml;

use crate::applayer::AppProto;
use std::net::IpAddr;
use std::path::Path;
use yaml::{Node, Value};

/// A zone's number in its policy.
pub type ZoneId = u16;

/// An address prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prefix {
    /// The network, IPv4 as IPv4-mapped IPv6.
    net: u128,
    /// Bits, counted in the 128-bit form.
    len: u8,
    v4: bool,
}

impl Prefix {
    pub fn parse(s: &str) -> Result<Prefix, String> {
        let (addr, len) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let ip: IpAddr = addr
            .parse()
            .map_err(|_| format!("`{s}`: not an address prefix (10.8.0.0/16, fd00::/48)"))?;
        let (max, v4) = match ip {
            IpAddr::V4(_) => (32u8, true),
            IpAddr::V6(_) => (128u8, false),
        };
        let len = match len {
            None => max,
            Some(l) => l
                .parse::<u8>()
                .ok()
                .filter(|&l| l <= max)
                .ok_or_else(|| format!("`{s}`: prefix length `{l}` is not 0-{max}"))?,
        };
        let full = u128::from(to_v6(ip));
        let len128 = if v4 { len + 96 } else { len };
        let net = full & mask(len128);
        if net != full {
            return Err(format!(
                "`{s}`: host bits set (the network is {}/{len})",
                show(net, v4)
            ));
        }
        Ok(Prefix {
            net,
            len: len128,
            v4,
        })
    }

    pub fn contains(&self, a: IpAddr) -> bool {
        matches!(a, IpAddr::V4(_)) == self.v4 && u128::from(to_v6(a)) & mask(self.len) == self.net
    }

    /// Its own length (32 at most for IPv4).
    pub fn bits(&self) -> u8 {
        if self.v4 {
            self.len - 96
        } else {
            self.len
        }
    }

    /// Whether `o` is inside this one (or equal).
    fn covers(&self, o: &Prefix) -> bool {
        self.v4 == o.v4 && self.len <= o.len && o.net & mask(self.len) == self.net
    }
}

impl std::fmt::Display for Prefix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", show(self.net, self.v4), self.bits())
    }
}

fn mask(len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(len))
    }
}

fn to_v6(a: IpAddr) -> std::net::Ipv6Addr {
    match a {
        IpAddr::V4(v) => v.to_ipv6_mapped(),
        IpAddr::V6(v) => v,
    }
}

fn show(net: u128, v4: bool) -> String {
    let v6 = std::net::Ipv6Addr::from(net);
    match (v4, v6.to_ipv4_mapped()) {
        (true, Some(v)) => v.to_string(),
        _ => v6.to_string(),
    }
}

/// An inclusive range of numbers (VLAN ids, VNIs, ports).
pub type Range = (u32, u32);

fn parse_range(s: &str, max: u32, what: &str) -> Result<Range, String> {
    let num = |x: &str| {
        x.trim()
            .parse::<u32>()
            .ok()
            .filter(|&n| n <= max)
            .ok_or_else(|| format!("`{s}`: expected a {what} (0-{max}) or a range A-B"))
    };
    let (a, b) = match s.split_once('-') {
        Some((a, b)) => (num(a)?, num(b)?),
        None => {
            let n = num(s)?;
            (n, n)
        }
    };
    if a > b {
        return Err(format!("`{s}`: the range is empty ({a} > {b})"));
    }
    Ok((a, b))
}

fn overlaps(a: &[Range], b: &[Range]) -> bool {
    a.iter().any(|x| b.iter().any(|y| x.0 <= y.1 && y.0 <= x.1))
}

fn within(r: &[Range], n: u32) -> bool {
    r.iter().any(|&(a, b)| a <= n && n <= b)
}

/// A zone and what places an endpoint in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zone {
    pub name: String,
    /// Where it is defined.
    pub line: usize,
    pub vni: Vec<Range>,
    pub vlan: Vec<Range>,
    /// `vlan` names the outer (service) tag of a stacked pair.
    pub vlan_outer: bool,
    pub prefixes: Vec<Prefix>,
}

impl Zone {
    fn selectors(&self) -> u8 {
        u8::from(!self.vni.is_empty())
            + u8::from(!self.vlan.is_empty())
            + u8::from(!self.prefixes.is_empty())
    }

    /// The strongest kind it selects by: VNI 3, VLAN 2, prefix 1.
    fn strongest(&self) -> u8 {
        if !self.vni.is_empty() {
            3
        } else if !self.vlan.is_empty() {
            2
        } else {
            u8::from(!self.prefixes.is_empty())
        }
    }

    fn segment_matches(&self, seg: &Segment) -> bool {
        let vni_ok = self.vni.is_empty() || seg.vni.is_some_and(|v| within(&self.vni, v));
        let tag = if self.vlan_outer {
            seg.vlan_outer
        } else {
            seg.vlan_inner
        };
        let vlan_ok = self.vlan.is_empty() || tag.is_some_and(|v| within(&self.vlan, u32::from(v)));
        vni_ok && vlan_ok
    }

    /// The longest of its prefixes holding `a` (0 bits when it has none).
    #[cfg(test)]
    fn prefix_match(&self, a: IpAddr) -> Option<u8> {
        if self.prefixes.is_empty() {
            return Some(0);
        }
        self.prefixes
            .iter()
            .filter(|p| p.contains(a))
            .map(Prefix::bits)
            .max()
    }

    fn describe(&self) -> String {
        let mut parts = Vec::new();
        let ranges = |r: &[Range]| {
            r.iter()
                .map(|&(a, b)| {
                    if a == b {
                        a.to_string()
                    } else {
                        format!("{a}-{b}")
                    }
                })
                .collect::<Vec<_>>()
                .join(",")
        };
        if !self.vni.is_empty() {
            parts.push(format!("vni {}", ranges(&self.vni)));
        }
        if !self.vlan.is_empty() {
            let which = if self.vlan_outer {
                "outer vlan"
            } else {
                "vlan"
            };
            parts.push(format!("{which} {}", ranges(&self.vlan)));
        }
        if !self.prefixes.is_empty() {
            let p: Vec<String> = self.prefixes.iter().map(|p| p.to_string()).collect();
            parts.push(format!("prefix {}", p.join(",")));
        }
        if parts.is_empty() {
            "what no other zone takes".into()
        } else {
            parts.join(" and ")
        }
    }
}

/// The segment a flow is on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Segment {
    pub vni: Option<u32>,
    /// The innermost (customer) VLAN tag, and the outer one of a stacked
    /// pair.
    pub vlan_inner: Option<u16>,
    pub vlan_outer: Option<u16>,
}

impl Segment {
    /// From a flow's tags, outermost first.
    pub fn of(vni: Option<u32>, vlans: &[u16]) -> Segment {
        Segment {
            vni,
            vlan_inner: vlans.last().copied(),
            vlan_outer: if vlans.len() > 1 {
                vlans.first().copied()
            } else {
                None
            },
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Allow,
    Deny,
}

/// A zone in a rule: a named one, or `any`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZoneSel {
    Any,
    Zone(ZoneId),
}

impl ZoneSel {
    fn matches(self, z: ZoneId) -> bool {
        match self {
            ZoneSel::Any => true,
            ZoneSel::Zone(x) => x == z,
        }
    }

    /// Everything `o` takes, this takes too.
    fn covers(self, o: ZoneSel) -> bool {
        self == ZoneSel::Any || self == o
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub line: usize,
    pub action: Action,
    pub from: ZoneSel,
    pub to: ZoneSel,
    /// `<->`: the rule holds both ways.
    pub both: bool,
    /// IP protocol number; None: any.
    pub proto: Option<u8>,
    /// The responder's ports; empty: any.
    pub ports: Vec<Range>,
    /// The flow's application protocol, as the app layer finds it.
    pub app: Option<AppProto>,
}

impl Rule {
    fn matches_one_way(&self, from: ZoneId, to: ZoneId, proto: u8, port: u16) -> bool {
        self.from.matches(from)
            && self.to.matches(to)
            && self.proto.is_none_or(|p| p == proto)
            && (self.ports.is_empty() || within(&self.ports, u32::from(port)))
    }

    fn matches(&self, from: ZoneId, to: ZoneId, proto: u8, port: u16) -> bool {
        self.matches_one_way(from, to, proto, port)
            || (self.both && self.matches_one_way(to, from, proto, port))
    }

    /// Every flow `o` matches, this one matches too.
    fn shadows(&self, o: &Rule) -> bool {
        let dirs_ok = if o.both {
            self.both && self.from.covers(o.from) && self.to.covers(o.to)
        } else {
            (self.from.covers(o.from) && self.to.covers(o.to))
                || (self.both && self.from.covers(o.to) && self.to.covers(o.from))
        };
        let proto_ok = (self.proto.is_none() || self.proto == o.proto)
            && (self.app.is_none() || self.app == o.app);
        let ports_ok = self.ports.is_empty()
            || (!o.ports.is_empty()
                && o.ports
                    .iter()
                    .all(|&(a, b)| self.ports.iter().any(|&(x, y)| x <= a && b <= y)));
        dirs_ok && proto_ok && ports_ok
    }
}

/// What a policy decided for a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allow: bool,
    /// The rule that decided (its index), or None: the default.
    pub rule: Option<usize>,
    /// A rule naming an application protocol may decide once the app
    /// layer knows the flow's: allowed until then.
    pub pending: bool,
}

/// What non-IP traffic meets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonIp {
    Pass,
    Drop,
}

/// A loaded policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Where it came from (errors and EVE name it).
    pub file: String,
    pub zones: Vec<Zone>,
    pub default_zone: ZoneId,
    pub non_ip: NonIp,
    pub rules: Vec<Rule>,
    /// Per initiator zone, the rules that can match a flow from it, in
    /// file order: a new flow is judged through these, not every rule.
    by_from: Vec<Vec<u32>>,
    /// Where zones are looked for, most specific first.
    index: Vec<Probe>,
    /// Some rule names an application protocol.
    has_app: bool,
}

/// One step of a zone lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Probe {
    /// Zones with a prefix of this length (the 128-bit form) and the same
    /// specificity, by network.
    Prefixes {
        len: u8,
        v4: bool,
        by_net: std::collections::HashMap<u128, Vec<ZoneId>>,
    },
    /// A zone with no prefix, taken by its segment.
    Segment(ZoneId),
}

/// The probes for `zones`, most specific first: more selectors, then the
/// strongest kind, then the longest prefix.
fn build_index(zones: &[Zone]) -> Vec<Probe> {
    use std::cmp::Reverse;
    use std::collections::BTreeMap;
    // (specificity most first, family, zone for a segment probe) -> probe
    type Key = (Reverse<(u8, u8, u8)>, bool, usize);
    let mut groups: BTreeMap<Key, Probe> = BTreeMap::new();
    for (i, z) in zones.iter().enumerate() {
        if z.selectors() == 0 {
            continue;
        }
        let id = i as ZoneId;
        if z.prefixes.is_empty() {
            groups.insert(
                (Reverse((z.selectors(), z.strongest(), 0)), false, i),
                Probe::Segment(id),
            );
            continue;
        }
        for p in &z.prefixes {
            let key = (
                Reverse((z.selectors(), z.strongest(), p.bits())),
                p.v4,
                usize::MAX,
            );
            let probe = groups.entry(key).or_insert_with(|| Probe::Prefixes {
                len: p.len,
                v4: p.v4,
                by_net: Default::default(),
            });
            if let Probe::Prefixes { by_net, .. } = probe {
                let zs = by_net.entry(p.net).or_default();
                if !zs.contains(&id) {
                    zs.push(id);
                }
            }
        }
    }
    groups.into_values().collect()
}

const TOP_KEYS: &str = "default-zone, non-ip, zones, rules";
const ZONE_KEYS: &str = "vni, vlan, vlan-outer, prefix";
const RULE_KEYS: &str = "allow or deny, proto, ports, app";

impl Policy {
    pub fn load(path: &Path) -> Result<Policy, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("{}: cannot read the policy: {e}", path.display()))?;
        Policy::parse(&text, &path.display().to_string())
    }

    /// Parses and checks a policy; errors name `file:line` and what was
    /// expected.
    pub fn parse(text: &str, file: &str) -> Result<Policy, String> {
        let at = |line: usize, msg: String| format!("{file}:{line}: {msg}");
        let root = yaml::parse(text).map_err(|e| format!("{file}: {e}"))?;
        let Value::Map(top) = &root.value else {
            return Err(at(
                root.line,
                format!("expected a map with keys {TOP_KEYS}"),
            ));
        };
        let mut default_zone = "default".to_string();
        let mut non_ip = NonIp::Pass;
        let mut zones_node = None;
        let mut rules_node = None;
        for (k, line, v) in top {
            match k.as_str() {
                "default-zone" => default_zone = v.scalar().map_err(|e| at(*line, e))?.into(),
                "non-ip" => {
                    non_ip = match v.scalar().map_err(|e| at(*line, e))? {
                        "pass" => NonIp::Pass,
                        "drop" => NonIp::Drop,
                        o => {
                            return Err(at(v.line, format!("non-ip `{o}`: expected pass or drop")))
                        }
                    }
                }
                "zones" => zones_node = Some(v),
                "rules" => rules_node = Some(v),
                o => return Err(at(*line, format!("unknown key `{o}`: expected {TOP_KEYS}"))),
            }
        }
        let mut zones: Vec<Zone> = Vec::new();
        if let Some(z) = zones_node {
            let entries = match &z.value {
                Value::Map(m) => m.as_slice(),
                Value::Null => &[],
                _ => return Err(at(z.line, "zones: expected a map of zone names".into())),
            };
            for (name, line, def) in entries {
                if name == "any" {
                    return Err(at(
                        *line,
                        "`any` is no zone name: rules use it for every zone".into(),
                    ));
                }
                zones.push(parse_zone(name, *line, def).map_err(|(l, e)| at(l, e))?);
            }
        }
        let default_id = match zones.iter().position(|z| z.name == default_zone) {
            Some(i) if zones[i].selectors() == 0 => i,
            Some(i) => {
                return Err(at(
                    zones[i].line,
                    format!("`{default_zone}` is the default zone: it takes what no zone takes, so it has no selectors"),
                ))
            }
            None => {
                zones.push(Zone {
                    name: default_zone.clone(),
                    line: 0,
                    vni: Vec::new(),
                    vlan: Vec::new(),
                    vlan_outer: false,
                    prefixes: Vec::new(),
                });
                zones.len() - 1
            }
        };
        if let Some(z) = zones
            .iter()
            .find(|z| z.selectors() == 0 && z.name != default_zone)
        {
            return Err(at(
                z.line,
                format!(
                    "zone `{}` has no selectors: expected some of {ZONE_KEYS}",
                    z.name
                ),
            ));
        }
        if zones.len() > usize::from(u16::MAX) {
            return Err(format!("{file}: more than 65,535 zones"));
        }
        // Two zones equally specific for the same traffic.
        for (i, a) in zones.iter().enumerate() {
            for b in &zones[i + 1..] {
                if let Some(why) = ambiguous(a, b) {
                    return Err(at(
                        b.line,
                        format!(
                            "zone `{}` and zone `{}` (line {}) are equally specific for {why}: \
                             make one more specific or merge them",
                            b.name, a.name, a.line
                        ),
                    ));
                }
            }
        }
        let mut rules = Vec::new();
        if let Some(r) = rules_node {
            let items = match &r.value {
                Value::Seq(s) => s.as_slice(),
                Value::Null => &[],
                _ => return Err(at(r.line, "rules: expected a list".into())),
            };
            for item in items {
                rules.push(parse_rule(item, &zones).map_err(|(l, e)| at(l, e))?);
            }
        }
        let index = build_index(&zones);
        let has_app = rules.iter().any(|r: &Rule| r.app.is_some());
        let by_from = (0..zones.len())
            .map(|z| {
                let z = z as ZoneId;
                (0..rules.len() as u32)
                    .filter(|&i| {
                        let r: &Rule = &rules[i as usize];
                        r.from.matches(z) || (r.both && r.to.matches(z))
                    })
                    .collect()
            })
            .collect();
        Ok(Policy {
            file: file.to_string(),
            zones,
            default_zone: default_id as ZoneId,
            non_ip,
            rules,
            by_from,
            index,
            has_app,
        })
    }

    /// The zone of an endpoint at `addr` on segment `seg`; `responder`:
    /// the side the flow goes to (see the module's text).
    pub fn zone_of(&self, seg: &Segment, addr: IpAddr, responder: bool) -> ZoneId {
        let (a, v4) = (u128::from(to_v6(addr)), addr.is_ipv4());
        let seg_ok = |z: &ZoneId| self.zones[usize::from(*z)].segment_matches(seg);
        fn hit(p: &Probe, a: u128, v4: bool) -> Option<&[ZoneId]> {
            match p {
                Probe::Prefixes {
                    len,
                    v4: pv4,
                    by_net,
                } if *pv4 == v4 => by_net.get(&(a & mask(*len))).map(Vec::as_slice),
                _ => None,
            }
        }
        if responder {
            // Named by its address first, whatever the segment.
            for p in &self.index {
                if let Some(zs) = hit(p, a, v4) {
                    return zs
                        .iter()
                        .find(|z| seg_ok(z))
                        .or(zs.first())
                        .copied()
                        .unwrap_or(self.default_zone);
                }
            }
            for p in &self.index {
                if let Probe::Segment(z) = p {
                    if seg_ok(z) {
                        return *z;
                    }
                }
            }
            return self.default_zone;
        }
        for p in &self.index {
            let found = match p {
                Probe::Segment(z) => seg_ok(z).then_some(*z),
                p => hit(p, a, v4).and_then(|zs| zs.iter().copied().find(|z| seg_ok(z))),
            };
            if let Some(z) = found {
                return z;
            }
        }
        self.default_zone
    }

    /// `zone_of` the plain way, every zone looked at: the index's oracle.
    #[cfg(test)]
    fn zone_of_scan(&self, seg: &Segment, addr: IpAddr, responder: bool) -> ZoneId {
        // (named by its address, selectors, strongest kind, prefix bits)
        let mut best: Option<((bool, u8, u8, u8), usize)> = None;
        for (i, z) in self.zones.iter().enumerate() {
            if z.selectors() == 0 {
                continue;
            }
            let Some(bits) = z.prefix_match(addr) else {
                continue;
            };
            let by_address = responder && !z.prefixes.is_empty();
            if !by_address && !z.segment_matches(seg) {
                continue;
            }
            let key = (by_address, z.selectors(), z.strongest(), bits);
            if best.is_none_or(|(k, _)| key > k) {
                best = Some((key, i));
            }
        }
        best.map_or(self.default_zone, |(_, i)| i as ZoneId)
    }

    /// The decision for a flow from `from` to `to` (proto, the responder's
    /// port). `initiator_known`: false for a TCP flow first seen without
    /// its SYN, which must be allowed both ways (`back_port`: the port the
    /// other way).
    /// `app`: the flow's application protocol; `Unknown` while the app
    /// layer may still find it (a rule that names one then leaves the
    /// decision pending), `Failed` once it will not.
    #[allow(clippy::too_many_arguments)]
    pub fn decide(
        &self,
        from: ZoneId,
        to: ZoneId,
        proto: u8,
        port: u16,
        initiator_known: bool,
        back_port: u16,
        app: AppProto,
    ) -> Decision {
        let one = |f: ZoneId, t: ZoneId, p: u16| {
            for i in self.by_from.get(usize::from(f)).into_iter().flatten() {
                let r = &self.rules[*i as usize];
                if !r.matches(f, t, proto, p) {
                    continue;
                }
                match r.app {
                    Some(_) if app == AppProto::Unknown => {
                        return Decision {
                            allow: true,
                            rule: None,
                            pending: true,
                        }
                    }
                    Some(a) if a != app => continue,
                    _ => {
                        return Decision {
                            allow: r.action == Action::Allow,
                            rule: Some(*i as usize),
                            pending: false,
                        }
                    }
                }
            }
            Decision {
                allow: f == t,
                rule: None,
                pending: false,
            }
        };
        let d = one(from, to, port);
        if initiator_known || !d.allow {
            return d;
        }
        let back = one(to, from, back_port);
        match (back.allow, back.pending) {
            (true, false) => d,
            (true, true) => back,
            (false, _) => back,
        }
    }

    /// Some rule names an application protocol.
    pub fn has_app_rules(&self) -> bool {
        self.has_app
    }

    pub fn zone_name(&self, z: ZoneId) -> &str {
        self.zones
            .get(usize::from(z))
            .map_or("?", |z| z.name.as_str())
    }

    /// `tollgate policy check`: the zones, the rules, zones inside others
    /// (which one wins), rules no flow can reach.
    pub fn report(&self) -> (String, Vec<String>) {
        use std::fmt::Write;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{}: {} zones, {} rules",
            self.file,
            self.zones.len(),
            self.rules.len()
        );
        let _ = writeln!(out, "zones (most specific wins: more selectors, then VNI > VLAN > prefix, then the longest prefix):");
        for (i, z) in self.zones.iter().enumerate() {
            let def = if i == usize::from(self.default_zone) {
                " (default)"
            } else {
                ""
            };
            let _ = writeln!(out, "  {}{def}: {}", z.name, z.describe());
        }
        let _ = writeln!(
            out,
            "rules (first match wins; otherwise allowed within a zone, denied between zones):"
        );
        for r in &self.rules {
            let _ = writeln!(out, "  line {}: {}", r.line, self.describe_rule(r));
        }
        let mut notes = Vec::new();
        // Zones whose traffic another, more specific one takes in part.
        for a in &self.zones {
            for b in &self.zones {
                if a.name == b.name || b.selectors() == 0 || a.selectors() == 0 {
                    continue;
                }
                for pa in &a.prefixes {
                    for pb in &b.prefixes {
                        if pa.covers(pb) && pa != pb && a.segment_overlaps(b) {
                            notes.push(format!(
                                "overlap: {pb} of zone `{}` lies inside {pa} of zone `{}`; there `{}` wins",
                                b.name, a.name, self.winner(a, b)
                            ));
                        }
                    }
                }
            }
        }
        for (i, r) in self.rules.iter().enumerate() {
            if let Some(e) = self.rules[..i].iter().find(|e| e.shadows(r)) {
                notes.push(format!(
                    "unreachable: the rule at line {} never decides: the rule at line {} takes every flow it would",
                    r.line, e.line
                ));
            }
        }
        (out, notes)
    }

    fn winner<'a>(&self, a: &'a Zone, b: &'a Zone) -> &'a str {
        let key = |z: &Zone| (z.selectors(), z.strongest());
        if key(a) > key(b) {
            &a.name
        } else {
            &b.name
        }
    }

    fn describe_rule(&self, r: &Rule) -> String {
        let sel = |s: ZoneSel| match s {
            ZoneSel::Any => "any".to_string(),
            ZoneSel::Zone(z) => self.zone_name(z).to_string(),
        };
        let mut s = format!(
            "{} {} {} {}",
            if r.action == Action::Allow {
                "allow"
            } else {
                "deny"
            },
            sel(r.from),
            if r.both { "<->" } else { "->" },
            sel(r.to)
        );
        if let Some(p) = r.proto {
            let _ = std::fmt::Write::write_fmt(&mut s, format_args!(" proto {}", proto_name(p)));
        }
        if let Some(a) = r.app {
            let _ = std::fmt::Write::write_fmt(&mut s, format_args!(" app {}", a.name()));
        }
        if !r.ports.is_empty() {
            let p: Vec<String> = r
                .ports
                .iter()
                .map(|&(a, b)| {
                    if a == b {
                        a.to_string()
                    } else {
                        format!("{a}-{b}")
                    }
                })
                .collect();
            let _ = std::fmt::Write::write_fmt(&mut s, format_args!(" ports {}", p.join(",")));
        }
        s
    }

    /// The text an alert names: the zone pair and what decided.
    pub fn explain(&self, from: ZoneId, to: ZoneId, d: &Decision) -> String {
        let by = match d.rule.and_then(|i| self.rules.get(i)) {
            Some(r) => format!("{}:{}", self.file, r.line),
            None => "default deny between zones".into(),
        };
        format!("{} -> {} ({by})", self.zone_name(from), self.zone_name(to))
    }
}

impl Zone {
    /// Both could take traffic on one segment.
    fn segment_overlaps(&self, o: &Zone) -> bool {
        let vni = self.vni.is_empty() || o.vni.is_empty() || overlaps(&self.vni, &o.vni);
        let vlan = self.vlan.is_empty()
            || o.vlan.is_empty()
            || self.vlan_outer != o.vlan_outer
            || overlaps(&self.vlan, &o.vlan);
        vni && vlan
    }
}

/// Why two zones cannot be told apart, if they cannot: the same kinds of
/// selectors, and traffic both take.
fn ambiguous(a: &Zone, b: &Zone) -> Option<String> {
    let kinds = |z: &Zone| {
        (
            !z.vni.is_empty(),
            !z.vlan.is_empty(),
            z.vlan_outer,
            !z.prefixes.is_empty(),
        )
    };
    if kinds(a) != kinds(b) || a.selectors() == 0 {
        return None;
    }
    if !a.vni.is_empty() && !overlaps(&a.vni, &b.vni) {
        return None;
    }
    if !a.vlan.is_empty() && !overlaps(&a.vlan, &b.vlan) {
        return None;
    }
    if a.prefixes.is_empty() {
        return Some("the same segment".into());
    }
    a.prefixes
        .iter()
        .find(|p| b.prefixes.contains(p))
        .map(|p| format!("{p}"))
}

fn parse_zone(name: &str, line: usize, def: &Node) -> Result<Zone, (usize, String)> {
    let mut z = Zone {
        name: name.to_string(),
        line,
        vni: Vec::new(),
        vlan: Vec::new(),
        vlan_outer: false,
        prefixes: Vec::new(),
    };
    let entries = match &def.value {
        Value::Map(m) => m.as_slice(),
        Value::Null => &[],
        _ => {
            return Err((
                line,
                format!("zone `{name}`: expected a map of {ZONE_KEYS}"),
            ))
        }
    };
    for (k, kline, v) in entries {
        let ctx = |e: String| (*kline, format!("zone `{name}`: {e}"));
        match k.as_str() {
            "vni" => {
                for (s, _) in v.scalars().map_err(ctx)? {
                    z.vni
                        .push(parse_range(s, (1 << 24) - 1, "VNI").map_err(ctx)?);
                }
            }
            "vlan" | "vlan-outer" => {
                if !z.vlan.is_empty() {
                    return Err(ctx("give vlan or vlan-outer, not both".into()));
                }
                z.vlan_outer = k == "vlan-outer";
                for (s, _) in v.scalars().map_err(ctx)? {
                    z.vlan.push(parse_range(s, 4095, "VLAN id").map_err(ctx)?);
                }
            }
            "prefix" => {
                for (s, _) in v.scalars().map_err(ctx)? {
                    z.prefixes.push(Prefix::parse(s).map_err(ctx)?);
                }
            }
            o => return Err(ctx(format!("unknown key `{o}`: expected {ZONE_KEYS}"))),
        }
    }
    Ok(z)
}

fn proto_name(p: u8) -> String {
    match p {
        6 => "tcp".into(),
        17 => "udp".into(),
        1 => "icmp".into(),
        58 => "ipv6-icmp".into(),
        n => n.to_string(),
    }
}

fn parse_rule(item: &Node, zones: &[Zone]) -> Result<Rule, (usize, String)> {
    let here = |e: String| (item.line, e);
    let Value::Map(entries) = &item.value else {
        return Err(here(format!("a rule is a map: {RULE_KEYS}")));
    };
    let mut r = Rule {
        line: item.line,
        action: Action::Deny,
        from: ZoneSel::Any,
        to: ZoneSel::Any,
        both: false,
        proto: None,
        ports: Vec::new(),
        app: None,
    };
    let mut pair = None;
    for (k, line, v) in entries {
        let ctx = |e: String| (*line, e);
        match k.as_str() {
            "allow" | "deny" => {
                if pair.is_some() {
                    return Err(ctx("one of allow or deny per rule".into()));
                }
                r.action = if k == "allow" {
                    Action::Allow
                } else {
                    Action::Deny
                };
                pair = Some(v.scalar().map_err(ctx)?.to_string());
            }
            "proto" => {
                let p = v.scalar().map_err(ctx)?;
                r.proto = match p {
                    "any" => None,
                    "tcp" => Some(6),
                    "udp" => Some(17),
                    "icmp" => Some(1),
                    "ipv6-icmp" | "icmpv6" => Some(58),
                    n => Some(n.parse::<u8>().map_err(|_| {
                        ctx(format!(
                            "proto `{n}`: expected tcp, udp, icmp, ipv6-icmp, any or a number"
                        ))
                    })?),
                };
            }
            "ports" => {
                for (s, _) in v.scalars().map_err(ctx)? {
                    r.ports.push(parse_range(s, 65535, "port").map_err(ctx)?);
                }
            }
            "app" => {
                let a = v.scalar().map_err(ctx)?;
                r.app = Some(
                    AppProto::of_rule_proto(a)
                        .ok_or_else(|| ctx(format!("app `{a}`: expected http, tls or dns")))?,
                );
            }
            o => return Err(ctx(format!("unknown key `{o}`: expected {RULE_KEYS}"))),
        }
    }
    let Some(pair) = pair else {
        return Err(here(
            "a rule needs allow or deny: `allow: A -> B` (or `A <-> B`)".into(),
        ));
    };
    let (a, b, both) = if let Some((a, b)) = pair.split_once("<->") {
        (a, b, true)
    } else if let Some((a, b)) = pair.split_once("->") {
        (a, b, false)
    } else {
        return Err(here(format!(
            "`{pair}`: expected FROM -> TO or FROM <-> TO"
        )));
    };
    let zone = |n: &str| -> Result<ZoneSel, String> {
        let n = n.trim();
        if n == "any" {
            return Ok(ZoneSel::Any);
        }
        zones
            .iter()
            .position(|z| z.name == n)
            .map(|i| ZoneSel::Zone(i as ZoneId))
            .ok_or_else(|| format!("`{n}`: no such zone (zones: {}, or any)", names(zones)))
    };
    r.from = zone(a).map_err(here)?;
    r.to = zone(b).map_err(here)?;
    r.both = both;
    if !r.ports.is_empty() && !matches!(r.proto, Some(6) | Some(17)) {
        return Err(here("ports need proto tcp or udp".into()));
    }
    Ok(r)
}

fn names(zones: &[Zone]) -> String {
    zones
        .iter()
        .map(|z| z.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: &str = "\
default-zone: outside
zones:
  tenant-a:
    vni: 5001
    prefix: 10.8.0.0/16
  tenant-b:
    vni: 5002
    prefix: [10.9.0.0/16, fd00:9::/48]
  mgmt:
    vlan: 100-110
  storage:
    prefix: 10.20.0.0/16
  storage-hot:
    prefix: 10.20.5.0/24
rules:
  - allow: tenant-a -> tenant-b
    proto: tcp
    ports: 8443
  - deny: any -> mgmt
  - allow: any -> storage
    proto: tcp
    ports: [443, 9000-9010]
";

    fn p() -> Policy {
        Policy::parse(POLICY, "p.yaml").unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn z(p: &Policy, name: &str) -> ZoneId {
        p.zones.iter().position(|z| z.name == name).unwrap() as ZoneId
    }

    #[test]
    fn endpoints_land_in_the_most_specific_zone() {
        let p = p();
        let vni = |v| Segment::of(Some(v), &[]);
        // The initiator needs its segment and its address.
        assert_eq!(
            p.zone_of(&vni(5001), ip("10.8.1.1"), false),
            z(&p, "tenant-a")
        );
        assert_eq!(
            p.zone_of(&vni(5002), ip("10.8.1.1"), false),
            z(&p, "outside")
        );
        // The responder is named by its address from any segment.
        assert_eq!(
            p.zone_of(&vni(5001), ip("10.9.3.3"), true),
            z(&p, "tenant-b")
        );
        assert_eq!(
            p.zone_of(&vni(5001), "fd00:9::1".parse().unwrap(), true),
            z(&p, "tenant-b")
        );
        // Longest prefix among prefix zones.
        let none = Segment::default();
        assert_eq!(
            p.zone_of(&none, ip("10.20.5.9"), true),
            z(&p, "storage-hot")
        );
        assert_eq!(p.zone_of(&none, ip("10.20.6.9"), false), z(&p, "storage"));
        // The innermost VLAN unless the zone names the outer.
        assert_eq!(
            p.zone_of(&Segment::of(None, &[7, 105]), ip("1.1.1.1"), false),
            z(&p, "mgmt")
        );
        assert_eq!(
            p.zone_of(&Segment::of(None, &[105, 7]), ip("1.1.1.1"), false),
            z(&p, "outside")
        );
        // A VLAN zone beats a prefix zone on its segment; a responder is
        // named by its address first.
        let v100 = Segment::of(None, &[100]);
        assert_eq!(p.zone_of(&v100, ip("10.20.1.1"), false), z(&p, "mgmt"));
        assert_eq!(p.zone_of(&v100, ip("10.20.1.1"), true), z(&p, "storage"));
        assert_eq!(p.zone_of(&v100, ip("10.7.1.1"), true), z(&p, "mgmt"));
    }

    #[test]
    fn the_index_finds_what_a_scan_of_every_zone_finds() {
        let p = p();
        let segs = [
            Segment::default(),
            Segment::of(Some(5001), &[]),
            Segment::of(Some(5002), &[100]),
            Segment::of(None, &[105]),
            Segment::of(None, &[7, 105]),
        ];
        let mut n = 0u64;
        for seg in &segs {
            for a in 0..64u32 {
                for base in [
                    "10.8.0.0",
                    "10.9.0.0",
                    "10.20.5.0",
                    "10.20.9.0",
                    "192.0.2.0",
                ] {
                    let b: std::net::Ipv4Addr = base.parse().unwrap();
                    let addr = IpAddr::V4((u32::from(b) + a * 977).into());
                    for responder in [false, true] {
                        assert_eq!(
                            p.zone_of(seg, addr, responder),
                            p.zone_of_scan(seg, addr, responder),
                            "{seg:?} {addr} responder {responder}"
                        );
                        n += 1;
                    }
                }
            }
        }
        assert_eq!(n, 3200);
    }

    #[test]
    fn rules_first_match_then_default_deny_between_zones() {
        let p = p();
        let (a, b, out) = (z(&p, "tenant-a"), z(&p, "tenant-b"), z(&p, "outside"));
        assert!(
            p.decide(a, b, 6, 8443, true, 40000, AppProto::Unknown)
                .allow
        );
        assert!(
            !p.decide(a, b, 6, 22, true, 40000, AppProto::Unknown).allow,
            "default deny"
        );
        assert!(
            !p.decide(b, a, 6, 8443, true, 40000, AppProto::Unknown)
                .allow,
            "one way only"
        );
        assert!(
            p.decide(a, a, 6, 22, true, 40000, AppProto::Unknown).allow,
            "within a zone"
        );
        let d = p.decide(out, z(&p, "mgmt"), 6, 22, true, 1, AppProto::Unknown);
        assert_eq!((d.allow, d.rule), (false, Some(1)));
        assert!(
            p.decide(b, z(&p, "storage"), 6, 9005, true, 1, AppProto::Unknown)
                .allow
        );
        // No SYN seen: it must be allowed both ways, so a reply-looking
        // first packet cannot open a one-way allow the other way.
        assert!(
            !p.decide(a, b, 6, 8443, false, 40000, AppProto::Unknown)
                .allow
        );
        assert_eq!(
            p.explain(a, b, &p.decide(a, b, 6, 22, true, 1, AppProto::Unknown)),
            "tenant-a -> tenant-b (default deny between zones)"
        );
        assert_eq!(
            p.explain(
                out,
                z(&p, "mgmt"),
                &p.decide(out, z(&p, "mgmt"), 6, 1, true, 1, AppProto::Unknown)
            ),
            "outside -> mgmt (p.yaml:19)"
        );
    }

    #[test]
    fn bad_policies_name_the_line_and_what_is_expected() {
        for (text, says) in [
            (
                "zones:\n  a:\n    vni: 5001\n  b:\n    vni: [4000-6000]\n",
                "p.yaml:4: zone `b` and zone `a` (line 2) are equally specific",
            ),
            (
                "zones:\n  a:\n    prefix: 10.0.0.0/8\n  b:\n    prefix: 10.0.0.0/8\n",
                "equally specific for 10.0.0.0/8",
            ),
            (
                "zones:\n  a:\n    prefix: 10.0.0.1/8\n",
                "p.yaml:3: zone `a`: `10.0.0.1/8`: host bits set",
            ),
            (
                "zones:\n  a:\n    prefix: 10.0.0.0/33\n",
                "prefix length `33` is not 0-32",
            ),
            ("zones:\n  a:\n    vlan: 9-3\n", "the range is empty"),
            (
                "zones:\n  a:\n    vlan: 5000\n",
                "expected a VLAN id (0-4095)",
            ),
            (
                "zones:\n  a:\n    color: red\n",
                "unknown key `color`: expected vni, vlan, vlan-outer, prefix",
            ),
            ("zone:\n  a: {}\n", "p.yaml:1: unknown key `zone`"),
            ("rules:\n  - allow: a -> b\n", "p.yaml:2: `a`: no such zone"),
            ("rules:\n  - allow: any to any\n", "expected FROM -> TO"),
            (
                "rules:\n  - allow: any -> any\n    ports: 80\n",
                "ports need proto tcp or udp",
            ),
            (
                "rules:\n  - allow: any -> any\n    proto: sctpx\n",
                "proto `sctpx`",
            ),
            ("non-ip: maybe\n", "expected pass or drop"),
            (
                "zones:\n  a:\n    vni: 1\n  a:\n    vni: 2\n",
                "line 4: `a` is given twice",
            ),
        ] {
            let e = Policy::parse(text, "p.yaml").unwrap_err();
            assert!(e.contains(says), "{text:?}: {e}");
        }
        // Different kinds, or different values, are no overlap.
        Policy::parse(
            "zones:\n  a:\n    vni: 1\n  b:\n    vlan: 1\n  c:\n    vni: 2\n",
            "p",
        )
        .unwrap();
    }

    #[test]
    fn a_rule_naming_an_app_waits_for_the_app_layer() {
        let text = "zones:\n  a:\n    prefix: 10.1.0.0/16\n  b:\n    prefix: 10.2.0.0/16\n\
                    rules:\n  - allow: a -> b\n    app: http\n";
        let p = Policy::parse(text, "p.yaml").unwrap();
        let (a, b) = (0, 1);
        let d = p.decide(a, b, 6, 8080, true, 1, AppProto::Unknown);
        assert!(d.pending && d.allow, "allowed while the app is not known");
        let d = p.decide(a, b, 6, 8080, true, 1, AppProto::Http);
        assert_eq!((d.allow, d.pending, d.rule), (true, false, Some(0)));
        let d = p.decide(a, b, 6, 8080, true, 1, AppProto::Tls);
        assert_eq!((d.allow, d.pending, d.rule), (false, false, None));
        let d = p.decide(a, b, 6, 8080, true, 1, AppProto::Failed);
        assert!(!d.allow && !d.pending);
        assert!(Policy::parse(&text.replace("http", "smtp"), "p.yaml")
            .unwrap_err()
            .contains("p.yaml:8: app `smtp`: expected http, tls or dns"));
    }

    #[test]
    fn the_check_reports_overlaps_and_unreachable_rules() {
        let text =
            format!("{POLICY}  - deny: tenant-a -> storage\n    proto: tcp\n    ports: 443\n");
        let p = Policy::parse(&text, "p.yaml").unwrap();
        let (out, notes) = p.report();
        assert!(
            out.contains("tenant-a: vni 5001 and prefix 10.8.0.0/16"),
            "{out}"
        );
        assert!(
            out.contains("outside (default): what no other zone takes"),
            "{out}"
        );
        assert!(
            out.contains("line 23: deny tenant-a -> storage proto tcp ports 443"),
            "{out}"
        );
        assert!(
            notes
                .iter()
                .any(|n| n.contains("10.20.5.0/24 of zone `storage-hot` lies inside 10.20.0.0/16")),
            "{notes:?}"
        );
        assert!(
            notes
                .iter()
                .any(|n| n.contains("the rule at line 23 never decides: the rule at line 20")),
            "{notes:?}"
        );
    }
}
