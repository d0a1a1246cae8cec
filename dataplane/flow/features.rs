//! The flow feature record: what a worker knows about a flow, as a fixed
//! list of numbers a model scores. `FEATURES` is the one table of names,
//! units and how each is computed (`tollgate features` prints it); models
//! name their features after it and are checked against it at load.

use crate::flow::tcp::Dir;

/// One feature: its name (as models spell it), unit, and how it is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Feature {
    pub name: &'static str,
    pub unit: &'static str,
    pub how: &'static str,
}

const fn f(name: &'static str, unit: &'static str, how: &'static str) -> Feature {
    Feature { name, unit, how }
}

/// Payload bytes per direction whose byte entropy is measured: the first
/// this many of the direction's payload, across packets.
pub const ENTROPY_BYTES: usize = 128;

pub const N_FEATURES: usize = 45;
/// Where the host features begin: the scorer fills these from its host
/// and peer-group tables (`scoring::hosts`); a worker leaves them missing.
pub const HOST_FIRST: usize = 35;

/// What the worker counts on a flow besides packets: signature alerts per
/// class (`hit_bucket`), then HTTP responses with an error status.
pub const HIT_BUCKETS: usize = 5;
pub type Hits = [u16; HIT_BUCKETS];
/// The `Hits` entry for HTTP responses of status 400 and up.
pub const HTTP_ERRORS: usize = 4;
/// Where that count sits in the record (`http_errors`).
pub const HTTP_ERRORS_AT: usize = 30 + HTTP_ERRORS;

/// Whether `h` counts any signature alert (an HTTP error is not one).
pub fn alerted(h: &Hits) -> bool {
    h[..HTTP_ERRORS].iter().any(|&n| n > 0)
}
/// The version of the feature list below: a change to a feature's name,
/// order or computation changes it, and models trained on another are
/// refused (scripts/train_flow_model.py records it in the model).
pub const FEATURE_SCHEMA: &str = "2";

/// Every feature, in record order.
pub const FEATURES: [Feature; N_FEATURES] = [
    f("duration", "s", "last packet's time minus the first's"),
    f("pkts_toserver", "packets", "packets client to server"),
    f("pkts_toclient", "packets", "packets server to client"),
    f("bytes_toserver", "bytes", "frame bytes client to server"),
    f("bytes_toclient", "bytes", "frame bytes server to client"),
    f("payload_min_toserver", "bytes", "smallest transport payload client to server, of packets with one (missing if none)"),
    f("payload_max_toserver", "bytes", "largest such payload"),
    f("payload_mean_toserver", "bytes", "mean of those payload sizes"),
    f("payload_std_toserver", "bytes", "population standard deviation of those payload sizes"),
    f("payload_min_toclient", "bytes", "as payload_min_toserver, server to client"),
    f("payload_max_toclient", "bytes", "as payload_max_toserver, server to client"),
    f("payload_mean_toclient", "bytes", "as payload_mean_toserver, server to client"),
    f("payload_std_toclient", "bytes", "as payload_std_toserver, server to client"),
    f("iat_mean", "s", "mean time between consecutive packets of the flow, both directions (missing below 2 packets)"),
    f("iat_std", "s", "population standard deviation of those gaps"),
    f("iat_max", "s", "largest of those gaps"),
    f("tcp_syn", "packets", "TCP packets with SYN"),
    f("tcp_fin", "packets", "TCP packets with FIN"),
    f("tcp_rst", "packets", "TCP packets with RST"),
    f("tcp_psh", "packets", "TCP packets with PSH"),
    f("tcp_ack", "packets", "TCP packets with ACK"),
    f("tcp_urg", "packets", "TCP packets with URG"),
    f("up_down_ratio", "ratio", "bytes_toserver / bytes_toclient (missing when nothing came back)"),
    f("entropy_toserver", "bits/byte", "Shannon entropy of the first 128 payload bytes client to server, across packets (fewer if the flow sent fewer; missing if none)"),
    f("entropy_toclient", "bits/byte", "as entropy_toserver, server to client"),
    f("app_proto", "code", "0 none found (or not yet), 1 http, 2 tls, 3 dns"),
    f("proto", "code", "IP protocol number"),
    f("dst_port_class", "code", "server port: 0 web (80, 443, 8000, 8080, 8443), 1 other below 1024, 2 1024-49151, 3 above, 4 none (ICMP, other)"),
    f("dst_port", "port", "server port (0 without ports)"),
    f("vlan_tagged", "flag", "1 when the flow carries a VLAN tag or a VXLAN VNI"),
    f("hits_credential", "alerts", "signature alerts on the flow with classtype credential-leak"),
    f("hits_injection", "alerts", "signature alerts with classtype prompt-injection"),
    f("hits_model", "alerts", "signature alerts with classtype malicious-model"),
    f("hits_other", "alerts", "signature alerts of any other class"),
    f("http_errors", "responses", "HTTP responses with status 400 or above on the flow (refused tokens, missing paths)"),
    f("host_flows", "flows", "flows from this client the scorer has seen start in the 300 s before this one, this one included (its latest 32 at most; missing without the host table)"),
    f("host_dst_ports", "ports", "distinct server ports among those flows"),
    f("host_dst_addrs", "addresses", "distinct server addresses among those flows"),
    f("host_same_dst", "flows", "those flows to this flow's server address, port and protocol"),
    f("host_period", "s", "mean gap between the starts of those same-server flows (missing below 3)"),
    f("host_period_cv", "ratio", "their gaps' standard deviation over their mean: near 0 for a fixed rhythm (missing below 3)"),
    f("host_error_flows", "flows", "those flows (all servers) whose records so far counted an HTTP error response"),
    f("peer_flows", "flows", "earlier flows from this client's /16 (IPv6 /48) to this server address, port and protocol, since the scorer started: 0 for a subnet new to the server"),
    f("dst_flows", "flows", "earlier flows from any client to this server address, port and protocol, since the scorer started: 0 for a server nobody used"),
    f("dst_clients", "clients", "distinct clients this server address, port and protocol has seen, this one included, as bits set in a 64-bit map of client hashes (exact while few, saturating at 64)"),
];

/// Index of a feature by name.
pub fn index(name: &str) -> Option<usize> {
    FEATURES.iter().position(|f| f.name == name)
}

/// The signature-hit feature an alert of classtype `class` counts toward.
pub fn hit_bucket(class: Option<&str>) -> usize {
    match class {
        Some("credential-leak") => 0,
        Some("prompt-injection") => 1,
        Some("malicious-model") => 2,
        _ => 3,
    }
}

/// Why a record was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// The flow ended (closed, timed out, evicted, shutdown).
    End,
    /// Another `--feature-bytes` went through the flow.
    Bytes,
    /// `--feature-interval` passed since the last record.
    Interval,
    /// The flow's first `--feature-packets` packets went through: an early
    /// record, so that an inline verdict still finds most of the flow.
    Packets,
}

impl Trigger {
    pub fn name(self) -> &'static str {
        match self {
            Trigger::End => "end",
            Trigger::Bytes => "bytes",
            Trigger::Interval => "interval",
            Trigger::Packets => "packets",
        }
    }
}

/// What crosses a worker's ring to the scorer: fixed size, `Copy`, no
/// pointers. `generation` counts the flows its table slot has held, so a
/// verdict for it never reaches a later flow in the same slot.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FeatureRecord {
    /// The flow (client first), its worker, and when the record was made.
    pub at: crate::flow::EventTuple,
    /// The flow's first packet's time: with the tuple, what joins a record
    /// to the generator's ground truth (its `start`).
    pub start_ns: u64,
    pub slot: u32,
    pub generation: u32,
    pub trigger: Trigger,
    pub values: [f32; N_FEATURES],
}

/// Running statistics of one direction's payload sizes.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Sizes {
    n: u32,
    min: u32,
    max: u32,
    sum: f64,
    sumsq: f64,
}

impl Sizes {
    fn add(&mut self, v: u32) {
        if self.n == 0 || v < self.min {
            self.min = v;
        }
        self.max = self.max.max(v);
        self.n += 1;
        let x = f64::from(v);
        self.sum += x;
        self.sumsq += x * x;
    }

    /// (min, max, mean, std), missing (NaN) without samples.
    fn stats(&self) -> [f32; 4] {
        if self.n == 0 {
            return [f32::NAN; 4];
        }
        let n = f64::from(self.n);
        let mean = self.sum / n;
        let var = (self.sumsq / n - mean * mean).max(0.0);
        [
            self.min as f32,
            self.max as f32,
            mean as f32,
            var.sqrt() as f32,
        ]
    }
}

/// Shannon entropy in bits per byte.
pub fn entropy(b: &[u8]) -> f32 {
    if b.is_empty() {
        return f32::NAN;
    }
    let mut counts = [0u16; 256];
    for &x in b {
        counts[usize::from(x)] += 1;
    }
    let n = b.len() as f64;
    let h: f64 = counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum();
    h as f32
}

/// A flow's feature state, kept beside its table entry while scoring.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FlowFeatures {
    sizes: [Sizes; 2],
    /// The first payload bytes of each direction, for their entropy.
    head: [[u8; ENTROPY_BYTES]; 2],
    head_len: [u8; 2],
    /// Inter-arrival times, in seconds.
    last_ts: u64,
    iat_n: u32,
    iat_sum: f64,
    iat_sumsq: f64,
    iat_max: f64,
    flags: [u32; 6],
    hits: Hits,
    /// Bytes and time at the last record sent.
    pub sent_bytes: u64,
    pub sent_ns: u64,
    /// Packets of the flow seen so far (both directions).
    pub packets: u32,
}

impl Default for FlowFeatures {
    fn default() -> Self {
        FlowFeatures {
            sizes: [Sizes::default(); 2],
            head: [[0; ENTROPY_BYTES]; 2],
            head_len: [0; 2],
            last_ts: 0,
            iat_n: 0,
            iat_sum: 0.0,
            iat_sumsq: 0.0,
            iat_max: 0.0,
            flags: [0; 6],
            hits: [0; HIT_BUCKETS],
            packets: 0,
            sent_bytes: 0,
            sent_ns: 0,
        }
    }
}

impl FlowFeatures {
    /// Accounts one packet of `dir` (`first`: the flow's first packet).
    pub fn packet(
        &mut self,
        dir: Dir,
        ts_ns: u64,
        first: bool,
        payload: &[u8],
        tcp_flags: Option<u8>,
    ) {
        let d = dir as usize;
        self.packets = self.packets.saturating_add(1);
        if !first {
            let gap = ts_ns.saturating_sub(self.last_ts) as f64 / 1e9;
            self.iat_n += 1;
            self.iat_sum += gap;
            self.iat_sumsq += gap * gap;
            self.iat_max = self.iat_max.max(gap);
        }
        self.last_ts = self.last_ts.max(ts_ns);
        if !payload.is_empty() {
            self.sizes[d].add(payload.len() as u32);
            let have = usize::from(self.head_len[d]);
            if have < ENTROPY_BYTES {
                let n = payload.len().min(ENTROPY_BYTES - have);
                self.head[d][have..have + n].copy_from_slice(&payload[..n]);
                self.head_len[d] = (have + n) as u8;
            }
        }
        if let Some(fl) = tcp_flags {
            // SYN, FIN, RST, PSH, ACK, URG.
            for (k, bit) in [0x02u8, 0x01, 0x04, 0x08, 0x10, 0x20].iter().enumerate() {
                self.flags[k] += u32::from(fl & bit != 0);
            }
        }
    }

    /// An alert of the given hit bucket on this flow.
    pub fn hit(&mut self, bucket: usize) {
        if let Some(h) = self.hits.get_mut(bucket) {
            *h = h.saturating_add(1);
        }
    }

    /// Alerts counted per hit bucket elsewhere (a burst, a stream flush).
    pub fn add_hits(&mut self, hits: &Hits) {
        for (h, &n) in self.hits.iter_mut().zip(hits) {
            *h = h.saturating_add(n);
        }
    }
}

/// The flow-level facts the table keeps anyway.
#[derive(Debug, Clone, Copy)]
pub struct FlowFacts {
    pub start_ns: u64,
    pub last_ns: u64,
    pub pkts: [u64; 2],
    pub bytes: [u64; 2],
    pub proto: u8,
    pub server_port: Option<u16>,
    pub tagged: bool,
    /// The app layer's protocol code (`app_proto` feature).
    pub app_proto: u8,
}

/// The record's values for a flow.
pub fn values(ff: &FlowFeatures, facts: &FlowFacts) -> [f32; N_FEATURES] {
    let mut v = [f32::NAN; N_FEATURES];
    v[0] = (facts.last_ns.saturating_sub(facts.start_ns) as f64 / 1e9) as f32;
    v[1] = facts.pkts[0] as f32;
    v[2] = facts.pkts[1] as f32;
    v[3] = facts.bytes[0] as f32;
    v[4] = facts.bytes[1] as f32;
    v[5..9].copy_from_slice(&ff.sizes[0].stats());
    v[9..13].copy_from_slice(&ff.sizes[1].stats());
    if ff.iat_n > 0 {
        let n = f64::from(ff.iat_n);
        let mean = ff.iat_sum / n;
        v[13] = mean as f32;
        v[14] = (ff.iat_sumsq / n - mean * mean).max(0.0).sqrt() as f32;
        v[15] = ff.iat_max as f32;
    }
    let tcp = facts.proto == 6;
    for k in 0..6 {
        v[16 + k] = if tcp { ff.flags[k] as f32 } else { 0.0 };
    }
    if facts.bytes[1] > 0 {
        v[22] = (facts.bytes[0] as f64 / facts.bytes[1] as f64) as f32;
    }
    v[23] = entropy(&ff.head[0][..usize::from(ff.head_len[0])]);
    v[24] = entropy(&ff.head[1][..usize::from(ff.head_len[1])]);
    v[25] = f32::from(facts.app_proto);
    v[26] = f32::from(facts.proto);
    v[27] = match facts.server_port {
        Some(80 | 443 | 8000 | 8080 | 8443) => 0.0,
        Some(p) if p < 1024 => 1.0,
        Some(p) if p < 49152 => 2.0,
        Some(_) => 3.0,
        None => 4.0,
    };
    v[28] = f32::from(facts.server_port.unwrap_or(0));
    v[29] = if facts.tagged { 1.0 } else { 0.0 };
    for k in 0..HIT_BUCKETS {
        v[30 + k] = f32::from(ff.hits[k]);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_whole_and_names_are_unique() {
        let mut names: Vec<_> = FEATURES.iter().map(|f| f.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), N_FEATURES);
        assert_eq!(index("duration"), Some(0));
        assert_eq!(index("hits_other"), Some(HTTP_ERRORS_AT - 1));
        assert_eq!(HTTP_ERRORS_AT, HOST_FIRST - 1);
        assert_eq!(index("host_flows"), Some(HOST_FIRST));
        assert_eq!(index("http_errors"), Some(HTTP_ERRORS_AT));
        assert_eq!(index("dst_clients"), Some(N_FEATURES - 1));
        assert_eq!(FEATURES[23].name, "entropy_toserver");
        assert_eq!(FEATURES[27].name, "dst_port_class");
    }

    #[test]
    fn values_follow_the_table() {
        let mut ff = FlowFeatures::default();
        let t0 = 1_000_000_000;
        ff.packet(Dir::ToServer, t0, true, &[], Some(0x02));
        ff.packet(Dir::ToClient, t0 + 1_000_000, false, &[], Some(0x12));
        ff.packet(Dir::ToServer, t0 + 3_000_000, false, b"abcd", Some(0x18));
        ff.packet(Dir::ToServer, t0 + 4_000_000, false, b"ab", Some(0x18));
        ff.hit(hit_bucket(Some("prompt-injection")));
        let facts = FlowFacts {
            start_ns: t0,
            last_ns: t0 + 4_000_000,
            pkts: [3, 1],
            bytes: [300, 60],
            proto: 6,
            server_port: Some(443),
            tagged: false,
            app_proto: 2,
        };
        let v = values(&ff, &facts);
        assert_eq!(v[25], 2.0, "tls");
        assert_eq!(v[0], 0.004);
        assert_eq!(&v[5..9], &[2.0, 4.0, 3.0, 1.0]);
        assert!(v[9].is_nan() && v[24].is_nan(), "no payload back");
        assert_eq!(v[13], (0.004f64 / 3.0) as f32);
        assert_eq!(v[15], 0.002);
        assert_eq!(&v[16..22], &[2.0, 0.0, 0.0, 2.0, 3.0, 0.0]);
        assert_eq!(v[22], 5.0);
        assert_eq!(v[23], entropy(b"abcdab"), "both packets' bytes");
        assert_eq!(entropy(b"abcd"), 2.0, "four distinct bytes: 2 bits each");
        assert_eq!((v[27], v[28]), (0.0, 443.0));
        assert_eq!(&v[30..34], &[0.0, 1.0, 0.0, 0.0]);
        assert_eq!(entropy(&[7; 100]), 0.0);
        // The first 128 bytes across packets: 64 zeros then 64 ones make
        // one bit per byte; what follows is not counted.
        let mut ff = FlowFeatures::default();
        ff.packet(Dir::ToClient, t0, true, &[0; 64], None);
        ff.packet(Dir::ToClient, t0 + 1, false, &[1; 32], None);
        ff.packet(Dir::ToClient, t0 + 2, false, &[1; 100], None);
        assert_eq!(values(&ff, &facts)[24], 1.0);
    }
}
