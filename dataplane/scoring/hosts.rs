//! What one flow's record cannot see: the scorer's bounded per-source and
//! per-peer-group tables. A scan, a beacon or credential stuffing is many
//! small flows from one host; a stolen model is one ordinary download by a
//! client whose subnet never talks to that store. On each record the
//! scorer looks the flow's client up, notes the flow the first time it
//! sees it, and fills the record's host features (`features::HOST`) from
//! what the tables hold.
//!
//! Both tables are fixed arrays made at start, set-associative: a key
//! hashes to a set of `WAYS` entries; a new key takes a free entry or
//! evicts the one seen longest ago, and the eviction is counted. Memory is
//! `hosts × HOST_ENTRY_BYTES` plus `4 × hosts` peer entries of 16 bytes,
//! and nothing is allocated per record. Times are the records' own packet
//! times, so a replay gives the same features at any speed.

use super::features::{FeatureRecord, HOST_FIRST, HTTP_ERRORS_AT};
use crate::decode::Network;

/// Entries per set.
const WAYS: usize = 4;
/// Flows a host entry remembers (its latest ones).
pub const HOST_FLOWS: usize = 32;
/// The window the host features count flows in (by flow start).
pub const HOST_WINDOW_NS: u64 = 300_000_000_000;
/// Default hosts in the table (`--host-table`).
pub const HOSTS: usize = 16_384;
/// Bytes one host entry takes.
pub const HOST_ENTRY_BYTES: usize = std::mem::size_of::<Host>();

#[derive(Debug, Clone, Copy, Default)]
struct Seen {
    start_ns: u64,
    /// The flow (worker and flow id), so its later records are not new.
    id: u64,
    /// Its destination address, port and protocol, hashed.
    dst: u32,
    /// Its destination address alone, hashed.
    daddr: u32,
    dport: u16,
    /// A record of it counted an HTTP error response.
    err: bool,
}

#[derive(Debug, Clone, Copy)]
struct Host {
    addr: [u8; 16],
    used: bool,
    last_ns: u64,
    /// Where the next flow goes in `flows` (a ring of the latest).
    next: u8,
    len: u8,
    flows: [Seen; HOST_FLOWS],
}

impl Default for Host {
    fn default() -> Self {
        Host {
            addr: [0; 16],
            used: false,
            last_ns: 0,
            next: 0,
            len: 0,
            flows: [Seen::default(); HOST_FLOWS],
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Peer {
    /// Hash of (client subnet, destination, port, protocol); 0 is free.
    key: u64,
    flows: u32,
    last_ns: u64,
    /// One bit per client seen (by hash): distinct clients, roughly.
    clients: u64,
}

/// Counters for the stats.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HostCounters {
    pub hosts_evicted: u64,
    pub peers_evicted: u64,
    pub flows_noted: u64,
}

/// The tables.
#[derive(Debug)]
pub struct HostTable {
    hosts: Vec<Host>,
    peers: Vec<Peer>,
    pub counters: HostCounters,
}

fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

fn hash_bytes(b: &[u8], seed: u64) -> u64 {
    let mut h = seed;
    for c in b.chunks(8) {
        let mut w = [0u8; 8];
        w[..c.len()].copy_from_slice(c);
        h = mix(h ^ u64::from_le_bytes(w));
    }
    h
}

/// The client's peer group: its /16 (IPv4) or /48 (IPv6).
fn subnet(network: Network, addr: &[u8; 16]) -> [u8; 16] {
    let keep = if network == Network::Ipv6 { 6 } else { 2 };
    let mut s = [0u8; 16];
    s[..keep].copy_from_slice(&addr[..keep]);
    s
}

impl HostTable {
    /// Room for `hosts` clients (rounded up to whole sets) and four times
    /// as many peer groups.
    pub fn new(hosts: usize) -> HostTable {
        let sets = hosts.div_ceil(WAYS).max(1);
        HostTable {
            hosts: vec![Host::default(); sets * WAYS],
            peers: vec![Peer::default(); sets * WAYS * 4],
            counters: HostCounters::default(),
        }
    }

    /// The peer-group entries in use, (key, flows, last seen, client
    /// map), to be saved with the anomaly detector's state: familiarity is
    /// learnt too.
    pub fn export_peers(&self) -> Vec<[u64; 4]> {
        self.peers
            .iter()
            .filter(|p| p.key != 0)
            .map(|p| [p.key, u64::from(p.flows), p.last_ns, p.clients])
            .collect()
    }

    /// Puts saved peer-group entries back (a table smaller than the saved
    /// one keeps what fits, evicting as it would).
    pub fn import_peers(&mut self, saved: &[[u64; 4]]) {
        for &[key, flows, last, clients] in saved {
            if key & 1 == 1 {
                let p = self.peer(key, last);
                p.flows = u32::try_from(flows).unwrap_or(u32::MAX);
                p.clients = clients;
            }
        }
    }

    /// Clients the table holds at most.
    pub fn entries(&self) -> usize {
        self.hosts.len()
    }

    /// Bytes the tables take.
    pub fn bytes(&self) -> usize {
        self.hosts.len() * HOST_ENTRY_BYTES + self.peers.len() * std::mem::size_of::<Peer>()
    }

    /// Notes `r`'s flow (once per flow) and fills its host features.
    pub fn observe(&mut self, r: &mut FeatureRecord) {
        let a = &r.at;
        let now = r.start_ns.max(1);
        let id = (u64::from(a.worker) << 48) ^ a.flow_id;
        // The server: its address, port and protocol.
        let server = hash_bytes(&a.dst, u64::from(a.dst_port) << 8 | u64::from(a.proto));
        let dst = server as u32;
        let daddr = hash_bytes(&a.dst, 0x0064_7374) as u32;
        let err = r.values[HTTP_ERRORS_AT] > 0.0;
        let h = self.host(&a.src, now);
        let seen = h.flows[..usize::from(h.len)]
            .iter_mut()
            .find(|s| s.id == id);
        let known = seen.is_some();
        if let Some(s) = seen {
            s.err |= err;
        } else {
            let k = usize::from(h.next);
            h.flows[k] = Seen {
                start_ns: r.start_ns,
                id,
                dst,
                daddr,
                dport: a.dst_port,
                err,
            };
            h.next = ((k + 1) % HOST_FLOWS) as u8;
            h.len = (usize::from(h.len) + 1).min(HOST_FLOWS) as u8;
        }
        h.last_ns = h.last_ns.max(now);
        let from = r.start_ns.saturating_sub(HOST_WINDOW_NS);
        let mut n = 0u32;
        let mut errs = 0u32;
        let mut ports = [0u16; HOST_FLOWS];
        let mut addrs = [0u32; HOST_FLOWS];
        let (mut np, mut na) = (0, 0);
        let mut same = [0u64; HOST_FLOWS];
        let mut ns = 0;
        for s in &h.flows[..usize::from(h.len)] {
            if s.start_ns < from {
                continue;
            }
            n += 1;
            errs += u32::from(s.err);
            if !ports[..np].contains(&s.dport) {
                ports[np] = s.dport;
                np += 1;
            }
            if !addrs[..na].contains(&s.daddr) {
                addrs[na] = s.daddr;
                na += 1;
            }
            if s.dst == dst {
                same[ns] = s.start_ns;
                ns += 1;
            }
        }
        let v = &mut r.values[HOST_FIRST..];
        v[0] = n as f32;
        v[1] = np as f32;
        v[2] = na as f32;
        v[3] = ns as f32;
        let (period, cv) = periodicity(&mut same[..ns]);
        v[4] = period;
        v[5] = cv;
        v[6] = errs as f32;
        if !known {
            self.counters.flows_noted += 1;
        }
        let client_bit = 1u64 << (hash_bytes(&a.src, 0x636c) % 64);
        let net = subnet(a.network, &a.src);
        for (k, key) in [hash_bytes(&net, server), mix(server ^ 0x0061_6c6c)]
            .into_iter()
            .enumerate()
        {
            let peer = self.peer(key | 1, now);
            // Earlier flows: a flow already noted counted itself.
            r.values[HOST_FIRST + 7 + k] = peer.flows.saturating_sub(u32::from(known)) as f32;
            if !known {
                peer.flows = peer.flows.saturating_add(1);
            }
            peer.clients |= client_bit;
            if k == 1 {
                r.values[HOST_FIRST + 9] = peer.clients.count_ones() as f32;
            }
        }
    }

    /// The client's entry, made (evicting the set's stalest) if new.
    fn host(&mut self, addr: &[u8; 16], now: u64) -> &mut Host {
        let set = (hash_bytes(addr, 0x6f73_7473) as usize % (self.hosts.len() / WAYS)) * WAYS;
        let ways = &mut self.hosts[set..set + WAYS];
        let k = match ways.iter().position(|h| h.used && h.addr == *addr) {
            Some(k) => k,
            None => {
                let k = ways.iter().position(|h| !h.used).unwrap_or_else(|| {
                    self.counters.hosts_evicted += 1;
                    stalest(ways.iter().map(|h| h.last_ns))
                });
                ways[k] = Host {
                    addr: *addr,
                    used: true,
                    last_ns: now,
                    ..Host::default()
                };
                k
            }
        };
        &mut self.hosts[set + k]
    }

    /// A peer entry: flows from one subnet (or from anywhere) to one
    /// server address, port and protocol, by the hash of those.
    fn peer(&mut self, key: u64, now: u64) -> &mut Peer {
        let set = (mix(key) as usize % (self.peers.len() / WAYS)) * WAYS;
        let ways = &mut self.peers[set..set + WAYS];
        let k = match ways.iter().position(|p| p.key == key) {
            Some(k) => k,
            None => {
                let k = ways.iter().position(|p| p.key == 0).unwrap_or_else(|| {
                    self.counters.peers_evicted += 1;
                    stalest(ways.iter().map(|p| p.last_ns))
                });
                ways[k] = Peer {
                    key,
                    flows: 0,
                    last_ns: now,
                    clients: 0,
                };
                k
            }
        };
        let p = &mut self.peers[set + k];
        p.last_ns = p.last_ns.max(now);
        p
    }
}

fn stalest(times: impl Iterator<Item = u64>) -> usize {
    times
        .enumerate()
        .min_by_key(|&(_, t)| t)
        .map_or(0, |(k, _)| k)
}

/// The mean gap between the starts (seconds) and its coefficient of
/// variation; missing below three starts.
fn periodicity(starts: &mut [u64]) -> (f32, f32) {
    if starts.len() < 3 {
        return (f32::NAN, f32::NAN);
    }
    starts.sort_unstable();
    let n = (starts.len() - 1) as f64;
    let gaps = starts.windows(2).map(|w| (w[1] - w[0]) as f64 / 1e9);
    let mean = gaps.clone().sum::<f64>() / n;
    let var = gaps.map(|g| (g - mean) * (g - mean)).sum::<f64>() / n;
    let cv = if mean > 0.0 { var.sqrt() / mean } else { 0.0 };
    (mean as f32, cv as f32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::features::{index, Trigger, N_FEATURES};
    use crate::flow::EventTuple;

    fn rec(src: [u8; 4], dst: [u8; 4], dport: u16, flow_id: u64, start_s: f64) -> FeatureRecord {
        let mut at = EventTuple {
            network: Network::Ipv4,
            proto: 6,
            dst_port: dport,
            flow_id,
            ..EventTuple::default()
        };
        at.src[..4].copy_from_slice(&src);
        at.dst[..4].copy_from_slice(&dst);
        let start_ns = (start_s * 1e9) as u64;
        at.ts_ns = start_ns;
        FeatureRecord {
            at,
            start_ns,
            slot: 0,
            generation: 1,
            trigger: Trigger::End,
            values: [f32::NAN; N_FEATURES],
        }
    }

    fn get(r: &FeatureRecord, name: &str) -> f32 {
        r.values[index(name).unwrap()]
    }

    #[test]
    fn a_scan_shows_many_ports_a_beacon_its_period() {
        let mut t = HostTable::new(64);
        let mut last = None;
        for k in 0..40u16 {
            let mut r = rec(
                [10, 1, 0, 7],
                [10, 2, 0, 1],
                100 + k,
                u64::from(k),
                1.0 + 0.01 * f64::from(k),
            );
            t.observe(&mut r);
            last = Some(r);
        }
        let r = last.unwrap();
        assert_eq!(
            get(&r, "host_flows"),
            HOST_FLOWS as f32,
            "saturates at the ring"
        );
        assert_eq!(get(&r, "host_dst_ports"), HOST_FLOWS as f32);
        assert_eq!(get(&r, "host_dst_addrs"), 1.0, "one target");
        assert_eq!(get(&r, "host_same_dst"), 1.0);
        assert!(get(&r, "host_period").is_nan());
        // A beacon: every 5 s to one place; its second record of a flow is
        // not a new flow.
        let mut r = rec([10, 1, 0, 8], [198, 51, 100, 9], 443, 1000, 10.0);
        for k in 0..6 {
            r = rec(
                [10, 1, 0, 8],
                [198, 51, 100, 9],
                443,
                1000 + k,
                10.0 + 5.0 * k as f64,
            );
            t.observe(&mut r);
        }
        let mut again = r;
        t.observe(&mut again);
        for r in [r, again] {
            assert_eq!(get(&r, "host_flows"), 6.0);
            assert_eq!(get(&r, "host_same_dst"), 6.0);
            assert_eq!(get(&r, "host_period"), 5.0);
            assert_eq!(get(&r, "host_period_cv"), 0.0);
        }
        assert_eq!(t.counters.flows_noted, 46);
    }

    #[test]
    fn the_window_forgets_old_flows() {
        let mut t = HostTable::new(64);
        t.observe(&mut rec([10, 1, 0, 7], [10, 2, 0, 1], 80, 1, 1.0));
        let mut r = rec([10, 1, 0, 7], [10, 2, 0, 1], 80, 2, 1.0 + 301.0);
        t.observe(&mut r);
        assert_eq!(get(&r, "host_flows"), 1.0);
    }

    #[test]
    fn a_subnet_new_to_a_destination_is_rare_once_and_familiar_after() {
        let mut t = HostTable::new(64);
        let mut counts = Vec::new();
        for k in 0..3 {
            let mut r = rec(
                [10, 64, 3, k as u8],
                [10, 30, 0, 5],
                9000,
                k,
                1.0 + k as f64,
            );
            t.observe(&mut r);
            counts.push(get(&r, "peer_flows"));
        }
        assert_eq!(
            counts,
            [0.0, 1.0, 2.0],
            "the same /16: flows before this one"
        );
        let mut r = rec([10, 97, 3, 1], [10, 30, 0, 5], 9000, 9, 5.0);
        t.observe(&mut r);
        assert_eq!(get(&r, "peer_flows"), 0.0, "another subnet has no history");
        assert_eq!(get(&r, "dst_flows"), 3.0, "but the server has");
        assert!(
            (3.0..=4.0).contains(&get(&r, "dst_clients")),
            "four clients, a hash collision at most"
        );
        let mut r2 = r;
        t.observe(&mut r2);
        assert_eq!(
            get(&r2, "peer_flows"),
            0.0,
            "a flow's second record is not a second flow"
        );
        // Familiarity survives a restart through the saved peers.
        let mut fresh = HostTable::new(64);
        fresh.import_peers(&t.export_peers());
        let mut r = rec([10, 64, 9, 9], [10, 30, 0, 5], 9000, 77, 9.0);
        fresh.observe(&mut r);
        assert_eq!(get(&r, "peer_flows"), 3.0);
        assert_eq!(get(&r, "dst_flows"), 4.0);
    }

    #[test]
    fn a_full_set_evicts_the_stalest_and_counts_it() {
        let mut t = HostTable::new(4);
        assert_eq!(t.hosts.len(), 4);
        for k in 0..6u8 {
            t.observe(&mut rec(
                [10, 0, 0, k],
                [10, 2, 0, 1],
                80,
                u64::from(k),
                f64::from(k),
            ));
        }
        assert_eq!(t.counters.hosts_evicted, 2);
        // Host 0 was the stalest: it comes back as new.
        let mut r = rec([10, 0, 0, 0], [10, 2, 0, 1], 80, 99, 10.0);
        t.observe(&mut r);
        assert_eq!(get(&r, "host_flows"), 1.0);
        assert!(t.bytes() >= 4 * HOST_ENTRY_BYTES);
    }
}
