//! What leaves a worker (and the scorer) for the EVE writer: fixed-size,
//! `Copy` records that cross bounded rings without a heap allocation, the
//! rings themselves, and how events name addresses, times and protocols.
//! Formatting them as EVE JSON is the writer's (`eve`).

pub use crate::applayer::FileRef;
use crate::decode::{addr_to_ip, DecodeAnomaly, IpProtocol, Network};
use crate::flow::tcp::Why;
use crate::flow::{EventTuple, FlowRecord, FlowSnap};
use crossbeam_channel::{bounded, Receiver, Sender, TrySendError};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Features a model alert names as contributing most.
pub const TOP: usize = 3;

/// What a worker's rings took and lost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EmitCounters {
    /// Events handed to a ring.
    pub sent: u64,
    /// Events lost to a full ring.
    pub dropped: u64,
    /// Of those, alerts (their own ring was full).
    pub alerts_dropped: u64,
    /// Events that went without their text (an alert without its `http`
    /// object …): the text arena was full.
    pub text_lost: u64,
}

impl EmitCounters {
    pub fn add(&mut self, o: &EmitCounters) {
        self.sent += o.sent;
        self.dropped += o.dropped;
        self.alerts_dropped += o.alerts_dropped;
        self.text_lost += o.text_lost;
    }
}

/// What crosses a worker's event ring: fixed-size, `Copy`, no strings (an
/// alert names its rule by index; the writer looks the text up).
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Flow(FlowRecord),
    Alert(AlertRecord),
    Anomaly(AnomalyRecord),
    /// A flow the scorer scored at or above its threshold.
    Score(ScoreAlert),
    /// An LLM prompt the prompt classifier scored at or above its
    /// threshold (boxed: rare, and bigger than the other events).
    Prompt(Box<PromptAlert>),
    /// An app-layer transaction, complete (an EVE `http` event).
    Tx(TxRecord),
    /// A flow the segmentation policy denies (one per flow).
    Policy(PolicyAlert),
    /// Alerts a worker lost to a full alert ring (written as an EVE
    /// `engine` warning, so the loss is seen where the alerts are read).
    AlertsLost {
        worker: u16,
        lost: u64,
        ts_ns: u64,
    },
}

/// A protocol anomaly worth an EVE `anomaly` event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anomaly {
    /// A TCP segment overlapped bytes already seen with different bytes.
    StreamOverlapDifferentData,
    /// A TCP segment the receiving host would not take as sent.
    Tcp(crate::flow::tcp::Why),
    /// An IPv4 header checksum that does not verify.
    Ipv4BadChecksum,
    /// A packet that decoded with something odd about it.
    Decode(crate::decode::DecodeAnomaly),
    /// Urgent data, taken out of the stream (or dropped inline).
    StreamUrgentData,
    /// A normal copy replaced a low-TTL one that said something else: an
    /// insertion caught.
    StreamInsertionReplaced,
    /// A TLS direction lost record sync: scanned as plaintext from here.
    TlsRecordInvalid,
    /// IP fragments overlap (IPv4 or IPv6).
    FragOverlap { v6: bool },
    /// Traffic that could not be inspected whole met the exception policy.
    ExceptionPolicy,
    /// An HTTP transaction's event (Suricata's `applayer` anomaly).
    Http(crate::applayer::http::HttpEvent),
}

impl Anomaly {
    /// The (type, event) names, Suricata's where it has the event.
    pub fn names(self) -> (&'static str, &'static str) {
        match self {
            Anomaly::StreamOverlapDifferentData => {
                ("stream", "stream.reassembly_overlap_different_data")
            }
            Anomaly::Tcp(why) => ("stream", why.event()),
            Anomaly::Ipv4BadChecksum => ("decode", "decoder.ipv4.wrong_ip_checksum"),
            Anomaly::Decode(a) => (
                "decode",
                match a {
                    crate::decode::DecodeAnomaly::VlanTooManyLayers => {
                        "decoder.vlan.too_many_layers"
                    }
                    crate::decode::DecodeAnomaly::Ipv6ManyExtHeaders => {
                        "decoder.ipv6.many_ext_headers"
                    }
                    crate::decode::DecodeAnomaly::TcpOptInvalidLen => "decoder.tcp.opt_invalid_len",
                },
            ),
            Anomaly::StreamUrgentData => ("stream", "stream.urgent_data"),
            Anomaly::StreamInsertionReplaced => ("stream", "stream.suspected_insertion_replaced"),
            Anomaly::TlsRecordInvalid => ("applayer", "tls.invalid_record"),
            Anomaly::FragOverlap { v6: false } => ("decode", "defrag.ipv4.frag_overlap"),
            Anomaly::FragOverlap { v6: true } => ("decode", "defrag.ipv6.frag_overlap"),
            Anomaly::ExceptionPolicy => ("stream", "stream.exception_policy"),
            Anomaly::Http(e) => ("applayer", e.eve_name()),
        }
    }
}

impl Anomaly {
    /// The anomalies a rule can name on the packet that carries them
    /// (`stream-event:NAME`, `decode-event:NAME`), a bit each in
    /// `PacketView::events`.
    pub const PACKET: [Anomaly; 18] = [
        Anomaly::Tcp(Why::BadChecksum),
        Anomaly::Tcp(Why::LowTtl),
        Anomaly::Tcp(Why::OutOfWindow),
        Anomaly::Tcp(Why::SynData),
        Anomaly::Tcp(Why::SynOnEstablished),
        Anomaly::Tcp(Why::SynAckWrongAck),
        Anomaly::Tcp(Why::RstOutOfWindow),
        Anomaly::Tcp(Why::RstNotExact),
        Anomaly::Tcp(Why::BadTimestamp),
        Anomaly::Tcp(Why::SynFlood),
        Anomaly::Ipv4BadChecksum,
        Anomaly::Decode(DecodeAnomaly::VlanTooManyLayers),
        Anomaly::Decode(DecodeAnomaly::Ipv6ManyExtHeaders),
        Anomaly::Decode(DecodeAnomaly::TcpOptInvalidLen),
        Anomaly::StreamUrgentData,
        Anomaly::StreamOverlapDifferentData,
        Anomaly::StreamInsertionReplaced,
        Anomaly::ExceptionPolicy,
    ];

    /// Its bit among `PACKET` (0 for the others).
    pub fn packet_bit(self) -> u32 {
        Self::PACKET
            .iter()
            .position(|&a| a == self)
            .map_or(0, |i| 1 << i)
    }

    /// The anomaly `stream-event:NAME` or `decode-event:NAME` names, by
    /// Suricata's event names (`stream.NAME`, `decoder.NAME`). None for
    /// one Tollgate never raises: a rule naming it would never be
    /// evaluated, so it is skipped, never silently false.
    pub fn of_keyword(keyword: &str, name: &str) -> Option<Anomaly> {
        let (kind, prefix) = match keyword {
            "stream-event" => ("stream", "stream."),
            "decode-event" => ("decode", "decoder."),
            _ => return None,
        };
        Self::PACKET.into_iter().find(|a| {
            let (k, full) = a.names();
            k == kind && full.strip_prefix(prefix) == Some(name)
        })
    }
}

/// An anomaly on one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnomalyRecord {
    pub at: EventTuple,
    pub event: Anomaly,
    /// The packet was dropped for it (IPS).
    pub blocked: bool,
}

pub use crate::io::PktSrc;

/// An address as Suricata's EVE writes it: IPv4 dotted, IPv6 in full
/// (eight groups of four hex digits, no `::`).
pub fn eve_addr(network: Network, a: &[u8; 16]) -> String {
    match network {
        Network::Ipv6 => {
            let mut s = String::with_capacity(39);
            for (i, g) in a.chunks_exact(2).enumerate() {
                if i > 0 {
                    s.push(':');
                }
                s.push_str(&format!("{:02x}{:02x}", g[0], g[1]));
            }
            s
        }
        _ => addr_to_ip(network, a).to_string(),
    }
}

/// An app-layer transaction, as an alert names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxRef {
    pub proto: crate::applayer::AppProto,
    pub id: u64,
}

/// A complete transaction: the client's tuple, its id, its fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxRecord {
    pub at: EventTuple,
    pub tx: TxRef,
    pub text: Option<TextRef>,
    /// A file the transaction carried (an EVE `fileinfo` event), else
    /// the transaction itself (an `http` event).
    pub file: Option<FileRef>,
}

/// Bytes in a text arena: which arena, where, how many.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextRef {
    pub arena: u16,
    pub start: u64,
    pub len: u32,
}

/// Variable-length bytes (URLs, host names) on their way from one worker
/// to the EVE writer, beside the fixed-size events that name them: a ring
/// of bytes made at start-up, written by the worker (`put`), read and let
/// go by the writer in the order its ring delivers the events. Plain
/// atomics, so no lock and nothing allocated per event; the ordering of
/// the event ring itself publishes the bytes. A full arena refuses the
/// bytes (the event goes without them, counted by the caller).
#[derive(Debug)]
pub struct TextArena {
    words: Box<[AtomicU64]>,
    /// Where the next bytes go (the worker's).
    head: AtomicU64,
    /// What the writer is done with.
    tail: AtomicU64,
}

impl TextArena {
    pub fn new(bytes: usize) -> TextArena {
        let n = bytes.div_ceil(8).max(1);
        TextArena {
            words: (0..n).map(|_| AtomicU64::new(0)).collect(),
            head: AtomicU64::new(0),
            tail: AtomicU64::new(0),
        }
    }

    fn cap(&self) -> u64 {
        self.words.len() as u64 * 8
    }

    /// Stores `data` (the worker); None when there is no room.
    pub fn put(&self, arena: u16, data: &[u8]) -> Option<TextRef> {
        let start = self.head.load(Ordering::Relaxed);
        let end = start + (data.len() as u64).div_ceil(8) * 8;
        if end - self.tail.load(Ordering::Acquire) > self.cap() {
            return None;
        }
        let n = self.words.len() as u64;
        for (i, chunk) in data.chunks(8).enumerate() {
            let mut w = [0u8; 8];
            w[..chunk.len()].copy_from_slice(chunk);
            let at = (start / 8 + i as u64) % n;
            self.words[at as usize].store(u64::from_le_bytes(w), Ordering::Relaxed);
        }
        self.head.store(end, Ordering::Relaxed);
        Some(TextRef {
            arena,
            start,
            len: data.len() as u32,
        })
    }

    /// Appends the bytes of `r` to `out` (the writer).
    pub fn read(&self, r: TextRef, out: &mut Vec<u8>) {
        let n = self.words.len() as u64;
        let mut left = r.len as usize;
        let mut w = r.start / 8;
        while left > 0 {
            let b = self.words[(w % n) as usize]
                .load(Ordering::Relaxed)
                .to_le_bytes();
            let k = left.min(8);
            out.extend_from_slice(&b[..k]);
            left -= k;
            w += 1;
        }
    }

    /// The writer is done with `r` and everything before it.
    pub fn release(&self, r: TextRef) {
        let end = r.start + u64::from(r.len).div_ceil(8) * 8;
        self.tail.fetch_max(end, Ordering::Release);
    }
}

/// Bytes of text arena per worker ring.
pub const TEXT_ARENA: usize = 1 << 20;

/// One rule match on one packet (or on a stream's new bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlertRecord {
    pub at: EventTuple,
    /// The transaction it matched on (an app-layer rule), if any.
    pub tx: Option<TxRef>,
    /// That transaction's logged fields (the alert's `http` object).
    pub text: Option<TextRef>,
    /// The flow's traffic tags then (a bit per the engine's `traffic`).
    pub traffic: u16,
    /// Index of the rule in the engine of generation `rules`.
    pub rule: u32,
    /// The rules generation that raised it (stamped as it leaves for the
    /// EVE writer): a reload's alerts are named after the new rules while
    /// the old rules' still in the ring keep their names.
    pub rules: u16,
    /// The packet was dropped (IPS and a drop or reject rule).
    pub blocked: bool,
    /// Its flow as it stood then (the alert's `flow` object).
    pub flow: Option<FlowSnap>,
}

/// A flow the segmentation policy denies: its zones and what decided,
/// under which policy generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PolicyAlert {
    pub at: EventTuple,
    pub mark: crate::policy::enforce::PolicySnap,
    /// Its packets are dropped (inline, --policy-action drop).
    pub blocked: bool,
}

/// A high score, as it crosses the ring to the EVE writer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoreAlert {
    pub at: EventTuple,
    pub score: f32,
    pub threshold: f32,
    /// Which loaded model (0 the first, +1 per reload) and its file name.
    pub model_generation: u32,
    pub model_name: [u8; 64],
    pub trigger: crate::flow::features::Trigger,
    /// The features that pushed the margin up most: (index, value, share).
    pub top: [(u8, f32, f32); TOP],
    pub blocked: bool,
    /// Raised by the anomaly detector (sid 9,220,001), not the XGBoost
    /// model (9,200,001).
    pub anomaly: bool,
}

impl ScoreAlert {
    pub fn model_name(&self) -> &str {
        let n = self.model_name.iter().position(|&b| b == 0).unwrap_or(64);
        std::str::from_utf8(&self.model_name[..n]).unwrap_or("model")
    }
}

/// Bytes an alert keeps of each top n-gram (cut on a char boundary).
pub const NGRAM_ROOM: usize = 32;
/// N-grams a prompt alert names.
pub const TOP_NGRAMS: usize = 5;

/// A prompt the prompt classifier scored high, as it crosses the ring to
/// the EVE writer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PromptAlert {
    /// The request's tuple (client to server).
    pub at: EventTuple,
    pub tx_id: u64,
    pub score: f32,
    pub threshold: f32,
    /// Which loaded prompt model (0 the first, +1 per reload) and its file
    /// name.
    pub model_generation: u32,
    pub model_name: [u8; 64],
    /// The prompt's length in bytes.
    pub prompt_bytes: u32,
    /// The n-grams that pushed the score up most: (length in `ngrams`,
    /// contribution to the decision), best first; length 0 for none.
    pub top: [(u8, f32); TOP_NGRAMS],
    pub ngrams: [u8; NGRAM_ROOM * TOP_NGRAMS],
    pub blocked: bool,
}

impl PromptAlert {
    pub fn model_name(&self) -> &str {
        let n = self.model_name.iter().position(|&b| b == 0).unwrap_or(64);
        std::str::from_utf8(&self.model_name[..n]).unwrap_or("prompt-model")
    }

    /// The top n-grams with their contributions, best first.
    pub fn ngrams(&self) -> impl Iterator<Item = (&str, f32)> {
        self.top
            .iter()
            .enumerate()
            .filter(|(_, t)| t.0 > 0)
            .map(|(i, &(n, c))| {
                let g = &self.ngrams[i * NGRAM_ROOM..i * NGRAM_ROOM + usize::from(n)];
                (std::str::from_utf8(g).unwrap_or("\u{fffd}"), c)
            })
    }
}

/// A timestamp as Suricata writes it: `2026-11-26T18:57:29.123456+0000`
/// (microseconds, UTC).
pub fn format_timestamp(ts_ns: u64) -> String {
    let secs = ts_ns / 1_000_000_000;
    let micros = (ts_ns % 1_000_000_000) / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}+0000",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's
/// algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Protocol names as Suricata prints them (the alias column of
/// /etc/protocols), else the number as three digits.
pub fn proto_name(proto: u8) -> String {
    match IpProtocol::from(proto) {
        IpProtocol::Tcp => "TCP".into(),
        IpProtocol::Udp => "UDP".into(),
        IpProtocol::Icmp => "ICMP".into(),
        IpProtocol::Icmpv6 => "IPv6-ICMP".into(),
        IpProtocol::Gre => "GRE".into(),
        IpProtocol::Esp => "IPSEC-ESP".into(),
        IpProtocol::Ah => "IPSEC-AH".into(),
        IpProtocol::Sctp => "SCTP".into(),
        _ => format!("{proto:03}"),
    }
}

/// The EVE event types written (`--eve-types`), as the `types:` list of
/// Suricata's `eve-log`. An `engine` event (alerts lost) is always
/// written: it says the output is incomplete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EveTypes(u16);

impl EveTypes {
    pub const ALERT: EveTypes = EveTypes(1 << 0);
    pub const ANOMALY: EveTypes = EveTypes(1 << 1);
    pub const FLOW: EveTypes = EveTypes(1 << 2);
    pub const HTTP: EveTypes = EveTypes(1 << 3);
    pub const DNS: EveTypes = EveTypes(1 << 4);
    pub const TLS: EveTypes = EveTypes(1 << 5);
    pub const FILEINFO: EveTypes = EveTypes(1 << 6);
    pub const STATS: EveTypes = EveTypes(1 << 7);
    pub const ALL: EveTypes = EveTypes((1 << 8) - 1);
    const NAMES: [(&'static str, EveTypes); 8] = [
        ("alert", Self::ALERT),
        ("anomaly", Self::ANOMALY),
        ("flow", Self::FLOW),
        ("http", Self::HTTP),
        ("dns", Self::DNS),
        ("tls", Self::TLS),
        ("fileinfo", Self::FILEINFO),
        ("stats", Self::STATS),
    ];

    /// Whether every type of `t` is written.
    pub fn has(self, t: EveTypes) -> bool {
        self.0 & t.0 == t.0
    }

    /// The type a transaction's record is written as: its protocol's, or
    /// `fileinfo` for one of its files.
    pub fn of_tx(proto: crate::applayer::AppProto, file: bool) -> EveTypes {
        use crate::applayer::AppProto;
        match (file, proto) {
            (true, _) => Self::FILEINFO,
            (false, AppProto::Tls) => Self::TLS,
            (false, AppProto::Dns) => Self::DNS,
            (false, _) => Self::HTTP,
        }
    }

    /// Whether `ev` is written.
    pub fn wants(self, ev: &Event) -> bool {
        let t = match ev {
            Event::Alert(_) | Event::Score(_) | Event::Prompt(_) | Event::Policy(_) => Self::ALERT,
            Event::Anomaly(_) => Self::ANOMALY,
            Event::Flow(_) => Self::FLOW,
            Event::Tx(t) => Self::of_tx(t.tx.proto, t.file.is_some()),
            Event::AlertsLost { .. } => return true,
        };
        self.has(t)
    }
}

impl Default for EveTypes {
    fn default() -> Self {
        Self::ALL
    }
}

impl std::str::FromStr for EveTypes {
    type Err = String;

    /// A comma-separated list of type names, or `all`.
    fn from_str(s: &str) -> Result<Self, String> {
        let mut t = EveTypes(0);
        for name in s.split(',').map(str::trim) {
            if name == "all" {
                t.0 |= Self::ALL.0;
                continue;
            }
            match Self::NAMES.iter().find(|(n, _)| *n == name) {
                Some((_, bit)) => t.0 |= bit.0,
                None => {
                    let known: Vec<&str> = Self::NAMES.iter().map(|(n, _)| *n).collect();
                    return Err(format!(
                        "unknown EVE type `{name}`: expected `all` or a comma-separated list of {}",
                        known.join(", ")
                    ));
                }
            }
        }
        Ok(t)
    }
}

impl std::fmt::Display for EveTypes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if *self == Self::ALL {
            return f.write_str("all");
        }
        let names: Vec<&str> = Self::NAMES
            .iter()
            .filter(|(_, b)| self.has(*b))
            .map(|(n, _)| *n)
            .collect();
        f.write_str(&names.join(","))
    }
}

/// How long a worker that waits for room on a full event ring naps
/// before trying again.
const FULL_RING_NAP: std::time::Duration = std::time::Duration::from_micros(100);

/// Alerts one worker's alert ring holds.
pub const ALERT_RING: usize = 16_384;

/// A worker's rings to the EVE writer: flow records and anomalies on one,
/// alerts on one of their own, so that a flood of flow records (a SYN
/// flood ends thousands of flows a second) cannot take an alert's room.
/// Neither is waited on in the hot path: a full ring drops and counts, and
/// alerts lost so are reported in EVE as soon as their ring has room.
#[derive(Debug, Default)]
pub struct EventRings {
    records: Option<Sender<Event>>,
    alerts: Option<Sender<Event>>,
    /// Text arenas beside the record and alert rings, and their numbers.
    texts: [Option<(u16, Arc<TextArena>)>; 2],
    worker: u16,
    /// Alerts lost to a full ring, not yet reported.
    unreported: Cell<u64>,
    /// The rules generation the worker runs: stamped on alerts and flow
    /// records (whose rule and flowbit numbers are that generation's).
    rules: u16,
    /// `offer` waits for room as `send` does (replay: a file can wait for
    /// the writer, so its EVE is whole and the same every run).
    wait: bool,
    /// The event types written (`--eve-types`): the others are never sent.
    types: EveTypes,
}

impl EventRings {
    /// Everything on one ring (or nowhere).
    pub fn single(records: Option<Sender<Event>>) -> Self {
        EventRings {
            records,
            ..EventRings::default()
        }
    }

    /// Flow records and anomalies on `records`, alerts on `alerts`.
    pub fn split(records: Sender<Event>, alerts: Sender<Event>) -> Self {
        EventRings {
            records: Some(records),
            alerts: Some(alerts),
            ..EventRings::default()
        }
    }

    /// Rings for `workers` workers: each a record ring of `records` events
    /// and an alert ring of `ALERT_RING`, each with a text arena; the
    /// receivers and the arenas (numbered by their place) go to the
    /// writer.
    pub fn for_workers(
        workers: usize,
        records: usize,
    ) -> (Vec<EventRings>, Vec<Receiver<Event>>, Vec<Arc<TextArena>>) {
        let mut rings = Vec::with_capacity(workers);
        let mut rxs = Vec::with_capacity(2 * workers);
        let mut arenas = Vec::with_capacity(2 * workers);
        for _ in 0..workers {
            let (rtx, rrx) = bounded(records);
            let (atx, arx) = bounded(ALERT_RING);
            let mut r = EventRings::split(rtx, atx);
            for slot in &mut r.texts {
                let a = Arc::new(TextArena::new(TEXT_ARENA));
                *slot = Some((arenas.len() as u16, Arc::clone(&a)));
                arenas.push(a);
            }
            rings.push(r);
            rxs.push(rrx);
            rxs.push(arx);
        }
        (rings, rxs, arenas)
    }

    /// Whether events go anywhere (else nothing need be prepared for them).
    pub fn live(&self) -> bool {
        self.records.is_some() || self.alerts.is_some()
    }

    /// Stores text for an event bound for the alert ring (`alert`) or the
    /// record ring; None when there is no arena or no room.
    pub fn text(&self, c: &mut EmitCounters, alert: bool, data: &[u8]) -> Option<TextRef> {
        let i = usize::from(alert && self.alerts.is_some());
        let (id, a) = self.texts[i].as_ref()?;
        let r = a.put(*id, data);
        c.text_lost += u64::from(r.is_none());
        r
    }

    pub fn set_worker(&mut self, worker: u16) {
        self.worker = worker;
    }

    /// Sends only events of `types` (the rest are not asked for).
    pub fn set_types(&mut self, types: EveTypes) {
        self.types = types;
    }

    /// Whether events of type `t` go anywhere (else nothing need be
    /// prepared for them).
    pub fn wants(&self, t: EveTypes) -> bool {
        self.live() && self.types.has(t)
    }

    /// Whether `offer` waits for room on a full ring instead of dropping.
    pub fn set_wait(&mut self, wait: bool) {
        self.wait = wait;
    }

    /// The worker swapped to rules generation `g`.
    pub fn set_rules_generation(&mut self, g: u16) {
        self.rules = g;
    }

    fn stamp(&self, ev: &mut Event) {
        match ev {
            Event::Alert(a) => a.rules = self.rules,
            Event::Flow(r) => r.rules = self.rules,
            _ => {}
        }
    }

    fn ring(&self, ev: &Event) -> Option<&Sender<Event>> {
        match ev {
            Event::Alert(_) | Event::Policy(_) | Event::AlertsLost { .. } => {
                self.alerts.as_ref().or(self.records.as_ref())
            }
            _ => self.records.as_ref(),
        }
    }

    /// Sends without waiting; counts what a full ring loses (unless set
    /// to wait, `set_wait`).
    pub fn offer(&self, c: &mut EmitCounters, mut ev: Event) {
        if self.wait {
            return self.send(c, ev);
        }
        if !self.types.wants(&ev) {
            return;
        }
        self.stamp(&mut ev);
        let is_alert = matches!(ev, Event::Alert(_));
        if is_alert {
            self.report_lost(c, event_ts(&ev));
        }
        let Some(tx) = self.ring(&ev) else {
            return;
        };
        match tx.try_send(ev) {
            Ok(()) => c.sent += 1,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                c.dropped += 1;
                if is_alert {
                    c.alerts_dropped += 1;
                    self.unreported.set(self.unreported.get() + 1);
                }
            }
        }
    }

    /// Sends, waiting for room (at shutdown, when the writer drains, and
    /// always in replay).
    pub fn send(&self, c: &mut EmitCounters, mut ev: Event) {
        if !self.types.wants(&ev) {
            return;
        }
        self.stamp(&mut ev);
        if matches!(ev, Event::Alert(_)) {
            self.report_lost(c, event_ts(&ev));
        }
        let Some(tx) = self.ring(&ev) else {
            return;
        };
        // A full ring is the writer's backlog (milliseconds of it): the
        // worker naps and tries again, as the replay reader does, rather
        // than spin in the channel's send (under an alert flood, 18 % of
        // the run was a worker spinning there).
        loop {
            match tx.try_send(ev) {
                Ok(()) => {
                    c.sent += 1;
                    return;
                }
                Err(TrySendError::Full(back)) => {
                    ev = back;
                    std::thread::sleep(FULL_RING_NAP);
                }
                Err(TrySendError::Disconnected(_)) => {
                    c.dropped += 1;
                    return;
                }
            }
        }
    }

    /// Tells the writer how many alerts were lost, once there is room.
    pub fn report_lost(&self, c: &mut EmitCounters, ts_ns: u64) {
        let lost = self.unreported.get();
        if lost == 0 {
            return;
        }
        let Some(tx) = self.alerts.as_ref().or(self.records.as_ref()) else {
            return;
        };
        let ev = Event::AlertsLost {
            worker: self.worker,
            lost,
            ts_ns,
        };
        if tx.try_send(ev).is_ok() {
            c.sent += 1;
            self.unreported.set(0);
        }
    }
}

fn event_ts(ev: &Event) -> u64 {
    match ev {
        Event::Alert(a) => a.at.ts_ns,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eve_types_parse_print_and_pick_events() {
        let t: EveTypes = "alert, dns,fileinfo".parse().unwrap();
        assert_eq!(t.to_string(), "alert,dns,fileinfo");
        assert_eq!("all".parse::<EveTypes>().unwrap(), EveTypes::ALL);
        assert_eq!(EveTypes::ALL.to_string(), "all");
        assert_eq!("flow,all".parse::<EveTypes>().unwrap(), EveTypes::ALL);
        let e = "alert,dnss".parse::<EveTypes>().unwrap_err();
        assert!(e.contains("`dnss`") && e.contains("fileinfo"), "{e}");
        assert!("".parse::<EveTypes>().is_err());
        use crate::applayer::AppProto;
        assert_eq!(EveTypes::of_tx(AppProto::Dns, false), EveTypes::DNS);
        assert_eq!(EveTypes::of_tx(AppProto::Tls, false), EveTypes::TLS);
        assert_eq!(EveTypes::of_tx(AppProto::Http, false), EveTypes::HTTP);
        assert_eq!(EveTypes::of_tx(AppProto::Http, true), EveTypes::FILEINFO);
        let lost = Event::AlertsLost {
            worker: 0,
            lost: 1,
            ts_ns: 0,
        };
        assert!("flow".parse::<EveTypes>().unwrap().wants(&lost));
        assert!(t.has(EveTypes::ALERT) && !t.has(EveTypes::FLOW));
    }
}
