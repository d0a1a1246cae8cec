//! Rule groups: which prefilter databases a packet, or a direction's
//! stream, is scanned with.
//!
//! One database with every packet and stream rule's fast pattern makes
//! every byte pay for every rule. Most rules cannot match most traffic: a
//! rule's header names a protocol, a direction, address sides (ET's
//! `$EXTERNAL_NET -> $HOME_NET`) and server ports. So, as Suricata's
//! signature group heads do (it splits by protocol, direction and port;
//! this also splits by address side), the rules are grouped ahead of time
//! by what a packet's header can tell:
//!
//! - the protocol: TCP, UDP, anything else;
//! - the flow direction (to the server or to the client);
//! - whether the source, and the destination, are in `$HOME_NET`;
//! - the server's port: the destination port to the server, the source
//!   port to the client.
//!
//! The first four make a *family* (24 of them). Within a family the port
//! space is cut where some rule's ports start or end; each segment's rules
//! are a set, equal sets are one, and past `PORT_GROUPS` sets the two most
//! alike are merged (their union), so a family compiles a bounded number of
//! databases. Equal rule sets across families are one group too.
//!
//! A group always holds every rule whose header *could* match a packet
//! that looks it up: a rule is left out of a family only when its protocol,
//! its `flow:` direction, an address side (all inside `$HOME_NET`, or all
//! outside it) or its ports rule that family's packets out. Everything a
//! prefilter hit leads to is still confirmed in full, so grouping changes
//! what is scanned, never what matches.

use super::{EngineRule, ProtoMatch};
use crate::rules::vars::{AddrMatch, NetSet, PortMatch};
use hyperscan::prelude::*;
use std::collections::HashMap;
use std::net::IpAddr;

/// Marks a packet rule's id in a streaming database: the stream scan that
/// delivers a TCP packet's bytes finds its packet rules' fast patterns too,
/// so a packet whose bytes went to the stream whole, in order, needs no
/// scan of its own (`Matcher::packet_hits`).
pub const PACKET_HIT: u32 = 1 << 31;

/// Port groups one family keeps at most: beyond, the two most alike merge.
pub const PORT_GROUPS: usize = 2;

/// Families: 3 protocol classes × 2 directions × 2 × 2 address sides.
const FAMILIES: usize = 24;

/// A bound of closed ranges.
trait Bound: Ord + Copy {
    const MIN: Self;
    const MAX: Self;
    fn next(self) -> Option<Self>;
    fn prev(self) -> Option<Self>;
}

macro_rules! bound {
    ($($t:ty),*) => {$(
        impl Bound for $t {
            const MIN: $t = <$t>::MIN;
            const MAX: $t = <$t>::MAX;
            fn next(self) -> Option<$t> {
                self.checked_add(1)
            }
            fn prev(self) -> Option<$t> {
                self.checked_sub(1)
            }
        }
    )*};
}
bound!(u16, u32, u128);

/// Closed ranges sorted, overlapping and touching ones merged.
fn merged<T: Bound>(mut r: Vec<(T, T)>) -> Vec<(T, T)> {
    r.retain(|&(lo, hi)| lo <= hi);
    r.sort_unstable();
    let mut out: Vec<(T, T)> = Vec::with_capacity(r.len());
    for (lo, hi) in r {
        match out.last_mut() {
            Some(last) if last.1.next().is_none_or(|n| lo <= n) => last.1 = last.1.max(hi),
            _ => out.push((lo, hi)),
        }
    }
    out
}

/// What merged ranges `r` leave out.
fn complement<T: Bound>(r: &[(T, T)]) -> Vec<(T, T)> {
    let mut out = Vec::with_capacity(r.len() + 1);
    let mut from = Some(T::MIN);
    for &(lo, hi) in r {
        if let (Some(f), Some(p)) = (from, lo.prev()) {
            if f <= p {
                out.push((f, p));
            }
        }
        from = hi.next();
    }
    if let Some(f) = from {
        out.push((f, T::MAX));
    }
    out
}

/// What merged ranges `a` and `b` share.
fn intersect<T: Bound>(a: &[(T, T)], b: &[(T, T)]) -> Vec<(T, T)> {
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < a.len() && j < b.len() {
        let lo = a[i].0.max(b[j].0);
        let hi = a[i].1.min(b[j].1);
        if lo <= hi {
            out.push((lo, hi));
        }
        if a[i].1 < b[j].1 {
            i += 1;
        } else {
            j += 1;
        }
    }
    out
}

/// The addresses an expression matches, as ranges of each family.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Space {
    v4: Vec<(u32, u32)>,
    v6: Vec<(u128, u128)>,
}

impl Space {
    fn all() -> Space {
        Space {
            v4: vec![(0, u32::MAX)],
            v6: vec![(0, u128::MAX)],
        }
    }

    fn not(&self) -> Space {
        Space {
            v4: complement(&self.v4),
            v6: complement(&self.v6),
        }
    }

    fn or(&self, o: &Space) -> Space {
        Space {
            v4: merged(self.v4.iter().chain(&o.v4).copied().collect()),
            v6: merged(self.v6.iter().chain(&o.v6).copied().collect()),
        }
    }

    fn and(&self, o: &Space) -> Space {
        Space {
            v4: intersect(&self.v4, &o.v4),
            v6: intersect(&self.v6, &o.v6),
        }
    }

    fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }

    fn of_nets(n: &NetSet) -> Space {
        Space {
            v4: n.v4_ranges().to_vec(),
            v6: n.v6_ranges().to_vec(),
        }
    }

    /// Exactly the addresses `m.matches` takes.
    fn of(m: &AddrMatch) -> Space {
        match m {
            AddrMatch::Any => Space::all(),
            &AddrMatch::Net(ip, bits) => Space::of_nets(&NetSet::new(vec![(ip, bits)])),
            AddrMatch::Not(inner) => Space::of(inner).not(),
            AddrMatch::List {
                pos,
                pos_nets,
                neg,
                neg_nets,
            } => {
                let p = if pos.is_empty() && pos_nets.is_empty() {
                    Space::all()
                } else {
                    pos.iter()
                        .fold(Space::of_nets(pos_nets), |acc, m| acc.or(&Space::of(m)))
                };
                let n = neg
                    .iter()
                    .fold(Space::of_nets(neg_nets), |acc, m| acc.or(&Space::of(m)));
                p.and(&n.not())
            }
        }
    }
}

/// Exactly the ports `m.matches` takes, merged.
fn ports(m: &PortMatch) -> Vec<(u16, u16)> {
    match m {
        PortMatch::Any => vec![(0, u16::MAX)],
        &PortMatch::Range(lo, hi) => merged(vec![(lo, hi)]),
        PortMatch::Not(inner) => complement(&ports(inner)),
        PortMatch::List { pos, neg } => {
            let p = if pos.is_empty() {
                vec![(0, u16::MAX)]
            } else {
                merged(pos.iter().flat_map(ports).collect())
            };
            let n = merged(neg.iter().flat_map(ports).collect());
            intersect(&p, &complement(&n))
        }
    }
}

/// Where a rule's address side lies against `$HOME_NET`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    /// Inside and outside.
    Either,
    /// Only inside.
    Home,
    /// Only outside.
    External,
}

impl Side {
    fn of_space(s: &Space, home: &Space) -> Side {
        if s.and(&home.not()).is_empty() {
            Side::Home
        } else if s.and(home).is_empty() {
            Side::External
        } else {
            Side::Either
        }
    }

    fn takes(self, is_home: bool) -> bool {
        match self {
            Side::Either => true,
            Side::Home => is_home,
            Side::External => !is_home,
        }
    }
}

/// `$HOME_NET`, to tell which side of it an address, or a rule's address
/// side, is on.
#[derive(Debug, Clone)]
pub struct Home {
    m: AddrMatch,
    space: Space,
}

impl Home {
    pub fn new(m: AddrMatch) -> Home {
        Home {
            space: Space::of(&m),
            m,
        }
    }

    pub fn holds(&self, ip: IpAddr) -> bool {
        self.m.matches(ip)
    }

    /// Whether a source and a destination are in `$HOME_NET`, in that
    /// order: what a packet's group and its rules' exact address sides
    /// are decided by.
    pub fn sides_of(&self, src: IpAddr, dst: IpAddr) -> (bool, bool) {
        (self.holds(src), self.holds(dst))
    }

    /// The bit of a (source, destination) pair in `EngineRule::home_fwd`.
    pub fn combo(src_home: bool, dst_home: bool) -> u8 {
        1 << (usize::from(src_home) * 2 + usize::from(dst_home))
    }

    /// The pairs a rule's header admits as written (`home_fwd`), and
    /// whether that is all its address sides say: each is `any`,
    /// `$HOME_NET` or everything outside it (`addr_exact`).
    pub fn sides(&self, r: &EngineRule) -> (u8, bool) {
        let (s, d) = (Space::of(&r.src), Space::of(&r.dst));
        let (src, dst) = (
            Side::of_space(&s, &self.space),
            Side::of_space(&d, &self.space),
        );
        let mut fwd = 0;
        for sh in [false, true] {
            for dh in [false, true] {
                if src.takes(sh) && dst.takes(dh) {
                    fwd |= Home::combo(sh, dh);
                }
            }
        }
        let outside = self.space.not();
        let exact = |x: &Space| *x == Space::all() || *x == self.space || *x == outside;
        (fwd, exact(&s) && exact(&d))
    }
}

/// A packet's family.
fn family(proto: u8, to_server: bool, src_home: bool, dst_home: bool) -> usize {
    let class = match proto {
        6 => 0,
        17 => 1,
        _ => 2,
    };
    ((class * 2 + usize::from(!to_server)) * 2 + usize::from(src_home)) * 2 + usize::from(dst_home)
}

/// Whether a rule of protocol `p` can match a packet of protocol class
/// `class` (0 TCP, 1 UDP, 2 the rest).
fn takes_class(p: ProtoMatch, class: usize) -> bool {
    match p {
        ProtoMatch::Any | ProtoMatch::Version(_) => true,
        ProtoMatch::Number(6) => class == 0,
        ProtoMatch::Number(17) => class == 1,
        ProtoMatch::Number(_) | ProtoMatch::Icmp => class == 2,
    }
}

/// The server ports (of the family's packets) a rule can match, merged;
/// empty when it matches none of the family's packets.
fn key_ports(r: &EngineRule, to_server: bool, src_home: bool, dst_home: bool) -> Vec<(u16, u16)> {
    let admits = |s, d| r.home_fwd & Home::combo(s, d) != 0;
    let mut out = Vec::new();
    // The header as written: the packet's source is the rule's source.
    if admits(src_home, dst_home) {
        out.extend(ports(if to_server {
            &r.dst_ports
        } else {
            &r.src_ports
        }));
    }
    // `<>` also the other way round.
    if r.bidirectional && admits(dst_home, src_home) {
        out.extend(ports(if to_server {
            &r.src_ports
        } else {
            &r.dst_ports
        }));
    }
    merged(out)
}

/// Rules grouped by what a packet's header tells, and each packet's group.
#[derive(Debug)]
pub struct Groups {
    pub home: Home,
    /// Per family: where each port segment starts (the first at 0) and the
    /// segment's group.
    starts: Vec<Vec<u16>>,
    group: Vec<Vec<u32>>,
    /// Each group's rules (engine indices), ascending.
    pub members: Vec<Vec<u32>>,
    /// Whether the group's packets are TCP: only there is a stream rule
    /// matched on the stream; elsewhere it is a packet rule.
    pub tcp: Vec<bool>,
}

impl Groups {
    /// Groups `grouped` (indices into `rules`), with `home` as
    /// `$HOME_NET`, at most `per_family` port groups a family. A rule's
    /// address sides are read off its `home_fwd` (`Home::sides` against
    /// the same `home`; left at all four pairs, a rule is in every family
    /// its protocol, direction and ports allow).
    pub fn build(rules: &[EngineRule], grouped: &[u32], home: &Home, per_family: usize) -> Groups {
        let mut ids: HashMap<(Vec<u32>, bool), u32> = HashMap::new();
        let (mut members, mut tcp) = (Vec::new(), Vec::new());
        let (mut starts, mut group) = (Vec::new(), Vec::new());
        for f in 0..FAMILIES {
            let (class, to_server) = (f / 8, (f / 4) % 2 == 0);
            let (src_home, dst_home) = ((f / 2) % 2 == 1, f % 2 == 1);
            let keyed: Vec<(u32, Vec<(u16, u16)>)> = grouped
                .iter()
                .filter_map(|&i| {
                    let r = &rules[i as usize];
                    if !takes_class(r.proto, class)
                        || r.flow.to_server.is_some_and(|t| t != to_server)
                    {
                        return None;
                    }
                    let k = key_ports(r, to_server, src_home, dst_home);
                    (!k.is_empty()).then_some((i, k))
                })
                .collect();
            let (cuts, sets) = segments(&keyed);
            let (cuts, sets) = bounded(cuts, sets, per_family.max(1));
            let mut seg_groups = Vec::with_capacity(cuts.len());
            for set in sets {
                let rules: Vec<u32> = keyed
                    .iter()
                    .enumerate()
                    .filter(|(k, _)| set[k / 64] & (1 << (k % 64)) != 0)
                    .map(|(_, &(i, _))| i)
                    .collect();
                let next = ids.len() as u32;
                let id = *ids.entry((rules.clone(), class == 0)).or_insert_with(|| {
                    members.push(rules);
                    tcp.push(class == 0);
                    next
                });
                seg_groups.push(id);
            }
            // Neighbours in one group are one segment.
            let (mut st, mut gr) = (Vec::new(), Vec::new());
            for (c, g) in cuts.into_iter().zip(seg_groups) {
                if gr.last() != Some(&g) {
                    st.push(c);
                    gr.push(g);
                }
            }
            starts.push(st);
            group.push(gr);
        }
        Groups {
            home: home.clone(),
            starts,
            group,
            members,
            tcp,
        }
    }

    /// The group of a packet (or a stream delivery) with these header
    /// fields.
    pub fn of(
        &self,
        proto: u8,
        to_server: bool,
        (src, src_port): (IpAddr, u16),
        (dst, dst_port): (IpAddr, u16),
    ) -> usize {
        let sides = self.home.sides_of(src, dst);
        self.of_sides(proto, to_server, sides, (src_port, dst_port))
    }

    /// `of`, with the sides of `$HOME_NET` the source and destination are
    /// on already known.
    pub fn of_sides(
        &self,
        proto: u8,
        to_server: bool,
        (src_home, dst_home): (bool, bool),
        (src_port, dst_port): (u16, u16),
    ) -> usize {
        let f = family(proto, to_server, src_home, dst_home);
        let port = if to_server { dst_port } else { src_port };
        let (Some(starts), Some(group)) = (self.starts.get(f), self.group.get(f)) else {
            return 0;
        };
        let i = starts.partition_point(|&s| s <= port).max(1);
        group.get(i - 1).map_or(0, |&g| g as usize)
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }
}

/// The port segments of a family's keyed rules: where each starts (the
/// first at 0) and which rules (bits by position in `keyed`) take it.
fn segments(keyed: &[(u32, Vec<(u16, u16)>)]) -> (Vec<u16>, Vec<Vec<u64>>) {
    let mut cuts = vec![0u16];
    for (_, k) in keyed {
        for &(lo, hi) in k {
            cuts.push(lo);
            if let Some(n) = hi.checked_add(1) {
                cuts.push(n);
            }
        }
    }
    cuts.sort_unstable();
    cuts.dedup();
    let words = keyed.len().div_ceil(64);
    let mut sets = vec![vec![0u64; words]; cuts.len()];
    for (k, (_, ranges)) in keyed.iter().enumerate() {
        for &(lo, hi) in ranges {
            let a = cuts.partition_point(|&c| c < lo);
            let b = cuts.partition_point(|&c| c <= hi);
            for set in &mut sets[a..b] {
                set[k / 64] |= 1 << (k % 64);
            }
        }
    }
    (cuts, sets)
}

/// Segments with at most `max` distinct sets: equal sets are one; then,
/// while there are too many, the two that differ in the fewest rules
/// become their union (each segment keeps every rule it had). The set
/// that covers the most ports is never merged: it is what a server on a
/// port no rule names (most services an AI factory runs: 8000, 9000 …)
/// is matched with, so it stays as small as the rules allow.
fn bounded(cuts: Vec<u16>, sets: Vec<Vec<u64>>, max: usize) -> (Vec<u16>, Vec<Vec<u64>>) {
    let mut uniq: Vec<Vec<u64>> = Vec::new();
    let mut index: HashMap<Vec<u64>, usize> = HashMap::new();
    let mut of_seg: Vec<usize> = Vec::with_capacity(sets.len());
    for s in sets {
        let n = uniq.len();
        let i = *index.entry(s.clone()).or_insert_with(|| {
            uniq.push(s);
            n
        });
        of_seg.push(i);
    }
    // Ports each set covers.
    let mut span = vec![0u32; uniq.len()];
    for (s, &i) in of_seg.iter().enumerate() {
        let end = cuts.get(s + 1).map_or(65536, |&c| u32::from(c));
        span[i] += end - u32::from(cuts[s]);
    }
    let widest = (0..uniq.len()).max_by_key(|&i| (span[i], std::cmp::Reverse(i)));
    // into[i]: the set i was merged into (itself while live).
    let mut into: Vec<usize> = (0..uniq.len()).collect();
    let mut live: Vec<usize> = (0..uniq.len())
        .filter(|&i| Some(i) != widest || max == 1)
        .collect();
    let max = if max > 1 && widest.is_some() {
        max - 1
    } else {
        max
    };
    while live.len() > max {
        let mut best = (u32::MAX, 0, 1);
        for (x, &i) in live.iter().enumerate() {
            for &j in &live[x + 1..] {
                let d: u32 = uniq[i]
                    .iter()
                    .zip(&uniq[j])
                    .map(|(a, b)| (a ^ b).count_ones())
                    .sum();
                if d < best.0 {
                    best = (d, i, j);
                }
            }
        }
        let (_, i, j) = best;
        let merged: Vec<u64> = uniq[i].iter().zip(&uniq[j]).map(|(a, b)| a | b).collect();
        uniq[i] = merged;
        into[j] = i;
        live.retain(|&x| x != j);
    }
    let root = |mut i: usize| {
        while into[i] != i {
            i = into[i];
        }
        i
    };
    let sets = of_seg.iter().map(|&i| uniq[root(i)].clone()).collect();
    (cuts, sets)
}

/// The prefilter databases: per group, its packet rules' fast patterns;
/// those with its stream rules' as well, for packets whose direction is
/// not reassembled (one scan, not two); its stream rules' and (marked
/// `PACKET_HIT`) its packet rules' in streaming mode; and the rules without a fast
/// pattern tried on each of its packets. Groups with the same rules of a
/// kind share one database.
pub struct Prefilter {
    pub groups: Groups,
    always: Vec<Vec<u32>>,
    packet: Vec<Option<u32>>,
    unreassembled: Vec<Option<u32>>,
    stream: Vec<Option<u32>>,
    blocks: Vec<BlockDatabase>,
    streams: Vec<StreamingDatabase>,
}

impl std::fmt::Debug for Prefilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Prefilter({} groups, {} block and {} streaming databases)",
            self.groups.len(),
            self.blocks.len(),
            self.streams.len()
        )
    }
}

/// What `Prefilter::build` compiled.
#[derive(Debug, Clone, Copy, Default)]
pub struct PrefilterReport {
    pub groups: usize,
    pub databases: usize,
    /// Fast patterns over every database (a rule counts once per database
    /// it is in).
    pub patterns: usize,
    pub bytes: usize,
    /// The largest streaming database's stream state.
    pub stream_state: usize,
}

/// One database to compile: its rules, and whether streaming.
type Job = (Vec<u32>, bool);

impl Prefilter {
    /// Groups `with_fast` (rules with a fast pattern) and `always` (rules
    /// without one, tried on every packet their group takes) and compiles
    /// the databases, `pattern(rule, streaming)` giving each rule's fast
    /// pattern, on `threads` threads.
    pub fn build(
        rules: &[EngineRule],
        with_fast: &[u32],
        always: &[u32],
        home: &Home,
        threads: usize,
        pattern: impl Fn(u32, bool) -> Result<Pattern, String> + Sync,
    ) -> Result<(Prefilter, PrefilterReport), String> {
        let mut grouped: Vec<u32> = with_fast.iter().chain(always).copied().collect();
        grouped.sort_unstable();
        let groups = Groups::build(rules, &grouped, home, PORT_GROUPS);
        // The jobs, each distinct rule list once per kind.
        let mut jobs: Vec<Job> = Vec::new();
        let mut seen: HashMap<Job, u32> = HashMap::new();
        let mut job = |list: Vec<u32>, streaming: bool| -> Option<u32> {
            if list.is_empty() {
                return None;
            }
            let key = (list, streaming);
            let n = jobs.len() as u32;
            Some(*seen.entry(key.clone()).or_insert_with(|| {
                jobs.push(key);
                n
            }))
        };
        let (mut packet, mut unreassembled, mut stream) = (Vec::new(), Vec::new(), Vec::new());
        let mut every = Vec::with_capacity(groups.len());
        for (m, &tcp) in groups.members.iter().zip(&groups.tcp) {
            let (fast, none): (Vec<u32>, Vec<u32>) =
                m.iter().partition(|&&i| rules[i as usize].fast.is_some());
            every.push(none);
            let (s, p): (Vec<u32>, Vec<u32>) =
                fast.iter().partition(|&&i| tcp && rules[i as usize].stream);
            // The streaming database: stream rules, and on TCP the packet
            // rules marked (ids stay below 2^31: rules are far fewer).
            let streaming: Vec<u32> = if tcp {
                s.iter()
                    .copied()
                    .chain(p.iter().map(|&i| i | PACKET_HIT))
                    .collect()
            } else {
                Vec::new()
            };
            packet.push(job(p, false));
            unreassembled.push(job(fast, false));
            stream.push(job(streaming, true));
        }
        let compiled = compile_all(&jobs, threads.max(1), &pattern)?;
        // Block and streaming databases numbered apart.
        let (mut blocks, mut streams) = (Vec::new(), Vec::new());
        let mut renumber = Vec::with_capacity(compiled.len());
        let mut report = PrefilterReport {
            groups: groups.len(),
            databases: compiled.len(),
            patterns: jobs.iter().map(|(l, _)| l.len()).sum(),
            ..Default::default()
        };
        for db in compiled {
            match db {
                Compiled::Block(b) => {
                    report.bytes += b.size().unwrap_or(0);
                    renumber.push(blocks.len() as u32);
                    blocks.push(b);
                }
                Compiled::Streaming(s) => {
                    report.bytes += s.size().unwrap_or(0);
                    report.stream_state = report.stream_state.max(s.stream_size().unwrap_or(0));
                    renumber.push(streams.len() as u32);
                    streams.push(s);
                }
            }
        }
        let re = |v: Vec<Option<u32>>| -> Vec<Option<u32>> {
            v.into_iter()
                .map(|x| x.map(|j| renumber[j as usize]))
                .collect()
        };
        Ok((
            Prefilter {
                groups,
                always: every,
                packet: re(packet),
                unreassembled: re(unreassembled),
                stream: re(stream),
                blocks,
                streams,
            },
            report,
        ))
    }

    /// The group's rules without a fast pattern.
    pub fn always(&self, group: usize) -> &[u32] {
        self.always.get(group).map_or(&[], Vec::as_slice)
    }

    /// The group's packet rules' database.
    pub fn packet(&self, group: usize) -> Option<&BlockDatabase> {
        let i = (*self.packet.get(group)?)?;
        self.blocks.get(i as usize)
    }

    /// The group's packet and stream rules in one block database, for a
    /// packet whose direction is not reassembled.
    pub fn unreassembled(&self, group: usize) -> Option<&BlockDatabase> {
        let i = (*self.unreassembled.get(group)?)?;
        self.blocks.get(i as usize)
    }

    /// Which streaming database the group's stream rules are in.
    pub fn stream_index(&self, group: usize) -> Option<usize> {
        self.stream
            .get(group)
            .copied()
            .flatten()
            .map(|i| i as usize)
    }

    /// Every block database.
    pub fn blocks(&self) -> &[BlockDatabase] {
        &self.blocks
    }

    /// Every streaming database, by `stream_index`.
    pub fn streams(&self) -> &[StreamingDatabase] {
        &self.streams
    }
}

enum Compiled {
    Block(BlockDatabase),
    Streaming(StreamingDatabase),
}

/// Compiles every job, spread over `threads` threads, in job order.
fn compile_all(
    jobs: &[Job],
    threads: usize,
    pattern: &(impl Fn(u32, bool) -> Result<Pattern, String> + Sync),
) -> Result<Vec<Compiled>, String> {
    let one = |(list, streaming): &Job| -> Result<Compiled, String> {
        let pats: Patterns = list
            .iter()
            .map(|&i| pattern(i, *streaming))
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .collect();
        if *streaming {
            pats.build()
                .map(Compiled::Streaming)
                .map_err(|e| format!("Hyperscan compile (stream): {e}"))
        } else {
            pats.build()
                .map(Compiled::Block)
                .map_err(|e| format!("Hyperscan compile: {e}"))
        }
    };
    // Biggest first, each thread taking the next: the threads end together.
    let mut order: Vec<usize> = (0..jobs.len()).collect();
    order.sort_by_key(|&j| std::cmp::Reverse(jobs[j].0.len()));
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut out: Vec<Option<Result<Compiled, String>>> = (0..jobs.len()).map(|_| None).collect();
    let done: Vec<Vec<(usize, Result<Compiled, String>)>> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads.min(jobs.len()).max(1))
            .map(|_| {
                s.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let k = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(&j) = order.get(k) else {
                            break;
                        };
                        mine.push((j, one(&jobs[j])));
                    }
                    mine
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().unwrap_or_default())
            .collect()
    });
    for (j, r) in done.into_iter().flatten() {
        out[j] = Some(r);
    }
    out.into_iter()
        .map(|r| r.unwrap_or_else(|| Err("Hyperscan compile: a compile thread failed".into())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::{load_text, PacketView};
    use std::collections::BTreeMap;

    #[test]
    fn ranges_complement_and_intersect() {
        let r = merged(vec![(5u16, 9), (1, 2), (3, 4), (20, 30)]);
        assert_eq!(r, vec![(1, 9), (20, 30)]);
        assert_eq!(complement(&r), vec![(0, 0), (10, 19), (31, u16::MAX)]);
        assert_eq!(complement(&[(0u16, u16::MAX)]), vec![]);
        assert_eq!(complement::<u16>(&[]), vec![(0, u16::MAX)]);
        assert_eq!(intersect(&r, &[(8, 25)]), vec![(8, 9), (20, 25)]);
    }

    fn home() -> Home {
        let v = crate::rules::vars::Vars::suricata_defaults();
        Home::new(
            v.addr_matcher(&crate::rules::AddrExpr::Var("HOME_NET".into()))
                .unwrap(),
        )
    }

    #[test]
    fn sides_against_home_net() {
        let v = crate::rules::vars::Vars::suricata_defaults();
        let h = home().space;
        let side = |e: &str| {
            let expr = crate::rules::parse_addr(e).unwrap();
            Side::of_space(&Space::of(&v.addr_matcher(&expr).unwrap()), &h)
        };
        assert_eq!(side("$HOME_NET"), Side::Home);
        assert_eq!(side("$EXTERNAL_NET"), Side::External);
        assert_eq!(side("!$HOME_NET"), Side::External);
        assert_eq!(side("[10.1.0.0/16,!10.1.2.3]"), Side::Home);
        assert_eq!(side("8.8.8.8"), Side::External);
        assert_eq!(side("any"), Side::Either);
        assert_eq!(side("[10.0.0.0/8,8.8.8.8]"), Side::Either);
    }

    const RULES: &str = r#"
alert tcp $EXTERNAL_NET any -> $HOME_NET 445 (content:"smb"; sid:1;)
alert tcp $HOME_NET any -> $EXTERNAL_NET $HTTP_PORTS (content:"get"; sid:2;)
alert tcp any any -> any any (content:"all"; sid:3;)
alert tcp $EXTERNAL_NET $HTTP_PORTS -> $HOME_NET any (flow:to_client,established; content:"resp"; sid:4;)
alert tcp any any <> $HOME_NET [8000:8100,!8050] (content:"bidir"; sid:5;)
alert udp any any -> any 53 (content:"dns"; sid:6;)
alert ip any any -> any any (content:"ipany"; sid:7;)
alert tcp $HOME_NET any -> $HOME_NET !22 (flow:to_server; content:"east"; dsize:>3; sid:8;)
alert icmp any any -> any any (content:"ping"; sid:9;)
alert tcp 192.0.2.0/24 any -> any 1:1023 (content:"low"; sid:10;)
"#;

    /// Every rule whose header could match a packet is in its group:
    /// tried over addresses inside and outside HOME_NET, both directions,
    /// the protocols and ports around every port the rules name.
    #[test]
    fn a_group_holds_every_rule_that_could_match() {
        let (e, _) = load_text(RULES, &BTreeMap::new());
        let all: Vec<u32> = (0..e.rules.len() as u32).collect();
        let g = Groups::build(&e.rules, &all, &home(), 2);
        let addrs: Vec<IpAddr> = ["10.1.2.3", "192.168.1.1", "8.8.8.8", "192.0.2.7", "fd00::1"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        let ports = [
            0u16, 1, 21, 22, 23, 53, 79, 80, 81, 445, 1023, 1024, 8000, 8049, 8050, 8051, 8100,
            8101, 65535,
        ];
        let mut smaller = 0;
        let mut checked = 0;
        for proto in [6u8, 17, 1] {
            for &src in &addrs {
                for &dst in &addrs {
                    if src.is_ipv4() != dst.is_ipv4() {
                        continue;
                    }
                    for &sp in &ports {
                        for &dp in &ports {
                            for to_server in [true, false] {
                                let p = PacketView {
                                    proto,
                                    src,
                                    dst,
                                    src_port: sp,
                                    dst_port: dp,
                                    ..crate::detect::tests::pkt(b"", to_server)
                                };
                                let gi = g.of(proto, to_server, (src, sp), (dst, dp));
                                let m = &g.members[gi];
                                let sides = g.home.sides_of(src, dst);
                                for (i, r) in e.rules.iter().enumerate() {
                                    // The header on the packet's $HOME_NET
                                    // sides is the header on its addresses.
                                    assert_eq!(
                                        r.header_holds_home(&p, sides.0, sides.1),
                                        r.header_holds(&p),
                                        "sid {} on {p:?}",
                                        r.sid
                                    );
                                    let could = r.header_holds(&p)
                                        && r.flow.to_server.is_none_or(|t| t == to_server);
                                    if could {
                                        checked += 1;
                                        assert!(
                                            m.contains(&(i as u32)),
                                            "sid {} left out of group {gi} for {p:?}",
                                            r.sid
                                        );
                                    }
                                }
                                smaller += usize::from(m.len() < e.rules.len());
                            }
                        }
                    }
                }
            }
        }
        assert!(checked > 1000);
        assert!(smaller > 0, "grouping narrowed nothing");
    }

    #[test]
    fn east_west_traffic_skips_external_rules_and_other_ports() {
        let (e, _) = load_text(RULES, &BTreeMap::new());
        let all: Vec<u32> = (0..e.rules.len() as u32).collect();
        // Room for every port set: what each group holds is exact.
        let g = Groups::build(&e.rules, &all, &home(), 8);
        let sids = |gi: usize| -> Vec<u32> {
            g.members[gi]
                .iter()
                .map(|&i| e.rules[i as usize].sid)
                .collect()
        };
        let a: IpAddr = "10.1.2.3".parse().unwrap();
        let b: IpAddr = "10.9.9.9".parse().unwrap();
        let x: IpAddr = "8.8.8.8".parse().unwrap();
        // sid 5 (`<>`) may match with the client's port as its server
        // port, so any server port of a flow with a home client takes it.
        assert_eq!(sids(g.of(6, true, (a, 40000), (b, 9000))), vec![3, 5, 7, 8]);
        assert_eq!(sids(g.of(6, false, (b, 9000), (a, 40000))), vec![3, 5, 7]);
        assert_eq!(sids(g.of(6, true, (a, 40000), (x, 80))), vec![2, 3, 5, 7]);
        // sid 10's 192.0.2.0/24 is outside HOME_NET, as 8.8.8.8 is: the
        // side is all a group knows of an address.
        assert_eq!(sids(g.of(6, true, (x, 40000), (a, 445))), vec![1, 3, 7, 10]);
        assert_eq!(sids(g.of(6, true, (x, 40000), (a, 8000))), vec![3, 5, 7]);
        // To the client only the server's port is keyed on: sids 1 and 10
        // name no source port, so they stay (their header says no later).
        assert_eq!(
            sids(g.of(6, false, (x, 80), (a, 40000))),
            vec![1, 3, 4, 5, 7, 10]
        );
        assert_eq!(sids(g.of(17, true, (a, 5353), (b, 53))), vec![6, 7]);
        assert_eq!(sids(g.of(1, true, (a, 0), (b, 0))), vec![7, 9]);
    }

    #[test]
    fn a_family_keeps_at_most_its_port_groups() {
        let mut text = String::new();
        for p in 1..=40 {
            text.push_str(&format!(
                "alert tcp any any -> any {} (content:\"p{p}\"; sid:{p};)\n",
                p * 100
            ));
        }
        let (e, _) = load_text(&text, &BTreeMap::new());
        let all: Vec<u32> = (0..e.rules.len() as u32).collect();
        let g = Groups::build(&e.rules, &all, &home(), 4);
        let a: IpAddr = "10.1.2.3".parse().unwrap();
        let mut seen = std::collections::BTreeSet::new();
        for p in 0..=u16::MAX {
            let gi = g.of(6, true, (a, 40000), (a, p));
            seen.insert(gi);
            // Every port still finds its own rule.
            if p % 100 == 0 && (1..=40).contains(&(p / 100)) {
                assert!(g.members[gi]
                    .iter()
                    .any(|&i| e.rules[i as usize].sid == u32::from(p / 100)));
            }
        }
        assert!(seen.len() <= 4, "{} groups", seen.len());
    }
}
