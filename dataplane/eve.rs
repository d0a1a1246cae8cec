//! EVE JSON output. An event-writer thread drains the workers' rings and
//! writes one JSON object per line, field for field as Suricata writes the
//! same event type, so SIEM pipelines built for Suricata take it unchanged.
//! What is ours goes into a single `tollgate` object. Formatting happens
//! here, off the workers' path; a worker only copies a fixed-size record
//! into its ring.

use crate::decode::{addr_to_ip, IpProtocol, Network, MAX_VLAN_TAGS};
use crate::detect::{Engine, EngineRule};
use crate::flow::FlowRecord;
use crossbeam_channel::{Receiver, Select};
use serde::Serialize;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;

/// What crosses a worker's event ring: fixed-size, `Copy`, no strings (an
/// alert names its rule by index; the writer looks the text up).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Event {
    Flow(FlowRecord),
    Alert(AlertRecord),
    Anomaly(AnomalyRecord),
    /// A flow the scorer scored at or above its threshold.
    Score(crate::scoring::ScoreAlert),
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
        }
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

/// Where and when an event happened: what every packet event's EVE line
/// starts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EventTuple {
    pub ts_ns: u64,
    pub flow_id: u64,
    pub worker: u16,
    pub network: Network,
    pub proto: u8,
    pub src: [u8; 16],
    pub dst: [u8; 16],
    pub src_port: u16,
    pub dst_port: u16,
    pub vlan: [u16; MAX_VLAN_TAGS],
    pub vlan_count: u8,
    pub vni: Option<u32>,
    /// The packet's number in the replayed captures, from 1 (0: none, as
    /// on a NIC or for what a flow's end flushes).
    pub pcap_cnt: u64,
    /// How the packet came to be.
    pub pkt_src: PktSrc,
    /// An ICMP packet's type and code.
    pub icmp: Option<(u8, u8)>,
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

/// One rule match on one packet (or on a stream's new bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlertRecord {
    pub at: EventTuple,
    /// Index of the rule in the engine.
    pub rule: u32,
    /// The packet was dropped (IPS and a drop or reject rule).
    pub blocked: bool,
}

/// The fields every packet event starts with, in Suricata's order.
#[derive(Serialize)]
pub struct EveHead<'a> {
    timestamp: String,
    flow_id: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pcap_cnt: Option<u64>,
    event_type: &'static str,
    #[serde(skip_serializing_if = "<[u16]>::is_empty")]
    vlan: &'a [u16],
    src_ip: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    src_port: Option<u16>,
    dest_ip: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    dest_port: Option<u16>,
    ip_v: u8,
    proto: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    icmp_type: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    icmp_code: Option<u8>,
    /// Alerts say where their packet came from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pkt_src: Option<&'static str>,
}

impl<'a> EveHead<'a> {
    pub fn new(event_type: &'static str, a: &'a EventTuple) -> Self {
        let has_ports = matches!(a.proto, 6 | 17 | 132);
        EveHead {
            timestamp: format_timestamp(a.ts_ns),
            flow_id: a.flow_id,
            pcap_cnt: (a.pcap_cnt > 0).then_some(a.pcap_cnt),
            event_type,
            vlan: &a.vlan[..usize::from(a.vlan_count).min(MAX_VLAN_TAGS)],
            src_ip: eve_addr(a.network, &a.src),
            src_port: has_ports.then_some(a.src_port),
            dest_ip: eve_addr(a.network, &a.dst),
            dest_port: has_ports.then_some(a.dst_port),
            ip_v: if a.network == Network::Ipv6 { 6 } else { 4 },
            proto: proto_name(a.proto),
            icmp_type: a.icmp.map(|(t, _)| t),
            icmp_code: a.icmp.map(|(_, c)| c),
            pkt_src: None,
        }
    }
}

#[derive(Serialize)]
struct EveAlert<'a> {
    #[serde(flatten)]
    head: EveHead<'a>,
    alert: AlertSection<'a>,
    tollgate: Ours,
}

#[derive(Serialize)]
struct AlertSection<'a> {
    action: &'static str,
    gid: u32,
    signature_id: u32,
    rev: u32,
    signature: &'a str,
    /// Suricata leaves it out for a rule without a (defined) classtype.
    #[serde(skip_serializing_if = "str::is_empty")]
    category: &'a str,
    severity: u8,
    /// The rule's `metadata`, as Suricata writes it: key → values.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    metadata: &'a std::collections::BTreeMap<String, Vec<String>>,
}

/// Writes one alert as an EVE line, as Suricata writes alerts.
pub fn write_alert(out: &mut impl Write, a: &AlertRecord, rule: &EngineRule) -> io::Result<()> {
    let ev = EveAlert {
        head: EveHead {
            pkt_src: Some(a.at.pkt_src.name()),
            ..EveHead::new("alert", &a.at)
        },
        alert: AlertSection {
            action: if a.blocked { "blocked" } else { "allowed" },
            gid: rule.gid,
            signature_id: rule.sid,
            rev: rule.rev,
            signature: &rule.msg,
            category: &rule.category,
            severity: rule.priority,
            metadata: &rule.metadata,
        },
        tollgate: Ours {
            worker: a.at.worker,
            vni: a.at.vni,
        },
    };
    serde_json::to_writer(&mut *out, &ev)?;
    out.write_all(b"\n")
}

#[derive(Serialize)]
struct EveAnomaly<'a> {
    #[serde(flatten)]
    head: EveHead<'a>,
    anomaly: AnomalySection,
    tollgate: OursAnomaly,
}

#[derive(Serialize)]
struct AnomalySection {
    #[serde(rename = "type")]
    kind: &'static str,
    event: &'static str,
}

#[derive(Serialize)]
struct OursAnomaly {
    worker: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    vni: Option<u32>,
    /// The packet was dropped for it (IPS).
    blocked: bool,
}

/// Writes one anomaly as an EVE line, as Suricata's anomaly logger does.
pub fn write_anomaly(out: &mut impl Write, an: &AnomalyRecord) -> io::Result<()> {
    let (kind, event) = an.event.names();
    let ev = EveAnomaly {
        head: EveHead::new("anomaly", &an.at),
        anomaly: AnomalySection { kind, event },
        tollgate: OursAnomaly {
            worker: an.at.worker,
            vni: an.at.vni,
            blocked: an.blocked,
        },
    };
    serde_json::to_writer(&mut *out, &ev)?;
    out.write_all(b"\n")
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

#[derive(Serialize)]
struct EveFlow<'a> {
    #[serde(flatten)]
    head: EveHead<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    icmp_type: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    icmp_code: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_icmp_type: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_icmp_code: Option<u8>,
    flow: FlowSection,
    #[serde(skip_serializing_if = "Option::is_none")]
    tcp: Option<TcpSection>,
    tollgate: Ours,
}

#[derive(Serialize)]
struct FlowSection {
    pkts_toserver: u64,
    pkts_toclient: u64,
    bytes_toserver: u64,
    bytes_toclient: u64,
    start: String,
    end: String,
    age: u64,
    state: &'static str,
    reason: &'static str,
    alerted: bool,
}

#[derive(Serialize)]
struct TcpSection {
    tcp_flags: String,
    tcp_flags_ts: String,
    tcp_flags_tc: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    syn: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    fin: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    rst: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    psh: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    ack: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    urg: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    ecn: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    cwr: bool,
    state: &'static str,
}

#[derive(Serialize)]
struct Ours {
    worker: u16,
    /// The VXLAN VNI of a tenant flow seen inside a tunnel.
    #[serde(skip_serializing_if = "Option::is_none")]
    vni: Option<u32>,
}

/// Writes one flow record as an EVE line (with the newline).
pub fn write_flow(out: &mut impl Write, r: &FlowRecord) -> io::Result<()> {
    let icmp = r.icmp;
    // Suricata stamps a flow record with the flow's start.
    let at = r.tuple(r.start_ns, r.worker);
    let ev = EveFlow {
        head: EveHead::new("flow", &at),
        icmp_type: icmp.map(|i| i.icmp_type),
        icmp_code: icmp.map(|i| i.icmp_code),
        response_icmp_type: icmp.and_then(|i| i.response).map(|(t, _)| t),
        response_icmp_code: icmp.and_then(|i| i.response).map(|(_, c)| c),
        flow: FlowSection {
            pkts_toserver: r.pkts_toserver,
            pkts_toclient: r.pkts_toclient,
            bytes_toserver: r.bytes_toserver,
            bytes_toclient: r.bytes_toclient,
            start: format_timestamp(r.start_ns),
            end: format_timestamp(r.end_ns),
            // Whole seconds between the start and end timestamps, as
            // Suricata computes it.
            age: (r.end_ns / 1_000_000_000).saturating_sub(r.start_ns / 1_000_000_000),
            state: r.state.name(),
            reason: r.reason.name(),
            alerted: r.alerted,
        },
        tcp: r.tcp.map(|t| TcpSection {
            tcp_flags: format!("{:02x}", t.flags),
            tcp_flags_ts: format!("{:02x}", t.flags_ts),
            tcp_flags_tc: format!("{:02x}", t.flags_tc),
            syn: t.flags & 0x02 != 0,
            fin: t.flags & 0x01 != 0,
            rst: t.flags & 0x04 != 0,
            psh: t.flags & 0x08 != 0,
            ack: t.flags & 0x10 != 0,
            urg: t.flags & 0x20 != 0,
            ecn: t.flags & 0x40 != 0,
            cwr: t.flags & 0x80 != 0,
            state: t.state.name(),
        }),
        tollgate: Ours {
            worker: r.worker,
            vni: r.vni,
        },
    };
    serde_json::to_writer(&mut *out, &ev)?;
    out.write_all(b"\n")
}

/// What the writer wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EveCounters {
    pub flow: u64,
    pub alert: u64,
    pub anomaly: u64,
    pub engine: u64,
}

/// The event-writer thread.
pub struct EveWriter {
    handle: JoinHandle<io::Result<EveCounters>>,
}

impl EveWriter {
    /// Creates (truncates) the file now, so a bad path fails at start-up, and
    /// starts draining `rings` until every sender is gone.
    pub fn spawn(
        path: &Path,
        rings: Vec<Receiver<Event>>,
        engine: Option<Arc<Engine>>,
    ) -> io::Result<Self> {
        let file = File::create(path)?;
        let handle = std::thread::Builder::new()
            .name("tollgate-eve".into())
            .spawn(move || drain(BufWriter::with_capacity(1 << 20, file), rings, engine))?;
        Ok(EveWriter { handle })
    }

    /// Waits for the writer to drain and flush.
    pub fn join(self) -> io::Result<EveCounters> {
        self.handle
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("EVE writer thread panicked")))
    }
}

fn write_event(
    out: &mut impl Write,
    ev: &Event,
    engine: &Option<Arc<Engine>>,
    c: &mut EveCounters,
) -> io::Result<()> {
    match ev {
        Event::Flow(r) => {
            write_flow(out, r)?;
            c.flow += 1;
        }
        Event::Alert(a) => {
            if let Some(rule) = engine.as_ref().and_then(|e| e.rules.get(a.rule as usize)) {
                write_alert(out, a, rule)?;
                c.alert += 1;
            }
        }
        Event::Anomaly(a) => {
            write_anomaly(out, a)?;
            c.anomaly += 1;
        }
        Event::Score(a) => {
            a.write_eve(out)?;
            c.alert += 1;
        }
        Event::AlertsLost {
            worker,
            lost,
            ts_ns,
        } => {
            write_alerts_lost(out, *worker, *lost, *ts_ns)?;
            c.engine += 1;
        }
    }
    Ok(())
}

#[derive(Serialize)]
struct EveEngine<'a> {
    timestamp: String,
    event_type: &'static str,
    log_level: &'static str,
    engine: EngineSection<'a>,
    tollgate: AlertsLostOurs,
}

#[derive(Serialize)]
struct EngineSection<'a> {
    message: &'a str,
    module: &'static str,
}

#[derive(Serialize)]
struct AlertsLostOurs {
    worker: u16,
    alerts_lost: u64,
}

/// Writes the warning that `worker` lost `lost` alerts: an EVE `engine`
/// event, as Suricata logs its own warnings to EVE.
pub fn write_alerts_lost(
    out: &mut impl Write,
    worker: u16,
    lost: u64,
    ts_ns: u64,
) -> io::Result<()> {
    let message =
        format!("worker {worker} lost {lost} alert(s): its alert ring to the EVE writer was full");
    let ev = EveEngine {
        timestamp: format_timestamp(ts_ns),
        event_type: "engine",
        log_level: "Warning",
        engine: EngineSection {
            message: &message,
            module: "eve",
        },
        tollgate: AlertsLostOurs {
            worker,
            alerts_lost: lost,
        },
    };
    serde_json::to_writer(&mut *out, &ev)?;
    out.write_all(b"\n")
}

fn drain(
    mut out: impl Write,
    mut rings: Vec<Receiver<Event>>,
    engine: Option<Arc<Engine>>,
) -> io::Result<EveCounters> {
    let mut counters = EveCounters::default();
    // After a write error the writer keeps draining (and discarding) so that
    // workers never block on a dead output; the error is reported at the end.
    let mut failed: Option<io::Error> = None;
    while !rings.is_empty() {
        let mut sel = Select::new();
        for r in &rings {
            sel.recv(r);
        }
        let op = sel.select();
        let i = op.index();
        match op.recv(&rings[i]) {
            Ok(rec) => {
                if failed.is_none() {
                    if let Err(e) = write_event(&mut out, &rec, &engine, &mut counters) {
                        failed = Some(e);
                    }
                }
                // Take what else is waiting on this ring without re-selecting.
                while let Ok(rec) = rings[i].try_recv() {
                    if failed.is_none() {
                        if let Err(e) = write_event(&mut out, &rec, &engine, &mut counters) {
                            failed = Some(e);
                        }
                    }
                }
            }
            Err(_) => {
                rings.swap_remove(i);
            }
        }
    }
    if let Some(e) = failed {
        return Err(e);
    }
    out.flush()?;
    Ok(counters)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::Network;
    use crate::flow::tcp::TcpState;
    use crate::flow::{EndReason, FlowState, IcmpSummary, TcpSummary};
    use serde_json::Value;

    #[test]
    fn timestamps_match_suricata_format() {
        assert_eq!(format_timestamp(0), "1970-01-01T00:00:00.000000+0000");
        // 2009-11-24T21:27:09.534255 UTC, the example in Suricata's docs.
        assert_eq!(
            format_timestamp(1_259_098_029_534_255_000),
            "2009-11-24T21:27:09.534255+0000"
        );
        // A leap day.
        assert_eq!(
            format_timestamp(1_709_208_000_000_000_999),
            "2024-02-29T12:00:00.000000+0000"
        );
    }

    fn tcp_record() -> FlowRecord {
        let mut src = [0; 16];
        src[..4].copy_from_slice(&[192, 168, 2, 7]);
        let mut dst = [0; 16];
        dst[..4].copy_from_slice(&[10, 0, 0, 1]);
        FlowRecord {
            flow_id: 0x1234_5600 | 1,
            slot: 0,
            bits: Default::default(),
            generation: 1,
            worker: 1,
            network: Network::Ipv4,
            proto: 6,
            src,
            dst,
            src_port: 1041,
            dst_port: 80,
            vlan: [100, 200, 0],
            vlan_count: 2,
            pkts_toserver: 5,
            pkts_toclient: 4,
            bytes_toserver: 367,
            bytes_toclient: 243,
            start_ns: 1_259_098_029_534_255_000,
            end_ns: 1_259_098_031_542_223_000,
            state: FlowState::Closed,
            reason: EndReason::Timeout,
            tcp: Some(TcpSummary {
                flags: 0x1b,
                flags_ts: 0x1b,
                flags_tc: 0x1a,
                state: TcpState::Closed,
            }),
            icmp: None,
            vni: None,
            alerted: false,
        }
    }

    fn line(r: &FlowRecord) -> Value {
        let mut buf = Vec::new();
        write_flow(&mut buf, r).unwrap();
        assert_eq!(buf.last(), Some(&b'\n'));
        assert_eq!(buf.iter().filter(|&&b| b == b'\n').count(), 1);
        serde_json::from_slice(&buf).unwrap()
    }

    #[test]
    fn tcp_flow_record_field_by_field() {
        let v = line(&tcp_record());
        assert_eq!(v["timestamp"], "2009-11-24T21:27:09.534255+0000");
        assert_eq!(v["flow_id"], 0x1234_5601u64);
        assert_eq!(v["event_type"], "flow");
        assert_eq!(v["vlan"], serde_json::json!([100, 200]));
        assert_eq!(v["src_ip"], "192.168.2.7");
        assert_eq!(v["src_port"], 1041);
        assert_eq!(v["dest_ip"], "10.0.0.1");
        assert_eq!(v["dest_port"], 80);
        assert_eq!(v["proto"], "TCP");
        let f = &v["flow"];
        assert_eq!(f["pkts_toserver"], 5);
        assert_eq!(f["pkts_toclient"], 4);
        assert_eq!(f["bytes_toserver"], 367);
        assert_eq!(f["bytes_toclient"], 243);
        assert_eq!(f["start"], "2009-11-24T21:27:09.534255+0000");
        assert_eq!(f["end"], "2009-11-24T21:27:11.542223+0000");
        assert_eq!(f["age"], 2);
        assert_eq!(f["state"], "closed");
        assert_eq!(f["reason"], "timeout");
        assert_eq!(f["alerted"], false);
        let t = &v["tcp"];
        assert_eq!(t["tcp_flags"], "1b");
        assert_eq!(t["tcp_flags_ts"], "1b");
        assert_eq!(t["tcp_flags_tc"], "1a");
        for k in ["syn", "fin", "psh", "ack"] {
            assert_eq!(t[k], true, "{k}");
        }
        for k in ["rst", "urg", "ecn", "cwr"] {
            assert!(t.get(k).is_none(), "{k} is written only when set");
        }
        assert_eq!(t["state"], "closed");
        assert!(v.get("icmp_type").is_none());
        assert!(
            v.get("app_proto").is_none(),
            "no app-layer yet: omitted, as Suricata does"
        );
        assert_eq!(v["tollgate"]["worker"], 1);
        assert!(v["tollgate"].get("vni").is_none(), "no tunnel, no vni");
        let mut r = tcp_record();
        r.vni = Some(4242);
        assert_eq!(line(&r)["tollgate"]["vni"], 4242);
    }

    #[test]
    fn icmpv6_record_has_types_and_no_ports() {
        let mut r = tcp_record();
        r.network = Network::Ipv6;
        r.src = "2001:db8::1"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets();
        r.dst = "2001:db8::2"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets();
        r.proto = 58;
        r.tcp = None;
        r.vlan_count = 0;
        r.icmp = Some(IcmpSummary {
            icmp_type: 128,
            icmp_code: 0,
            response: Some((129, 0)),
        });
        let v = line(&r);
        assert_eq!(v["proto"], "IPv6-ICMP");
        // In full, as Suricata writes IPv6 addresses.
        assert_eq!(v["src_ip"], "2001:0db8:0000:0000:0000:0000:0000:0001");
        assert_eq!(v["ip_v"], 6);
        assert!(v.get("src_port").is_none() && v.get("dest_port").is_none());
        assert!(v.get("vlan").is_none());
        assert!(v.get("tcp").is_none());
        assert_eq!(v["icmp_type"], 128);
        assert_eq!(v["icmp_code"], 0);
        assert_eq!(v["response_icmp_type"], 129);
        assert_eq!(v["response_icmp_code"], 0);
    }

    #[test]
    fn writer_drains_every_ring() {
        let dir = std::env::temp_dir().join(format!("tollgate-eve-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("eve.json");
        let (a_tx, a_rx) = crossbeam_channel::bounded(4);
        let (b_tx, b_rx) = crossbeam_channel::bounded(4);
        let w = EveWriter::spawn(&path, vec![a_rx, b_rx], None).unwrap();
        for i in 0..10 {
            let mut r = tcp_record();
            r.flow_id = i;
            if i % 2 == 0 {
                a_tx.send(Event::Flow(r)).unwrap()
            } else {
                b_tx.send(Event::Flow(r)).unwrap()
            }
        }
        drop((a_tx, b_tx));
        assert_eq!(w.join().unwrap().flow, 10);
        let text = std::fs::read_to_string(&path).unwrap();
        let mut ids: Vec<u64> = text
            .lines()
            .map(|l| {
                serde_json::from_str::<Value>(l).unwrap()["flow_id"]
                    .as_u64()
                    .unwrap()
            })
            .collect();
        ids.sort();
        assert_eq!(ids, (0..10).collect::<Vec<_>>());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn other_protocols_print_as_numbers() {
        assert_eq!(proto_name(47), "GRE");
        assert_eq!(proto_name(99), "099");
    }
}
