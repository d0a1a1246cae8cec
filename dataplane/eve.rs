//! EVE JSON output. An event-writer thread drains the workers' rings and
//! writes one JSON object per line, field for field as Suricata writes the
//! same event type, so SIEM pipelines built for Suricata take it unchanged.
//! What is ours goes into a single `tollgate` object. Formatting happens
//! here, off the workers' path; a worker only copies a fixed-size record
//! into its ring.

pub mod community_id;
pub mod sink;

use crate::applayer::dns::logger::EveDns;
use crate::applayer::tls::logger::EveTls;
use crate::decode::{addr_to_ip, Network, MAX_VLAN_TAGS};
use crate::detect::{Engine, EngineRule};
pub use crate::events::{
    eve_addr, format_timestamp, proto_name, AlertRecord, Anomaly, AnomalyRecord, EveTypes, Event,
    PktSrc, ScoreAlert, TextArena, TextRef, TxRecord,
};
use crate::flow::FlowRecord;
pub use crate::flow::{EventTuple, FlowSnap};
use crossbeam_channel::{Receiver, Select};
use serde::Serialize;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;

/// How the writer writes: what Tollgate adds to Suricata's fields.
#[derive(Debug, Clone)]
pub struct EveStyle {
    /// Write the `tollgate` object (off: every event is Suricata's schema
    /// alone, for consumers that validate strictly).
    pub extensions: bool,
    /// The Community ID v1 seed (`--community-id`), when it is written.
    pub community_id: Option<u16>,
    /// What a packet's `source` names.
    pub sources: Sources,
    /// What the X-Forwarded-For client (`--xff`) does to HTTP events.
    pub xff: XffMode,
    /// The event types written (`--eve-types`; workers do not send the
    /// others, the scorer's alerts are filtered here).
    pub types: EveTypes,
}

/// `--xff`: the client named by X-Forwarded-For (or the header
/// `--xff-header` names) added to alerts and `http` events on a
/// transaction, or written in place of the client's address, as
/// Suricata's `xff` option.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum XffMode {
    #[default]
    Off,
    /// An `xff` field: in the `alert` object of alerts, in the `http`
    /// object of `http` events (Suricata 8's places).
    ExtraData,
    /// The client's address (`src_ip`, or an alert's `dest_ip` when its
    /// packet went to the client) becomes the forwarded one.
    Overwrite,
}

impl Default for EveStyle {
    fn default() -> Self {
        EveStyle {
            extensions: true,
            community_id: None,
            sources: Sources::None,
            xff: XffMode::Off,
            types: EveTypes::ALL,
        }
    }
}

/// The names of where packets come in.
#[derive(Debug, Clone, Default)]
pub enum Sources {
    #[default]
    None,
    /// Replay: capture files, written as `pcap_filename`.
    Files(Vec<String>),
    /// Run: ports, written as `in_iface`.
    Ports(Vec<String>),
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
    /// Alerts say which way their packet went.
    #[serde(skip_serializing_if = "Option::is_none")]
    direction: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    community_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    in_iface: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pcap_filename: Option<&'a str>,
}

impl<'a> EveHead<'a> {
    /// The head of an event, with what `style` adds: the Community ID,
    /// and where the packet (or the flow's first) came in.
    pub fn styled(event_type: &'static str, a: &'a EventTuple, style: &'a EveStyle) -> Self {
        let mut h = EveHead::new(event_type, a);
        h.community_id = style.community_id.map(|seed| {
            let (sp, dp) = match a.icmp {
                Some((t, c)) => (u16::from(t), u16::from(c)),
                None => (a.src_port, a.dst_port),
            };
            community_id::community_id(
                seed,
                addr_to_ip(a.network, &a.src),
                addr_to_ip(a.network, &a.dst),
                a.proto,
                sp,
                dp,
            )
        });
        let name = |names: &'a [String]| names.get(usize::from(a.source)).map(String::as_str);
        match &style.sources {
            Sources::Files(f) => h.pcap_filename = name(f),
            Sources::Ports(p) => h.in_iface = name(p),
            Sources::None => {}
        }
        h
    }

    pub fn new(event_type: &'static str, a: &'a EventTuple) -> Self {
        let has_ports = matches!(a.proto, 6 | 17 | 132);
        EveHead {
            direction: None,
            community_id: None,
            in_iface: None,
            pcap_filename: None,
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
    /// The transaction an app-layer rule matched on.
    #[serde(skip_serializing_if = "Option::is_none")]
    tx_id: Option<u64>,
    alert: AlertSection<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    http: Option<EveHttp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dns: Option<EveDns>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls: Option<EveTls>,
    #[serde(skip_serializing_if = "Option::is_none")]
    app_proto: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    flow: Option<AlertFlow>,
    #[serde(skip_serializing_if = "Option::is_none")]
    traffic: Option<EveTraffic<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tollgate: Option<Ours>,
}

/// The flow's traffic tags (`traffic/id/…` and `traffic/label/…`
/// flowbits), as Suricata writes them.
#[derive(Serialize, Debug, Default)]
pub struct EveTraffic<'a> {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    id: Vec<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    label: Vec<&'a str>,
}

impl<'a> EveTraffic<'a> {
    /// The tags in `mask` (None when there are none).
    fn of(engine: Option<&'a Engine>, mask: u16) -> Option<EveTraffic<'a>> {
        let e = engine.filter(|_| mask != 0)?;
        let (id, label) = e.traffic_names(mask);
        Some(EveTraffic { id, label })
    }
}

/// An alert's `flow`: the flow's counters then, its start, and its
/// client and server (whichever way the alerting packet went).
#[derive(Serialize)]
struct AlertFlow {
    pkts_toserver: u64,
    pkts_toclient: u64,
    bytes_toserver: u64,
    bytes_toclient: u64,
    start: String,
    src_ip: String,
    dest_ip: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    src_port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dest_port: Option<u16>,
}

impl AlertFlow {
    fn new(s: &FlowSnap, at: &EventTuple) -> Self {
        let to_client = at.to_server == Some(false);
        let (src, dst, sp, dp) = if to_client {
            (&at.dst, &at.src, at.dst_port, at.src_port)
        } else {
            (&at.src, &at.dst, at.src_port, at.dst_port)
        };
        let has_ports = matches!(at.proto, 6 | 17 | 132);
        AlertFlow {
            pkts_toserver: s.pkts_toserver,
            pkts_toclient: s.pkts_toclient,
            bytes_toserver: s.bytes_toserver,
            bytes_toclient: s.bytes_toclient,
            start: format_timestamp(s.start_ns),
            src_ip: eve_addr(at.network, src),
            dest_ip: eve_addr(at.network, dst),
            src_port: has_ports.then_some(sp),
            dest_port: has_ports.then_some(dp),
        }
    }
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
    /// The X-Forwarded-For client (`--xff extra-data`).
    #[serde(skip_serializing_if = "Option::is_none")]
    xff: Option<String>,
}

/// Writes one alert as an EVE line, as Suricata writes alerts.
pub fn write_alert(
    out: &mut impl Write,
    a: &AlertRecord,
    rule: &EngineRule,
    style: &EveStyle,
) -> io::Result<()> {
    write_alert_with(out, a, rule, None, None, style)
}

/// A transaction's fields as its protocol's EVE object (from the record
/// the worker packed).
#[derive(Debug, Clone, PartialEq)]
pub enum AppRecord {
    Http(EveHttp),
    Dns(EveDns),
    Tls(EveTls),
}

impl AppRecord {
    /// The record of a transaction of `proto`: HTTP's packed fields, or a
    /// DNS message after its direction.
    pub fn unpack(proto: crate::applayer::AppProto, rec: &[u8]) -> Option<AppRecord> {
        match proto {
            crate::applayer::AppProto::Dns => {
                let (&dir, raw) = rec.split_first()?;
                EveDns::of(raw, dir != 0).map(AppRecord::Dns)
            }
            crate::applayer::AppProto::Tls => EveTls::of(rec).map(AppRecord::Tls),
            _ => Some(AppRecord::Http(EveHttp::unpack(rec))),
        }
    }
}

/// `write_alert`, with the app-layer object of the alert's transaction.
pub fn write_alert_with(
    out: &mut impl Write,
    a: &AlertRecord,
    rule: &EngineRule,
    app: Option<AppRecord>,
    traffic: Option<EveTraffic<'_>>,
    style: &EveStyle,
) -> io::Result<()> {
    let (mut http, mut dns, mut tls) = (None, None, None);
    match app {
        Some(AppRecord::Http(h)) => http = Some(h),
        Some(AppRecord::Dns(d)) => dns = Some(d),
        Some(AppRecord::Tls(t)) => tls = Some(t),
        None => {}
    }
    let xff = http.as_mut().and_then(|h| h.xff.take());
    let llm = http.as_mut().and_then(|h| h.llm.take());
    let mut ev = EveAlert {
        http,
        dns,
        tls,
        traffic,
        head: EveHead {
            pkt_src: Some(a.at.pkt_src.name()),
            direction: a
                .at
                .to_server
                .map(|t| if t { "to_server" } else { "to_client" }),
            ..EveHead::styled("alert", &a.at, style)
        },
        tx_id: a.tx.map(|t| t.id),
        app_proto: a.tx.map(|t| t.proto.name()),
        alert: AlertSection {
            action: if a.blocked { "blocked" } else { "allowed" },
            gid: rule.gid,
            signature_id: rule.sid,
            rev: rule.rev,
            signature: &rule.msg,
            category: &rule.category,
            severity: rule.priority,
            metadata: &rule.metadata,
            xff: None,
        },
        flow: a.flow.as_ref().map(|s| AlertFlow::new(s, &a.at)),
        tollgate: style.extensions.then_some(Ours {
            worker: a.at.worker,
            vni: a.at.vni,
            llm,
            ..Ours::default()
        }),
    };
    match style.xff {
        XffMode::Off => {}
        XffMode::ExtraData => ev.alert.xff = xff,
        XffMode::Overwrite => {
            if let Some(ip) = xff {
                if a.at.to_server == Some(false) {
                    ev.head.dest_ip = ip;
                } else {
                    ev.head.src_ip = ip;
                }
            }
        }
    }
    serde_json::to_writer(&mut *out, &ev)?;
    out.write_all(b"\n")
}

/// The EVE `http` object: Suricata's field names, each only when the
/// transaction has it.
#[derive(Serialize, Default, Debug, Clone, PartialEq)]
pub struct EveHttp {
    #[serde(skip_serializing_if = "Option::is_none")]
    hostname: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    http_user_agent: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    http_content_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    http_refer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    http_method: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    protocol: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    length: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    redirect: Option<String>,
    /// The X-Forwarded-For client (`--xff extra-data`).
    #[serde(skip_serializing_if = "Option::is_none")]
    xff: Option<String>,
    /// A file's name and hashes, written in `fileinfo`, not here.
    #[serde(skip)]
    filename: Option<String>,
    #[serde(skip)]
    md5: Option<String>,
    #[serde(skip)]
    sha1: Option<String>,
    #[serde(skip)]
    sha256: Option<String>,
    /// Ours, written under `tollgate`.
    #[serde(skip)]
    pub llm: Option<Box<EveLlm>>,
    #[serde(skip)]
    pub artifact: Option<Box<EveArtifact>>,
}

impl EveHttp {
    /// From a record the worker packed (`applayer::http::logger::pack`).
    pub fn unpack(rec: &[u8]) -> EveHttp {
        use crate::applayer::http::logger::{unpack, Field};
        let mut h = EveHttp::default();
        for (f, v) in unpack(rec) {
            let text = || Some(String::from_utf8_lossy(v).into_owned());
            let num = || std::str::from_utf8(v).ok().and_then(|s| s.parse().ok());
            match f {
                Field::Hostname => h.hostname = text(),
                Field::Url => h.url = text(),
                Field::UserAgent => h.http_user_agent = text(),
                Field::ContentType => h.http_content_type = text(),
                Field::Refer => h.http_refer = text(),
                Field::Method => h.http_method = text(),
                Field::Protocol => h.protocol = text(),
                Field::Status => h.status = num(),
                Field::Length => h.length = num(),
                Field::Redirect => h.redirect = text(),
                Field::Filename => h.filename = text(),
                Field::Md5 => h.md5 = text(),
                Field::Sha1 => h.sha1 = text(),
                Field::Sha256 => h.sha256 = text(),
                Field::Xff => h.xff = text(),
                Field::LlmEndpoint
                | Field::LlmModel
                | Field::LlmMessages
                | Field::LlmPromptBytes
                | Field::LlmTools
                | Field::LlmStreamed
                | Field::LlmCompletionBytes
                | Field::LlmError
                | Field::LlmPrompt
                | Field::LlmCompletion => {
                    let l = h.llm.get_or_insert_with(Box::default);
                    let n = num().unwrap_or(0);
                    match f {
                        Field::LlmEndpoint => l.endpoint = text().unwrap_or_default(),
                        Field::LlmModel => l.model = text(),
                        Field::LlmMessages => l.messages = n,
                        Field::LlmPromptBytes => l.prompt_bytes = n,
                        Field::LlmTools => l.tools = lines(v),
                        Field::LlmStreamed => l.streamed = n != 0,
                        Field::LlmCompletionBytes => l.completion_bytes = n,
                        Field::LlmError => l.error = text(),
                        Field::LlmPrompt => l.prompt = text(),
                        _ => l.completion = text(),
                    }
                }
                Field::ArtFormat
                | Field::ArtImports
                | Field::ArtSuspicious
                | Field::ArtTensors
                | Field::ArtError => {
                    let a = h.artifact.get_or_insert_with(Box::default);
                    match f {
                        Field::ArtFormat => a.format = text().unwrap_or_default(),
                        Field::ArtImports => a.pickle_imports = Some(lines(v)),
                        Field::ArtSuspicious => a.pickle_suspicious = Some(v == b"1"),
                        Field::ArtTensors => a.tensors = num(),
                        _ => a.error = text(),
                    }
                }
            }
        }
        h
    }
}

#[derive(Serialize)]
struct EveTx<'a> {
    #[serde(flatten)]
    head: EveHead<'a>,
    tx_id: u64,
    http: EveHttp,
    #[serde(skip_serializing_if = "Option::is_none")]
    tollgate: Option<Ours>,
}

#[derive(Serialize)]
struct EveFile<'a> {
    #[serde(flatten)]
    head: EveHead<'a>,
    http: EveHttp,
    app_proto: &'static str,
    fileinfo: FileSection,
    #[serde(skip_serializing_if = "Option::is_none")]
    tollgate: Option<Ours>,
}

#[derive(Serialize)]
struct FileSection {
    filename: String,
    /// What a model artifact is (we know ours without libmagic).
    #[serde(skip_serializing_if = "Option::is_none")]
    magic: Option<&'static str>,
    gaps: bool,
    state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    md5: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sha1: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sha256: Option<String>,
    stored: bool,
    size: u64,
    tx_id: u64,
}

/// Writes a complete transaction as an EVE `http` event, as Suricata's
/// HTTP logger does (from the client's side); a file it carried as a
/// `fileinfo` event (from the side that sent it).
pub fn write_tx(
    out: &mut impl Write,
    t: &TxRecord,
    mut http: EveHttp,
    style: &EveStyle,
) -> io::Result<()> {
    let (llm, artifact) = (http.llm.take(), http.artifact.take());
    let xff = http.xff.take();
    if let Some(f) = t.file {
        let mut at = t.at;
        if !f.to_server {
            at = at.reversed();
        }
        let ev = EveFile {
            head: EveHead::styled("fileinfo", &at, style),
            fileinfo: FileSection {
                filename: http.filename.take().unwrap_or_default(),
                magic: artifact
                    .as_ref()
                    .and_then(|a| crate::applayer::model::Format::of_name(a.format.as_bytes()))
                    .map(crate::applayer::model::Format::magic),
                gaps: f.gaps,
                state: if f.closed { "CLOSED" } else { "TRUNCATED" },
                md5: http.md5.take(),
                sha1: http.sha1.take(),
                sha256: http.sha256.take(),
                stored: false,
                size: f.size,
                tx_id: t.tx.id,
            },
            http,
            app_proto: t.tx.proto.name(),
            tollgate: style.extensions.then_some(Ours {
                worker: t.at.worker,
                vni: t.at.vni,
                artifact,
                ..Ours::default()
            }),
        };
        serde_json::to_writer(&mut *out, &ev)?;
        return out.write_all(b"\n");
    }
    let mut head = EveHead::styled("http", &t.at, style);
    match (style.xff, xff) {
        (XffMode::ExtraData, xff) => http.xff = xff,
        // The event is written from the client's side.
        (XffMode::Overwrite, Some(ip)) => head.src_ip = ip,
        _ => {}
    }
    let ev = EveTx {
        head,
        tx_id: t.tx.id,
        http,
        tollgate: style.extensions.then_some(Ours {
            worker: t.at.worker,
            vni: t.at.vni,
            llm,
            ..Ours::default()
        }),
    };
    serde_json::to_writer(&mut *out, &ev)?;
    out.write_all(b"\n")
}

#[derive(Serialize)]
struct EveTlsTx<'a> {
    #[serde(flatten)]
    head: EveHead<'a>,
    tls: EveTls,
    #[serde(skip_serializing_if = "Option::is_none")]
    tollgate: Option<Ours>,
}

/// Writes a TLS handshake as an EVE `tls` event, from the client's side.
pub fn write_tls(
    out: &mut impl Write,
    t: &TxRecord,
    tls: EveTls,
    style: &EveStyle,
) -> io::Result<()> {
    let ev = EveTlsTx {
        head: EveHead::styled("tls", &t.at, style),
        tls,
        tollgate: style.extensions.then_some(Ours {
            worker: t.at.worker,
            vni: t.at.vni,
            ..Ours::default()
        }),
    };
    serde_json::to_writer(&mut *out, &ev)?;
    out.write_all(b"\n")
}

#[derive(Serialize)]
struct EveDnsTx<'a> {
    #[serde(flatten)]
    head: EveHead<'a>,
    tx_id: u64,
    dns: EveDns,
    #[serde(skip_serializing_if = "Option::is_none")]
    tollgate: Option<Ours>,
}

/// Writes a DNS message's transaction as an EVE `dns` event, from the
/// side that sent it (`rec`: its direction, then the message).
pub fn write_dns(
    out: &mut impl Write,
    t: &TxRecord,
    rec: &[u8],
    style: &EveStyle,
) -> io::Result<()> {
    let Some((&dir, raw)) = rec.split_first() else {
        return Ok(());
    };
    let Some(dns) = EveDns::of(raw, dir != 0) else {
        return Ok(());
    };
    // The record's tuple is the client's.
    let at = if dir != 0 { t.at } else { t.at.reversed() };
    let ev = EveDnsTx {
        head: EveHead::styled("dns", &at, style),
        tx_id: t.tx.id,
        dns,
        tollgate: style.extensions.then_some(Ours {
            worker: t.at.worker,
            vni: t.at.vni,
            ..Ours::default()
        }),
    };
    serde_json::to_writer(&mut *out, &ev)?;
    out.write_all(b"\n")
}

#[derive(Serialize)]
struct EveAnomaly<'a> {
    #[serde(flatten)]
    head: EveHead<'a>,
    anomaly: AnomalySection,
    #[serde(skip_serializing_if = "Option::is_none")]
    tollgate: Option<OursAnomaly>,
}

#[derive(Serialize)]
struct AnomalySection {
    #[serde(skip_serializing_if = "Option::is_none")]
    app_proto: Option<&'static str>,
    #[serde(rename = "type")]
    kind: &'static str,
    event: &'static str,
    /// Where an app-layer anomaly was found (Suricata: the parser).
    #[serde(skip_serializing_if = "Option::is_none")]
    layer: Option<&'static str>,
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
pub fn write_anomaly(out: &mut impl Write, an: &AnomalyRecord, style: &EveStyle) -> io::Result<()> {
    let (kind, event) = an.event.names();
    let ev = EveAnomaly {
        head: EveHead::styled("anomaly", &an.at, style),
        anomaly: AnomalySection {
            app_proto: matches!(an.event, Anomaly::Http(_)).then_some("http"),
            kind,
            event,
            layer: matches!(an.event, Anomaly::Http(_)).then_some("proto_parser"),
        },
        tollgate: style.extensions.then_some(OursAnomaly {
            worker: an.at.worker,
            vni: an.at.vni,
            blocked: an.blocked,
        }),
    };
    serde_json::to_writer(&mut *out, &ev)?;
    out.write_all(b"\n")
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
    #[serde(skip_serializing_if = "Option::is_none")]
    app_proto: Option<&'static str>,
    flow: FlowSection,
    #[serde(skip_serializing_if = "Option::is_none")]
    tcp: Option<TcpSection>,
    #[serde(skip_serializing_if = "Option::is_none")]
    traffic: Option<EveTraffic<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tollgate: Option<Ours>,
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
    /// `local`: a `bypass` rule took it out of inspection.
    #[serde(skip_serializing_if = "Option::is_none")]
    bypass: Option<&'static str>,
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
    ts_max_regions: u8,
    tc_max_regions: u8,
}

#[derive(Serialize, Default)]
struct Ours {
    worker: u16,
    /// The VXLAN VNI of a tenant flow seen inside a tunnel.
    #[serde(skip_serializing_if = "Option::is_none")]
    vni: Option<u32>,
    /// The LLM-API call the transaction is (http events, alerts).
    #[serde(skip_serializing_if = "Option::is_none")]
    llm: Option<Box<EveLlm>>,
    /// The model artifact the file is (fileinfo events).
    #[serde(skip_serializing_if = "Option::is_none")]
    artifact: Option<Box<EveArtifact>>,
    /// The segmentation policy's zones and decision (flow events).
    #[serde(skip_serializing_if = "Option::is_none")]
    policy: Option<EvePolicy>,
}

/// The `tollgate.policy` object of flow events and policy alerts.
#[derive(serde::Serialize, Debug, Clone, PartialEq, Eq)]
pub struct EvePolicy {
    pub from_zone: String,
    pub to_zone: String,
    pub action: &'static str,
    /// The rule that decided (`file:line`), or `default`.
    pub rule: String,
    pub generation: u32,
}

impl EvePolicy {
    fn of(p: &crate::policy::Policy, m: &crate::policy::enforce::PolicySnap) -> EvePolicy {
        let rule = p.rules.get(usize::from(m.rule)).map_or_else(
            || "default".to_string(),
            |r| format!("{}:{}", p.file, r.line),
        );
        EvePolicy {
            from_zone: p.zone_name(m.from).to_string(),
            to_zone: p.zone_name(m.to).to_string(),
            action: if m.allow { "allow" } else { "deny" },
            rule,
            generation: m.generation,
        }
    }
}

/// Writes a policy alert (gid 1, sid 9,230,000 for the default deny,
/// 9,230,001 + k for rule k) with its newline.
pub fn write_policy_alert(
    out: &mut impl Write,
    a: &crate::events::PolicyAlert,
    p: &crate::policy::Policy,
    style: &EveStyle,
) -> io::Result<()> {
    let pol = EvePolicy::of(p, &a.mark);
    let ev = EvePolicyAlert {
        head: EveHead::styled("alert", &a.at, style),
        alert: ScoreSection {
            action: if a.blocked { "blocked" } else { "allowed" },
            gid: 1,
            signature_id: crate::policy::enforce::sid(a.mark.rule),
            rev: 1,
            signature: format!(
                "TOLLGATE POLICY deny {} -> {} ({})",
                pol.from_zone,
                pol.to_zone,
                if pol.rule == "default" {
                    "default deny between zones".to_string()
                } else {
                    pol.rule.clone()
                }
            ),
            category: "Segmentation policy violation",
            severity: 2,
        },
        tollgate: style.extensions.then(|| Ours {
            worker: a.at.worker,
            policy: Some(pol),
            ..Ours::default()
        }),
    };
    serde_json::to_writer(&mut *out, &ev)?;
    out.write_all(b"\n")
}

#[derive(serde::Serialize)]
struct EvePolicyAlert<'a> {
    #[serde(flatten)]
    head: EveHead<'a>,
    alert: ScoreSection,
    #[serde(skip_serializing_if = "Option::is_none")]
    tollgate: Option<Ours>,
}

/// `tollgate.llm`: what an LLM-API call is, without its text unless
/// `--eve-llm-text` asked for it.
#[derive(Serialize, Default, Debug, Clone, PartialEq)]
pub struct EveLlm {
    pub endpoint: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    pub messages: u64,
    pub prompt_bytes: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<String>,
    pub streamed: bool,
    pub completion_bytes: u64,
    /// Why the response's JSON was not read whole.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completion: Option<String>,
}

/// A packed field's lines (tool names, imports), each as text.
fn lines(v: &[u8]) -> Vec<String> {
    v.split(|&c| c == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .collect()
}

/// `tollgate.artifact`: what model file a `fileinfo` event's file is.
#[derive(Serialize, Default, Debug, Clone, PartialEq)]
pub struct EveArtifact {
    pub format: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pickle_imports: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pickle_suspicious: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tensors: Option<u64>,
    /// Why it does not hold together (a pickle walk's error, a
    /// safetensors header's lie).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Writes one flow record as an EVE line (with the newline).
pub fn write_flow(out: &mut impl Write, r: &FlowRecord, style: &EveStyle) -> io::Result<()> {
    write_flow_with(out, r, None, None, style)
}

/// `write_flow`, with the flow's traffic tags.
pub fn write_flow_with(
    out: &mut impl Write,
    r: &FlowRecord,
    traffic: Option<EveTraffic<'_>>,
    policy: Option<&crate::policy::Policy>,
    style: &EveStyle,
) -> io::Result<()> {
    let icmp = r.icmp;
    // Suricata stamps a flow record with the time it is logged (in a
    // replay, capture time then).
    let mut at = r.tuple(r.logged_ns.max(r.end_ns), r.worker);
    at.icmp = icmp.map(|i| (i.icmp_type, i.icmp_code));
    // Where it came in: where its first packet did (Suricata names the
    // flow's capture interface, and the file it is reading).
    let mut head = EveHead::styled("flow", &at, style);
    // The flow's ICMP fields are the flow section's own (below).
    head.icmp_type = None;
    head.icmp_code = None;
    let ev = EveFlow {
        head,
        icmp_type: icmp.map(|i| i.icmp_type),
        icmp_code: icmp.map(|i| i.icmp_code),
        response_icmp_type: icmp.and_then(|i| i.response).map(|(t, _)| t),
        response_icmp_code: icmp.and_then(|i| i.response).map(|(_, c)| c),
        app_proto: (r.app_proto != crate::applayer::AppProto::Unknown).then(|| r.app_proto.name()),
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
            state: if r.bypassed {
                "bypassed"
            } else {
                r.state.name()
            },
            reason: r.reason.name(),
            alerted: r.alerted,
            bypass: r.bypassed.then_some("local"),
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
            ts_max_regions: t.max_regions[0],
            tc_max_regions: t.max_regions[1],
        }),
        traffic,
        tollgate: style.extensions.then(|| Ours {
            worker: r.worker,
            vni: r.vni,
            policy: policy
                .filter(|_| r.policy.generation != 0)
                .map(|p| EvePolicy::of(p, &r.policy)),
            ..Ours::default()
        }),
    };
    serde_json::to_writer(&mut *out, &ev)?;
    out.write_all(b"\n")
}

/// Writes a model alert as an EVE line (with its newline), as Suricata
/// writes alerts, field order too, with ours in `tollgate`.
pub fn write_score(out: &mut impl Write, a: &ScoreAlert, style: &EveStyle) -> io::Result<()> {
    serde_json::to_writer(&mut *out, &score_event(a, style))?;
    out.write_all(b"\n")
}

fn score_event<'a>(a: &'a ScoreAlert, style: &'a EveStyle) -> EveScore<'a> {
    EveScore {
        head: EveHead::styled("alert", &a.at, style),
        alert: ScoreSection {
            action: if a.blocked { "blocked" } else { "allowed" },
            gid: crate::scoring::SCORE_GID,
            signature_id: if a.anomaly {
                crate::scoring::ANOMALY_SID
            } else {
                crate::scoring::SCORE_SID
            },
            rev: 1,
            signature: if a.anomaly {
                format!(
                    "TOLLGATE ANOMALY flow unlike the learnt baseline: scored at or above {} by anomaly detector {}",
                    a.threshold,
                    a.model_name()
                )
            } else {
                format!(
                    "TOLLGATE SCORE flow scored at or above {} by model {}",
                    a.threshold,
                    a.model_name()
                )
            },
            category: if a.anomaly {
                "Anomalous flow (anomaly detector)"
            } else {
                "Anomalous flow (model score)"
            },
            severity: 2,
        },
        tollgate: style.extensions.then(|| ScoreOurs {
            worker: a.at.worker,
            score: a.score,
            model: a.model_name(),
            model_generation: a.model_generation,
            trigger: a.trigger.name(),
            top_features: a
                .top
                .iter()
                .filter(|t| t.2 > 0.0)
                .map(|&(i, v, c)| TopFeature {
                    name: crate::flow::features::FEATURES[usize::from(i)].name,
                    value: (!v.is_nan()).then_some(v),
                    contribution: c,
                })
                .collect(),
        }),
    }
}

/// Writes a prompt model alert as an EVE line (with its newline): an
/// alert on the request's transaction, ours in `tollgate`.
pub fn write_prompt_alert(
    out: &mut impl Write,
    a: &crate::events::PromptAlert,
    style: &EveStyle,
) -> io::Result<()> {
    let top: Vec<TopNgram<'_>> = a
        .ngrams()
        .map(|(ngram, contribution)| TopNgram {
            ngram,
            contribution,
        })
        .collect();
    let named: Vec<String> = top.iter().map(|t| format!("{:?}", t.ngram)).collect();
    let ev = EvePrompt {
        head: EveHead::styled("alert", &a.at, style),
        tx_id: a.tx_id,
        alert: ScoreSection {
            action: if a.blocked { "blocked" } else { "allowed" },
            gid: crate::scoring::SCORE_GID,
            signature_id: crate::scoring::PROMPT_SID,
            rev: 1,
            signature: format!(
                "TOLLGATE PROMPT injection or jailbreak scored {:.3} (threshold {}) by model {}: {}",
                a.score,
                a.threshold,
                a.model_name(),
                named.join(" ")
            ),
            category: "Attempted prompt injection (model score)",
            severity: 1,
        },
        app_proto: "http",
        tollgate: style.extensions.then(|| PromptOurs {
            worker: a.at.worker,
            score: a.score,
            model: a.model_name(),
            model_generation: a.model_generation,
            prompt_bytes: a.prompt_bytes,
            top_ngrams: top,
        }),
    };
    serde_json::to_writer(&mut *out, &ev)?;
    out.write_all(b"\n")
}

#[derive(serde::Serialize)]
struct EvePrompt<'a> {
    #[serde(flatten)]
    head: EveHead<'a>,
    tx_id: u64,
    alert: ScoreSection,
    app_proto: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    tollgate: Option<PromptOurs<'a>>,
}

#[derive(serde::Serialize)]
struct PromptOurs<'a> {
    worker: u16,
    score: f32,
    model: &'a str,
    model_generation: u32,
    prompt_bytes: u32,
    top_ngrams: Vec<TopNgram<'a>>,
}

#[derive(serde::Serialize)]
struct TopNgram<'a> {
    ngram: &'a str,
    /// Its term's share of the decision (the logit).
    contribution: f32,
}

#[derive(serde::Serialize)]
struct EveScore<'a> {
    #[serde(flatten)]
    head: EveHead<'a>,
    alert: ScoreSection,
    #[serde(skip_serializing_if = "Option::is_none")]
    tollgate: Option<ScoreOurs<'a>>,
}

#[derive(serde::Serialize)]
struct ScoreSection {
    action: &'static str,
    gid: u32,
    signature_id: u32,
    rev: u32,
    signature: String,
    category: &'static str,
    severity: u8,
}

#[derive(serde::Serialize)]
struct ScoreOurs<'a> {
    worker: u16,
    score: f32,
    model: &'a str,
    model_generation: u32,
    trigger: &'static str,
    top_features: Vec<TopFeature>,
}

#[derive(serde::Serialize)]
struct TopFeature {
    name: &'static str,
    /// Null when the feature was missing.
    value: Option<f32>,
    contribution: f32,
}

/// What the writer wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EveCounters {
    pub flow: u64,
    pub alert: u64,
    /// App-layer transaction events (`http`).
    pub tx: u64,
    pub anomaly: u64,
    pub engine: u64,
    pub stats: u64,
    /// A socket or Redis output's own counts (zero for a file).
    pub sink: sink::SinkCounters,
}

impl EveCounters {
    /// The stats JSON's `eve` object: events written by type, and for a
    /// socket or Redis output what it sent and lost (`sink`).
    pub fn to_json(&self, network: bool) -> serde_json::Value {
        let mut v = serde_json::json!({
            "flow": self.flow,
            "alert": self.alert,
            "tx": self.tx,
            "anomaly": self.anomaly,
            "engine": self.engine,
            "stats": self.stats,
        });
        if network {
            v["sink"] = self.sink.to_json();
        }
        v
    }
}

/// EVE settings from the command line, the same for replay and run.
#[derive(Debug, Clone)]
pub struct EveSettings {
    /// `--eve-types`.
    pub types: EveTypes,
    /// `--eve-flush`.
    pub flush: std::time::Duration,
    /// `--eve-extensions`.
    pub extensions: bool,
    /// `--community-id` (with `--community-id-seed`).
    pub community_id: Option<u16>,
    /// `--xff`.
    pub xff: XffMode,
    /// A `stats` event this often (`--stats-interval`; None: none).
    pub stats: Option<std::time::Duration>,
    /// Set by SIGHUP: reopen the file.
    pub reopen: Arc<std::sync::atomic::AtomicBool>,
}

impl Default for EveSettings {
    fn default() -> Self {
        EveSettings {
            types: EveTypes::ALL,
            flush: std::time::Duration::from_secs(1),
            extensions: true,
            community_id: None,
            xff: XffMode::Off,
            stats: None,
            reopen: Arc::default(),
        }
    }
}

impl EveSettings {
    /// The output to `path`, naming packet sources with `sources`.
    pub fn output(&self, path: &Path, sources: Sources) -> EveOutput {
        EveOutput {
            path: path.to_path_buf(),
            flush: self.flush,
            style: EveStyle {
                extensions: self.extensions,
                community_id: self.community_id,
                sources,
                xff: self.xff,
                types: self.types,
            },
            reopen: Arc::clone(&self.reopen),
        }
    }
}

/// Where EVE goes and how.
#[derive(Debug, Clone)]
pub struct EveOutput {
    /// A file (opened for append, so a restart or logrotate's
    /// copytruncate loses nothing), or `-` for standard output.
    pub path: std::path::PathBuf,
    /// Events reach the output within this (`--eve-flush`), and whenever
    /// the rings run dry.
    pub flush: std::time::Duration,
    pub style: EveStyle,
    /// Set (by SIGHUP) to have the file reopened, as logrotate expects.
    pub reopen: Arc<std::sync::atomic::AtomicBool>,
}

impl EveOutput {
    /// A file written with the defaults (tests, benches).
    pub fn file(path: &Path) -> Self {
        EveOutput {
            path: path.to_path_buf(),
            flush: std::time::Duration::from_secs(1),
            style: EveStyle::default(),
            reopen: Arc::default(),
        }
    }
}

/// The event-writer thread.
pub struct EveWriter {
    handle: JoinHandle<io::Result<EveCounters>>,
    lines: Option<crossbeam_channel::Sender<String>>,
}

/// The writer's output: a file it can reopen, standard output, or a
/// socket or Redis (`sink`).
enum Sink {
    File(std::path::PathBuf, BufWriter<File>),
    Stdout(BufWriter<io::Stdout>),
    Net(Box<sink::NetSink>),
}

impl Sink {
    fn open(path: &Path) -> io::Result<Sink> {
        let target = sink::Target::parse(&path.to_string_lossy())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        match target {
            sink::Target::Stdout => {
                return Ok(Sink::Stdout(BufWriter::with_capacity(
                    1 << 16,
                    io::stdout(),
                )))
            }
            sink::Target::File(_) => {}
            t => return Ok(Sink::Net(Box::new(sink::NetSink::new(t)))),
        }
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(Sink::File(
            path.to_path_buf(),
            BufWriter::with_capacity(1 << 20, f),
        ))
    }

    /// Reopens a file (after logrotate moved or truncated it).
    fn reopen(&mut self) -> io::Result<()> {
        if let Sink::File(path, w) = self {
            w.flush()?;
            *self = Sink::open(&path.clone())?;
        }
        Ok(())
    }
}

impl Write for Sink {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        match self {
            Sink::File(_, w) => w.write(b),
            Sink::Stdout(w) => w.write(b),
            Sink::Net(s) => s.write(b),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::File(_, w) => w.flush(),
            Sink::Stdout(w) => w.flush(),
            Sink::Net(s) => s.flush(),
        }
    }
}

impl EveWriter {
    /// Opens the output now (for append, creating it), so a bad path fails
    /// at start-up, and starts draining `rings` until every sender is gone.
    pub fn spawn(
        out: &EveOutput,
        rings: Vec<Receiver<Event>>,
        engine: Option<Arc<Engine>>,
    ) -> io::Result<Self> {
        EveWriter::spawn_with(out, rings, Engines::new(engine, None), Vec::new())
    }

    /// `spawn`, with the text arenas the rings' events name (by number).
    pub fn spawn_with(
        out: &EveOutput,
        rings: Vec<Receiver<Event>>,
        engines: Engines,
        texts: Vec<Arc<TextArena>>,
    ) -> io::Result<Self> {
        let sink = Sink::open(&out.path)?;
        let (tx, rx) = crossbeam_channel::bounded::<String>(64);
        let out = out.clone();
        let handle = std::thread::Builder::new()
            .name("tollgate-eve".into())
            .spawn(move || {
                let mut w = Writing {
                    engines,
                    texts,
                    buf: Vec::with_capacity(4096),
                };
                drain(sink, rings, rx, &mut w, &out)
            })?;
        Ok(EveWriter {
            handle,
            lines: Some(tx),
        })
    }

    /// Where whole EVE lines from outside the workers go (stats events);
    /// a full channel drops the line rather than wait.
    pub fn lines(&self) -> Option<crossbeam_channel::Sender<String>> {
        self.lines.clone()
    }

    /// Waits for the writer to drain and flush.
    pub fn join(mut self) -> io::Result<EveCounters> {
        self.lines = None;
        self.handle
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("EVE writer thread panicked")))
    }
}

/// What the writer reads events with: the rules (alerts name theirs by
/// number) and the text arenas (transactions name their fields there).
struct Writing {
    engines: Engines,
    texts: Vec<Arc<TextArena>>,
    buf: Vec<u8>,
}

/// The rules alerts and flow records are numbered by: the engine at start
/// (generation 0) and those reloads brought, the last few kept, as events
/// of an older generation may still be in the rings after a reload.
pub struct Engines {
    rules: Generations<u16, Engine>,
    /// The segmentation policy likewise, by its generation (from 1; 0 is
    /// no policy).
    policies: Generations<u32, crate::policy::Policy>,
}

/// Generations kept: a reload's events follow their rules through the
/// rings in well under one reload's time.
const ENGINES_KEPT: usize = 4;

/// The last few generations of something reloaded, and where new ones
/// come from (sent before any worker can use them).
struct Generations<K, T> {
    list: Vec<(K, Arc<T>)>,
    updates: Option<Receiver<(K, Arc<T>)>>,
}

impl<K: Copy + PartialEq, T> Generations<K, T> {
    fn new(first: Option<(K, Arc<T>)>, updates: Option<Receiver<(K, Arc<T>)>>) -> Self {
        Generations {
            list: first.into_iter().collect(),
            updates,
        }
    }

    /// Makes sure generation `g` is known, if it was sent.
    fn learn(&mut self, g: K) {
        if self.list.iter().any(|(k, _)| *k == g) {
            return;
        }
        if let Some(u) = &self.updates {
            self.list.extend(u.try_iter());
        }
        if self.list.len() > ENGINES_KEPT {
            let extra = self.list.len() - ENGINES_KEPT;
            self.list.drain(..extra);
        }
    }

    fn get(&self, g: K) -> Option<&T> {
        self.list
            .iter()
            .rev()
            .find(|(k, _)| *k == g)
            .map(|(_, t)| t.as_ref())
    }
}

impl Engines {
    /// `first` as generation 0, and later ones from `updates`.
    pub fn new(
        first: Option<Arc<Engine>>,
        updates: Option<Receiver<(u16, Arc<Engine>)>>,
    ) -> Engines {
        Engines {
            rules: Generations::new(first.map(|e| (0, e)), updates),
            policies: Generations::new(None, None),
        }
    }

    /// The policy at start (generation 1) and its reloads.
    pub fn with_policy(
        mut self,
        first: Option<Arc<crate::policy::Policy>>,
        updates: Option<Receiver<(u32, Arc<crate::policy::Policy>)>>,
    ) -> Engines {
        self.policies = Generations::new(first.map(|p| (1, p)), updates);
        self
    }

    fn learn_policy(&mut self, g: u32) {
        if g != 0 {
            self.policies.learn(g);
        }
    }

    fn policy(&self, g: u32) -> Option<&crate::policy::Policy> {
        self.policies.get(g)
    }

    fn learn(&mut self, g: u16) {
        self.rules.learn(g);
    }

    fn get(&self, g: u16) -> Option<&Engine> {
        self.rules.get(g)
    }
}

impl Writing {
    /// The text `r` names, copied out and let go in its arena.
    fn text(&mut self, r: Option<TextRef>) -> Option<&[u8]> {
        let r = r?;
        let a = self.texts.get(usize::from(r.arena))?;
        self.buf.clear();
        a.read(r, &mut self.buf);
        a.release(r);
        Some(&self.buf)
    }
}

fn write_event(
    out: &mut impl Write,
    ev: &Event,
    w: &mut Writing,
    style: &EveStyle,
    c: &mut EveCounters,
) -> io::Result<()> {
    if !style.types.wants(ev) {
        return Ok(());
    }
    match ev {
        Event::Flow(r) => {
            w.engines.learn(r.rules);
            w.engines.learn_policy(r.policy.generation);
            let engine = w.engines.get(r.rules);
            let traffic = EveTraffic::of(engine, engine.map_or(0, |e| e.traffic_mask(&r.bits)));
            let policy = w.engines.policy(r.policy.generation);
            write_flow_with(out, r, traffic, policy, style)?;
            c.flow += 1;
        }
        Event::Alert(a) => {
            w.engines.learn(a.rules);
            let proto = a.tx.map_or(crate::applayer::AppProto::Http, |t| t.proto);
            let app = w.text(a.text).and_then(|r| AppRecord::unpack(proto, r));
            let engine = w.engines.get(a.rules);
            if let Some(rule) = engine.and_then(|e| e.rules.get(a.rule as usize)) {
                let traffic = EveTraffic::of(engine, a.traffic);
                write_alert_with(out, a, rule, app, traffic, style)?;
                c.alert += 1;
            }
        }
        Event::Tx(t) if t.tx.proto == crate::applayer::AppProto::Tls => {
            // Counted as written only when it was (its text may be gone).
            if let Some(tls) = w.text(t.text).and_then(EveTls::of) {
                write_tls(out, t, tls, style)?;
                c.tx += 1;
            }
        }
        Event::Tx(t) if t.tx.proto == crate::applayer::AppProto::Dns => {
            if let Some(rec) = w.text(t.text) {
                write_dns(out, t, rec, style)?;
                c.tx += 1;
            }
        }
        Event::Tx(t) => {
            let http = w.text(t.text).map(EveHttp::unpack).unwrap_or_default();
            write_tx(out, t, http, style)?;
            c.tx += 1;
        }
        Event::Anomaly(a) => {
            write_anomaly(out, a, style)?;
            c.anomaly += 1;
        }
        Event::Score(a) => {
            write_score(out, a, style)?;
            c.alert += 1;
        }
        Event::Prompt(a) => {
            write_prompt_alert(out, a, style)?;
            c.alert += 1;
        }
        Event::Policy(a) => {
            w.engines.learn_policy(a.mark.generation);
            if let Some(p) = w.engines.policy(a.mark.generation) {
                write_policy_alert(out, a, p, style)?;
                c.alert += 1;
            }
        }
        Event::AlertsLost {
            worker,
            lost,
            ts_ns,
        } => {
            write_alerts_lost(out, *worker, *lost, *ts_ns, style)?;
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
    #[serde(skip_serializing_if = "Option::is_none")]
    tollgate: Option<AlertsLostOurs>,
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
    style: &EveStyle,
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
        tollgate: style.extensions.then_some(AlertsLostOurs {
            worker,
            alerts_lost: lost,
        }),
    };
    serde_json::to_writer(&mut *out, &ev)?;
    out.write_all(b"\n")
}

/// Events the writer takes from one ring before it looks at the others.
const BATCH: usize = 256;

/// Serializes `ev` into `line` (cleared first), then writes it to `out`
/// in one call: serde's dozens of small writes go to a `Vec`, not each
/// through the sink's dispatch and buffer (under an alert flood, 14 % of
/// the writer was `write_all` of fragments).
fn write_one(
    out: &mut impl Write,
    line: &mut Vec<u8>,
    ev: &Event,
    w: &mut Writing,
    style: &EveStyle,
    c: &mut EveCounters,
) -> io::Result<()> {
    line.clear();
    write_event(line, ev, w, style, c)?;
    out.write_all(line)
}

fn drain(
    mut out: Sink,
    mut rings: Vec<Receiver<Event>>,
    lines: Receiver<String>,
    w: &mut Writing,
    cfg: &EveOutput,
) -> io::Result<EveCounters> {
    use std::sync::atomic::Ordering;
    use std::time::Instant;
    let style = &cfg.style;
    let mut counters = EveCounters::default();
    // After a write error the writer keeps draining (and discarding) so that
    // workers never block on a dead output; the error is reported at the end.
    let mut failed: Option<io::Error> = None;
    let mut lines = Some(lines);
    let mut last_flush = Instant::now();
    let mut dirty = false;
    // Each event is serialized here, then written in one piece.
    let mut event_buf: Vec<u8> = Vec::with_capacity(4096);
    while !rings.is_empty() || lines.is_some() {
        /// What one wait found (no borrow of the rings outlives it).
        enum Got {
            Line(Option<String>),
            Event(usize, Option<Event>),
            Nothing,
        }
        let got = {
            let mut sel = Select::new();
            for r in &rings {
                sel.recv(r);
            }
            let lines_at = lines.as_ref().map(|l| sel.recv(l));
            let wait = cfg.flush.saturating_sub(last_flush.elapsed());
            match sel.select_timeout(wait.max(std::time::Duration::from_millis(1))) {
                Ok(op) if Some(op.index()) == lines_at => {
                    Got::Line(lines.as_ref().and_then(|l| op.recv(l).ok()))
                }
                Ok(op) => {
                    let i = op.index();
                    Got::Event(i, op.recv(&rings[i]).ok())
                }
                Err(_) => Got::Nothing,
            }
        };
        match got {
            Got::Line(Some(line)) => {
                // What the rings already hold happened before this line's
                // snapshot: written first, so the file reads in order.
                for r in &rings {
                    for _ in 0..r.len() {
                        let Ok(rec) = r.try_recv() else { break };
                        if failed.is_none() {
                            if let Err(e) =
                                write_one(&mut out, &mut event_buf, &rec, w, style, &mut counters)
                            {
                                failed = Some(e);
                            }
                        }
                    }
                }
                if failed.is_none() {
                    let r = out
                        .write_all(line.as_bytes())
                        .and_then(|_| out.write_all(b"\n"));
                    if let Err(e) = r {
                        failed = Some(e);
                    }
                    counters.stats += 1;
                    dirty = true;
                }
            }
            Got::Line(None) => lines = None,
            Got::Event(i, Some(rec)) => {
                let mut one = |rec: &Event| {
                    if failed.is_none() {
                        if let Err(e) =
                            write_one(&mut out, &mut event_buf, rec, w, style, &mut counters)
                        {
                            failed = Some(e);
                        }
                    }
                };
                one(&rec);
                // Take what else is waiting on this ring without
                // re-selecting (a bounded batch, so a busy ring cannot
                // starve the others or the flush).
                for _ in 0..BATCH {
                    match rings[i].try_recv() {
                        Ok(rec) => one(&rec),
                        Err(_) => break,
                    }
                }
                dirty = true;
            }
            Got::Event(i, None) => {
                rings.swap_remove(i);
            }
            Got::Nothing => {}
        }
        // Flush when the rings run dry, and at least every `flush` under
        // load, so what happened is in the file soon after.
        let idle = rings.iter().all(|r| r.is_empty());
        if dirty && (idle || last_flush.elapsed() >= cfg.flush) && failed.is_none() {
            if let Err(e) = out.flush() {
                failed = Some(e);
            }
            dirty = false;
            last_flush = Instant::now();
        } else if !dirty {
            last_flush = Instant::now();
        }
        if cfg.reopen.swap(false, Ordering::AcqRel) && failed.is_none() {
            if let Err(e) = out.reopen() {
                failed = Some(e);
            }
        }
    }
    if let Some(e) = failed {
        return Err(e);
    }
    out.flush()?;
    if let Sink::Net(s) = &mut out {
        s.finish();
        counters.sink = s.counters;
    }
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
            logged_ns: 1_259_098_033_000_000_000,
            source: 0,
            rules: 0,
            policy: Default::default(),
            state: FlowState::Closed,
            reason: EndReason::Timeout,
            tcp: Some(TcpSummary {
                flags: 0x1b,
                flags_ts: 0x1b,
                flags_tc: 0x1a,
                state: TcpState::Closed,
                max_regions: [1, 3],
            }),
            icmp: None,
            vni: None,
            alerted: false,
            bypassed: false,
            app_proto: crate::applayer::AppProto::Unknown,
        }
    }

    impl EventTuple {
        /// The tuple as the server's packets carry it.
        fn reversed_for_test(self) -> Self {
            EventTuple {
                src: self.dst,
                dst: self.src,
                src_port: self.dst_port,
                dst_port: self.src_port,
                ..self
            }
        }
    }

    fn line(r: &FlowRecord) -> Value {
        let mut buf = Vec::new();
        write_flow(&mut buf, r, &EveStyle::default()).unwrap();
        assert_eq!(buf.last(), Some(&b'\n'));
        assert_eq!(buf.iter().filter(|&&b| b == b'\n').count(), 1);
        serde_json::from_slice(&buf).unwrap()
    }

    #[test]
    fn tcp_flow_record_field_by_field() {
        let v = line(&tcp_record());
        // Suricata stamps a flow event with the time it is logged.
        assert_eq!(v["timestamp"], "2009-11-24T21:27:13.000000+0000");
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
        assert_eq!(
            (t["ts_max_regions"].as_u64(), t["tc_max_regions"].as_u64()),
            (Some(1), Some(3))
        );
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
    fn community_id_on_request_and_ours_only_with_extensions() {
        let style = EveStyle {
            extensions: false,
            community_id: Some(0),
            sources: Sources::Files(vec!["a.pcap".into()]),
            xff: XffMode::Off,
            types: EveTypes::ALL,
        };
        let mut buf = Vec::new();
        write_flow(&mut buf, &tcp_record(), &style).unwrap();
        let v: Value = serde_json::from_slice(&buf).unwrap();
        // Computed independently (Python's hashlib over the spec's layout).
        assert_eq!(v["community_id"], "1:S6/Vmi6tCwA4lvHqc/Sn+wQGYnk=");
        assert!(v.get("tollgate").is_none(), "extensions off");
        assert_eq!(v["pcap_filename"], "a.pcap");
        assert!(
            line(&tcp_record()).get("community_id").is_none(),
            "off by default"
        );
    }

    #[test]
    fn an_alerts_flow_names_the_client_whichever_way_the_packet_went() {
        let r = tcp_record();
        let mut at = r.tuple(r.end_ns, 1).reversed_for_test();
        at.to_server = Some(false);
        let f = serde_json::to_value(AlertFlow::new(&r.snap(), &at)).unwrap();
        assert_eq!(f["src_ip"], "192.168.2.7");
        assert_eq!(f["src_port"], 1041);
        assert_eq!(f["dest_ip"], "10.0.0.1");
        assert_eq!(f["dest_port"], 80);
        assert_eq!(f["pkts_toserver"], 5);
        assert_eq!(f["bytes_toclient"], 243);
        assert_eq!(f["start"], "2009-11-24T21:27:09.534255+0000");
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
        let w = EveWriter::spawn(&EveOutput::file(&path), vec![a_rx, b_rx], None).unwrap();
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
