//! Inspecting one packet (or a rebuilt datagram) of a flow: checksums,
//! the TCP tracker's word, reassembly, stream and packet rules, and what
//! an IPS does with the packet.

use super::*;
use crate::applayer::http::HttpEvent;
use crate::applayer::{AppProto, ParserSlot, Point};
use crate::detect::app::TxViews;
use crate::detect::matcher::{match_tx, Hit};
use crate::events::PolicyAlert;
use crate::events::{TxRecord, TxRef};
use crate::policy::enforce::PacketFacts;

/// What a stream event does: new bytes go to the app layer (whose
/// transactions are matched at the points they reach) and to the stream
/// rules; a finished direction's matching state is let go. Returns
/// whether a drop rule matched.
#[allow(clippy::too_many_arguments)]
pub(super) fn on_stream_event(
    ev: StreamEvent<'_>,
    rules: &mut Matcher,
    app: Option<&mut AppLayer>,
    slot: u32,
    tuple: &Tuple,
    tuple_dir: Dir,
    established: bool,
    bits: &mut FlowBits,
    ids: (u64, u64),
    snap: Option<FlowSnap>,
    hits: &mut features::Hits,
    out: Out<'_>,
    counters: &mut WorkerCounters,
    cfg: &WorkerConfig,
) -> bool {
    match ev {
        StreamEvent::Done(session) => {
            if let Some(sc) = rules.scanner.as_mut() {
                sc.release(session);
            }
            false
        }
        StreamEvent::Data(d) => {
            let to_server = d.dir == Dir::ToServer;
            let t = if d.dir == tuple_dir {
                *tuple
            } else {
                tuple.reversed()
            }
            .toward(to_server);
            let (flow_id, ts) = ids;
            let mut app_proto = AppProto::Unknown;
            let mut tx_blocked = false;
            if let Some(app) = app {
                let at = d.base + d.new_from as u64;
                let from_start = (d.base == 0).then_some(d.window);
                let new = &d.window[d.new_from..];
                let port53 = t.port53();
                let st = app.feed(slot, flow_id, to_server, new, at, from_start, port53);
                app_proto = app.proto(slot, flow_id);
                if let Some(st) = st {
                    let cx = TxCx {
                        tuple: &t,
                        to_server,
                        established,
                        app_proto,
                        ids,
                        snap,
                        slot,
                    };
                    tx_blocked = on_points(app, st, rules, &cx, bits, hits, out, counters, cfg);
                }
            }
            let view = PacketView {
                app_proto,
                ..t.view(to_server, established, d.window)
            };
            let alert = |h: Hit| {
                counters.alerts += 1;
                let mut a = t.alert(ts, flow_id, cfg.id, h.rule, h.blocked, snap);
                a.traffic = h.traffic;
                out.emit(counters, Event::Alert(a));
                hits[h.class] += 1;
            };
            let (blocked, lost) = match_stream(rules, &d, &view, cfg.mode, bits, ids, alert);
            counters.flowbits_full += lost;
            blocked || tx_blocked
        }
    }
}

/// What matching a transaction needs of the delivery that moved it on.
pub(super) struct TxCx<'a> {
    /// The delivery's tuple (its direction's).
    pub(super) tuple: &'a Tuple,
    pub(super) to_server: bool,
    pub(super) established: bool,
    pub(super) app_proto: AppProto,
    pub(super) ids: (u64, u64),
    pub(super) snap: Option<FlowSnap>,
    /// The flow's slot in the worker's table.
    pub(super) slot: u32,
}

/// Most points one delivery can move transactions through: five each for
/// the transactions in flight, with room to spare.
const POINTS: usize = 8 * crate::applayer::http::state::MAX_TX;

/// The points transactions of parser slot `st` reached: rules on the
/// buffers whole at each are matched on that transaction. Returns whether
/// a drop rule matched.
#[allow(clippy::too_many_arguments)]
pub(super) fn on_points(
    app: &mut AppLayer,
    st: ParserSlot,
    rules: &mut Matcher,
    cx: &TxCx<'_>,
    bits: &mut FlowBits,
    hits: &mut features::Hits,
    out: Out<'_>,
    counters: &mut WorkerCounters,
    cfg: &WorkerConfig,
) -> bool {
    let mut pts = [(0u8, Point::Complete); POINTS];
    let n = app.points(st).len().min(POINTS);
    pts[..n].copy_from_slice(&app.points(st)[..n]);
    let client = cx.tuple.toward(cx.to_server);
    let (to_server, to_client) = if cx.to_server {
        (client, client.reversed().toward(false))
    } else {
        (client.reversed().toward(true), client)
    };
    let empty: &[u8] = &[];
    let views = TxViews {
        to_server: PacketView {
            app_proto: cx.app_proto,
            ..to_server.view(true, cx.established, empty)
        },
        to_client: PacketView {
            app_proto: cx.app_proto,
            ..to_client.view(false, cx.established, empty)
        },
    };
    let (flow_id, ts) = cx.ids;
    use crate::events::EveTypes;
    let logging = out.events.live();
    // Text goes into an arena only for an event that is sent: the writer
    // frees it as it reads the event.
    let alert_text = out.events.wants(EveTypes::ALERT);
    let tx_records = out.events.wants(EveTypes::of_tx(cx.app_proto, false));
    let file_records = out.events.wants(EveTypes::FILEINFO);
    let mut blocked = false;
    for &(slot, point) in &pts[..n] {
        let (bufs, blocks) = app.load(st, slot);
        let tx = TxRef {
            proto: cx.app_proto,
            id: bufs.tx().id,
        };
        // An error answer (a refused token, a missing path) is a flow
        // feature: many of them from one client is stuffing or probing.
        if point == Point::ResponseHeaders && st.proto == AppProto::Http && bufs.tx().status >= 400
        {
            let e = &mut hits[features::HTTP_ERRORS];
            *e = e.saturating_add(1);
        }
        // Alerts wait until matching is done: their transaction's record
        // is packed once for them all.
        let mut found = [(0u32, false, 0u16); ALERTS_PER_POINT];
        let mut nf = 0;
        let alert = |h: Hit| {
            counters.alerts += 1;
            hits[h.class] += 1;
            if nf < ALERTS_PER_POINT {
                found[nf] = (h.rule, h.blocked, h.traffic);
                nf += 1;
            }
        };
        let (b, lost) = match_tx(
            rules, point, bufs, blocks, &views, cfg.mode, bits, cx.ids, alert,
        );
        counters.flowbits_full += lost;
        blocked |= b;
        if nf > 0 {
            let record: &[u8] = if alert_text { app.log_record() } else { &[] };
            for &(rule, b, traffic) in &found[..nf] {
                let mut a = cx.tuple.alert(ts, flow_id, cfg.id, rule, b, cx.snap);
                a.tx = Some(tx);
                a.traffic = traffic;
                // Each alert takes its own copy: the writer lets each go
                // as it reads it.
                if alert_text {
                    a.text = out.events.text(&mut counters.emit, true, record);
                }
                out.emit(counters, Event::Alert(a));
            }
        }
        if let (Point::RequestBody, Some(port)) = (point, out.prompts) {
            // The request's body is whole: its prompt goes to the scorer.
            let (bufs, blocks) = app.loaded();
            if bufs.ai && bufs.proto() == AppProto::Http {
                let b = crate::applayer::buffer::Buffer::new(
                    crate::applayer::buffer::Kind::LlmPrompt,
                    Some(true),
                );
                if let Some(p) = bufs.get(blocks, b).filter(|p| !p.is_empty()) {
                    let at = to_server.at(ts, flow_id, cfg.id);
                    let o = port.offer(at, cx.slot, tx.id, p);
                    counters.scoring.offered(o);
                }
            }
        }
        if point == Point::Complete {
            app.count_ai();
        }
        if point == Point::Complete && logging {
            // The transaction's events as anomalies, then its record, from
            // the client's side.
            let mut at = to_server.at(ts, flow_id, cfg.id);
            at.to_server = None;
            // The flow's VLANs, whichever packet completed it.
            if let Some(s) = cx.snap {
                (at.vlan, at.vlan_count) = (s.vlan, s.vlan_count);
            }
            let (bufs, _) = app.loaded();
            let raised = if bufs.proto() == AppProto::Http {
                bufs.tx().events
            } else {
                0
            };
            for e in HttpEvent::ALL.into_iter().filter(|e| raised & e.bit() != 0) {
                let rec = AnomalyRecord {
                    at,
                    event: Anomaly::Http(e),
                    blocked: false,
                };
                out.emit(counters, Event::Anomaly(rec));
            }
            if tx_records {
                let text = out.events.text(&mut counters.emit, false, app.log_record());
                let file = None;
                out.emit(counters, Event::Tx(TxRecord { at, tx, text, file }));
            }
            let files = if file_records {
                app.files()
            } else {
                Default::default()
            };
            for f in files.iter() {
                let record = app.file_record(f);
                let text = out.events.text(&mut counters.emit, false, record);
                let file = Some(f);
                out.emit(counters, Event::Tx(TxRecord { at, tx, text, file }));
            }
        }
    }
    app.done(st);
    blocked
}

/// Alerts logged per transaction point at most (more are still counted,
/// and act).
const ALERTS_PER_POINT: usize = 64;

/// A flow ended: what its streams still hold is matched (each hole a gap),
/// their sessions go back, its feature record goes to the scorer and its
/// flow record out.
#[allow(clippy::too_many_arguments)]
pub(super) fn flow_ended(
    r: &FlowRecord,
    stream: Option<&mut Reassembly>,
    rules: Option<&mut Matcher>,
    mut app: Option<&mut AppLayer>,
    scoring: Option<&mut WorkerScoring>,
    events: &EventRings,
    counters: &mut WorkerCounters,
    cfg: &WorkerConfig,
) {
    let mut hits = [0u16; features::HIT_BUCKETS];
    let mut tcp = r.tcp;
    if let (Some(t), Some(re)) = (tcp.as_mut(), stream.as_deref()) {
        t.max_regions = re.max_regions(r.slot, r.flow_id);
    }
    if let (Some(re), Some(rules)) = (stream, rules) {
        let out = Out {
            events,
            wait: false,
            prompts: prompt_port(&scoring),
        };
        hits = flow_streams_end(r, re, rules, app.as_deref_mut(), out, counters, cfg);
    }
    let app_proto = app.map_or(AppProto::Unknown, |a| a.release(r.slot, r.flow_id));
    let r = FlowRecord {
        alerted: r.alerted || features::alerted(&hits),
        tcp,
        app_proto,
        ..*r
    };
    // The scorer's record carries what the app layer found.
    if let Some(ws) = scoring {
        ws.ended(&r, &hits, false, &mut counters.scoring);
    }
    offer(events, counters, &r);
}

/// Where a packet came from, for EVE: a tenant frame out of VXLAN is the
/// tunnel's.
fn packet_source(pkt: &RawPacket<'_>, d: &Decoded) -> PktSrc {
    match pkt.src {
        PktSrc::Wire if d.vni.is_some() => PktSrc::Vxlan,
        s => s,
    }
}

/// Flushes an ended flow's streams into the matcher and frees them.
pub(super) fn flow_streams_end(
    r: &FlowRecord,
    re: &mut Reassembly,
    rules: &mut Matcher,
    mut app: Option<&mut AppLayer>,
    out: Out<'_>,
    counters: &mut WorkerCounters,
    cfg: &WorkerConfig,
) -> features::Hits {
    let mut hits = [0u16; features::HIT_BUCKETS];
    if r.proto != 6 {
        return hits;
    }
    let tuple = Tuple::of_flow(r, Dir::ToServer).for_packet(0, PktSrc::FlowTimeout, 0);
    let established = r.tcp.is_some_and(|t| t.state.is_established());
    let mut bits = r.bits;
    // A flow's end is a pseudo-packet of its own, with its own alert cap;
    // it may come while a packet is being inspected (a timeout it
    // triggered), whose count is kept.
    let packet_alerts = std::mem::take(&mut rules.packet_alerts);
    re.end(r.slot, r.flow_id, &mut |ev| {
        on_stream_event(
            ev,
            rules,
            app.as_deref_mut(),
            r.slot,
            &tuple,
            Dir::ToServer,
            established,
            &mut bits,
            (r.flow_id, r.end_ns),
            Some(r.snap()),
            &mut hits,
            out,
            counters,
            cfg,
        );
    });
    // The parser closes: transactions reach what they can and complete.
    if let Some(app) = app {
        if let Some(st) = app.close(r.slot, r.flow_id) {
            let cx = TxCx {
                tuple: &tuple,
                to_server: true,
                established,
                app_proto: app.proto(r.slot, r.flow_id),
                ids: (r.flow_id, r.end_ns),
                snap: Some(r.snap()),
                slot: r.slot,
            };
            on_points(
                app, st, rules, &cx, &mut bits, &mut hits, out, counters, cfg,
            );
        }
    }
    rules.packet_alerts = packet_alerts;
    hits
}

/// What stage 2 needs to account a whole packet to its flow and match it
/// against the rules: borrowed from the worker's fields for one call.
pub(super) struct Inspector<'a> {
    pub(super) flows: &'a mut FlowTable,
    pub(super) rules: Option<&'a mut Matcher>,
    pub(super) stream: Option<&'a mut Reassembly>,
    pub(super) app: Option<&'a mut AppLayer>,
    pub(super) checks: &'a mut PacketChecks,
    pub(super) scoring: Option<&'a mut WorkerScoring>,
    pub(super) policy: Option<&'a WorkerPolicy>,
    pub(super) events: &'a EventRings,
    pub(super) counters: &'a mut WorkerCounters,
    pub(super) cfg: &'a WorkerConfig,
}

/// A worker's checksum policies: IPv4 headers and TCP segments are
/// judged apart (a capture can have offloaded TCP checksums and good IP
/// ones).
#[derive(Debug, Clone, Copy, Default)]
pub struct PacketChecks {
    pub ip: Checksums,
    pub tcp: Checksums,
}

impl PacketChecks {
    pub fn new(mode: ChecksumMode) -> Self {
        PacketChecks {
            ip: Checksums::new(mode),
            tcp: Checksums::new(mode),
        }
    }

    /// Whether a packet's IPv4 header checksum passes (the NIC's word
    /// where it gave one).
    pub(super) fn ip_ok(&mut self, frame: &[u8], d: &Decoded, nic: NicCheck) -> bool {
        if d.network != Network::Ipv4 {
            return true;
        }
        // For a VXLAN tenant frame the NIC's flags speak of the outer packet.
        let nic = if d.vni.is_some() {
            NicCheck::Unknown
        } else {
            nic
        };
        self.ip.admit(|| match nic {
            NicCheck::Good => true,
            NicCheck::Bad => false,
            NicCheck::Unknown => ipv4_checksum_ok(frame, d),
        })
    }
}

/// The urgent byte's sequence number of a TCP segment with URG set: the
/// byte before the urgent pointer (RFC 6093: what every stack does).
pub(super) fn urgent_seq(d: &Decoded) -> Option<u32> {
    let t = d.tcp;
    (t.flags & crate::decode::tcp::URG != 0 && t.urgent > 0)
        .then(|| t.seq.wrapping_add(u32::from(t.urgent) - 1))
}

impl Inspector<'_> {
    /// Reports an anomaly on the packet (the tuple of its sender).
    pub(super) fn anomaly(
        &mut self,
        tuple: &Tuple,
        ts: u64,
        flow_id: u64,
        event: Anomaly,
        blocked: bool,
    ) {
        let at = tuple.at(ts, flow_id, self.cfg.id);
        offer_event(
            self.events,
            self.counters,
            Event::Anomaly(AnomalyRecord { at, event, blocked }),
        );
    }

    /// Accounts a whole packet (or a rebuilt datagram: one packet of its
    /// flow) and matches it: its TCP payload goes through reassembly to
    /// the stream rules, the packet itself to the packet rules. What the
    /// receiving host would not take (a bad checksum, a segment the TCP
    /// tracker refuses) is not used, and inline it is dropped: what leaves
    /// the box is what was inspected. Returns why an IPS verdict drops the
    /// packet, if one does.
    pub(super) fn inspect(
        &mut self,
        d: &Decoded,
        pkt: &RawPacket<'_>,
        now: u64,
        pass: u16,
    ) -> Option<DropReason> {
        let (frame, ts) = (pkt.data, pkt.ts_ns);
        let ips = self.cfg.mode == Mode::Ips;
        let at = {
            let Inspector {
                flows,
                rules,
                stream,
                app,
                scoring,
                events,
                counters,
                cfg,
                ..
            } = self;
            flows.locate(d, ts, now, pass, &mut |r| {
                flow_ended(
                    r,
                    stream.as_deref_mut(),
                    rules.as_deref_mut(),
                    app.as_deref_mut(),
                    scoring.as_deref_mut(),
                    events,
                    counters,
                    cfg,
                )
            })
        };
        if at.created && pkt.source != 0 {
            self.flows.set_source(at.slot, pkt.source);
        }
        let start = d.payload_offset as usize;
        let payload = frame
            .get(start..start + d.payload_len as usize)
            .unwrap_or(&[]);
        let tuple = Tuple::of_packet(d).for_packet(pkt.pcap_cnt, packet_source(pkt, d), pkt.source);
        // The anomalies found on it, for `stream-event` and `decode-event`.
        let mut pkt_events = 0u32;
        if d.anomalies != 0 {
            for a in DecodeAnomaly::ALL.into_iter().filter(|&a| d.has(a)) {
                self.anomaly(&tuple, ts, at.flow_id, Anomaly::Decode(a), false);
                pkt_events |= Anomaly::Decode(a).packet_bit();
            }
        }
        // Checksums before anything is believed. A TCP retransmission of
        // bytes already delivered is checked only if it disagrees (below),
        // so a flood of them costs no checksum work.
        let tcp = d.proto == 6;
        let retransmission = tcp
            && !payload.is_empty()
            && d.tcp.flags
                & (crate::decode::tcp::SYN | crate::decode::tcp::FIN | crate::decode::tcp::RST)
                == 0
            && self.stream.as_deref().is_some_and(|re| {
                re.is_retransmission(at.slot, at.flow_id, at.dir, d.tcp.seq, payload.len())
            });
        let nic_l4 = if d.vni.is_some() {
            NicCheck::Unknown
        } else {
            pkt.l4_checksum
        };
        // A replay pass shifts the addresses the pipeline sees, not the
        // frame's: the checksum is the frame's own.
        let original = if pass == 0 {
            *d
        } else {
            let mut o = *d;
            o.offset_addresses(0u16.wrapping_sub(pass));
            o
        };
        let verify = || match nic_l4 {
            NicCheck::Good => true,
            NicCheck::Bad => false,
            NicCheck::Unknown => tcp_checksum_ok(frame, &original),
        };
        let ip_ok = self.checks.ip_ok(frame, d, pkt.ip_checksum);
        let tcp_ok = !tcp || !ip_ok || retransmission || self.checks.tcp.admit(verify);
        let up = self
            .flows
            .update(at, d, frame.len() as u32, ts, now, ip_ok && tcp_ok);
        if up.bypassed {
            // A `bypass` rule took the flow out of inspection: counted in
            // it, forwarded (unless a drop rule had condemned it first).
            return up.dropped.filter(|_| ips);
        }
        let tuple = tuple.toward(up.dir == Dir::ToServer);
        // The segmentation policy: the flow's zone pair and decision, made
        // at its first packet and cached in it.
        if let Some(pol) = self.policy {
            let mark = self.flows.policy_mark(up.slot);
            let facts = PacketFacts {
                segment: crate::policy::Segment::of(d.vni, &d.vlan[..usize::from(d.vlan_count)]),
                src: d.src_ip(),
                dst: d.dst_ip(),
                src_port: d.src_port,
                dst_port: d.dst_port,
                proto: d.proto,
                syn: tcp && d.tcp.flags & 0x12 == crate::decode::tcp::SYN,
                len: frame.len() as u32,
                data: !payload.is_empty(),
                // The app layer is asked only when a rule names an app and
                // the flow is being judged.
                app: match (pol.needs_app(&mark), self.app.as_deref()) {
                    (false, _) => crate::applayer::AppProto::Unknown,
                    (true, None) => crate::applayer::AppProto::Failed,
                    (true, Some(a)) => a.proto(up.slot, up.flow_id),
                },
                to_server: up.dir == Dir::ToServer,
            };
            let v = pol.packet(mark, &facts, ips);
            self.flows.set_policy_mark(up.slot, v.mark);
            if v.say {
                let alert = PolicyAlert {
                    at: tuple.at(ts, up.flow_id, self.cfg.id),
                    mark: v.mark.snap(),
                    blocked: v.drop,
                };
                offer_event(self.events, self.counters, Event::Policy(alert));
            }
            if v.drop {
                return Some(DropReason::Policy);
            }
        }
        if let Some(ws) = self.scoring.as_deref_mut() {
            let flags = tcp.then_some(d.tcp.flags);
            ws.packet(
                self.flows,
                &mut self.counters.scoring,
                &up,
                payload,
                flags,
                ts,
            );
        }
        if let (Some(why), true) = (up.dropped, ips) {
            return Some(why);
        }
        // What the host would not take: reported, not used, dropped inline.
        let mut verdict = None;
        let refusal = if !ip_ok {
            Some((Anomaly::Ipv4BadChecksum, DropReason::InvalidChecksum))
        } else {
            up.fate.why().map(|w| {
                let reason = if w == Why::BadChecksum {
                    DropReason::InvalidChecksum
                } else {
                    DropReason::Insertion
                };
                (Anomaly::Tcp(w), reason)
            })
        };
        if let Some((anomaly, reason)) = refusal {
            // A noted segment is taken all the same: said, never dropped.
            let drop = ips && !matches!(up.fate, Fate::Noted(_));
            // A low TTL comes on every packet of a flow behind a SYN
            // proxy: said once per flow and direction (counted each time).
            let say = anomaly != Anomaly::Tcp(Why::LowTtl)
                || drop
                || self.flows.first_say(up.slot, 1 << (up.dir as u8));
            if say {
                self.anomaly(&tuple, ts, up.flow_id, anomaly, drop);
            }
            pkt_events |= anomaly.packet_bit();
            if drop {
                return Some(reason);
            }
        }
        // Observing, a packet the host would not take still has its own
        // payload matched (as Suricata matches a packet the stream engine
        // rejects): it changes no state and never reaches the stream, so
        // it cannot hide anything; it can only be what it says.
        let refused = !ip_ok || matches!(up.fate, Fate::Refused(_));
        let urgent = if tcp && !refused { urgent_seq(d) } else { None };
        let urgent_policy = self.cfg.stream.urgent;
        if urgent.is_some() && !payload.is_empty() && urgent_policy != UrgentPolicy::Inline {
            let blocked = ips && urgent_policy == UrgentPolicy::Drop;
            self.anomaly(&tuple, ts, up.flow_id, Anomaly::StreamUrgentData, blocked);
            pkt_events |= Anomaly::StreamUrgentData.packet_bit();
            if blocked {
                return Some(DropReason::Insertion);
            }
        }
        // The payload the host takes: none of a SYN's without Fast Open,
        // none of a RST's (Suricata keeps RST data out of the stream too);
        // each is matched on its own packet, observing, like a refused
        // packet's.
        let data_refused = matches!(up.fate, Fate::DataRefused(_))
            || (tcp && d.tcp.flags & crate::decode::tcp::RST != 0 && !payload.is_empty());
        let stream_payload = if data_refused { &[][..] } else { payload };
        let suspect = matches!(up.fate, Fate::Suspect(_));
        let Inspector {
            flows,
            rules,
            stream,
            app,
            checks,
            scoring,
            events,
            counters,
            cfg,
            ..
        } = self;
        let rules = rules.as_deref_mut()?;
        rules.start_packet();
        rules.tag_request = None;
        rules.bypass_request = false;
        rules.pass_flow_request = false;
        let mut bits = flows.bits(up.slot);
        let before = bits;
        let snap = Some(flows.snap(up.slot));
        let ids = (up.flow_id, ts);
        // Alerts per signature class, for the flow's features.
        let mut hits = [0u16; features::HIT_BUCKETS];
        // A packet of a flow an earlier `tag:session` rule tagged.
        if let Some(tr) = rules.engine.tag_rule {
            if flows.take_tag(up.slot, frame.len() as u32, ts) {
                counters.alerts += 1;
                let alert = tuple.alert(ts, up.flow_id, cfg.id, tr, false, snap);
                offer_event(events, counters, Event::Alert(alert));
            }
        }
        // Stream rules take the packet alone unless its direction is
        // reassembled (not TCP, no reassembly, or a refused direction).
        let mut with_stream_rules = true;
        if let (true, false, Some(re)) = (tcp, refused, stream.as_deref_mut()) {
            // A SYN's data (Fast Open) follows the SYN's own sequence
            // number.
            let syn = u32::from(d.tcp.flags & crate::decode::tcp::SYN != 0);
            let seg = Segment {
                seq: d.tcp.seq.wrapping_add(syn),
                ack: up.ack,
                payload: stream_payload,
                suspect,
                urgent,
                receiver: d.dst_ip(),
            };
            let isn = flows.tcp_isn(up.slot, up.dir);
            let mut stream_drop = false;
            let mut on_event = |ev: StreamEvent<'_>| {
                stream_drop |= on_stream_event(
                    ev,
                    rules,
                    app.as_deref_mut(),
                    up.slot,
                    &tuple,
                    up.dir,
                    up.established,
                    &mut bits,
                    ids,
                    snap,
                    &mut hits,
                    Out {
                        events,
                        wait: false,
                        prompts: prompt_port(scoring),
                    },
                    counters,
                    cfg,
                );
            };
            let placed = re.segment(up.slot, up.flow_id, up.dir, isn, &seg, &mut on_event);
            if up.rst {
                re.reset(up.slot, up.flow_id, &mut on_event);
            }
            // Its bytes went to the stream scan whole and alone: that scan
            // found its packet rules' fast patterns too.
            rules.take_packet_hits(placed.in_order && !up.rst && !data_refused, payload.len());
            with_stream_rules = placed.unstreamed || data_refused;
            if stream_drop {
                verdict = Some(DropReason::Rule);
            }
            let mut notes: [Option<(Anomaly, bool)>; 4] = [None; 4];
            if placed.overlap_different && retransmission && !checks.tcp.admit(verify) {
                // A corrupt copy the receiver drops: no conflict.
            } else if placed.overlap_different {
                if ips && verdict.is_none() {
                    verdict = Some(DropReason::StreamOverlap);
                }
                notes[0] = Some((Anomaly::StreamOverlapDifferentData, ips));
            }
            if placed.replaced_suspect {
                notes[1] = Some((Anomaly::StreamInsertionReplaced, false));
            }
            if placed.tls_lost_sync {
                notes[2] = Some((Anomaly::TlsRecordInvalid, false));
            }
            if placed.exception {
                counters.exception_stream += 1;
                let act = match cfg.exception {
                    ExceptionPolicy::Pass => None,
                    ExceptionPolicy::DropPacket => Some(DropReason::ExceptionPolicy),
                    ExceptionPolicy::DropFlow => {
                        flows.mark_exception(up.slot);
                        Some(DropReason::ExceptionPolicy)
                    }
                };
                if ips && verdict.is_none() {
                    verdict = act;
                }
                notes[3] = Some((Anomaly::ExceptionPolicy, ips && act.is_some()));
            }
            for (event, blocked) in notes.into_iter().flatten() {
                pkt_events |= event.packet_bit();
                offer_event(
                    events,
                    counters,
                    Event::Anomaly(AnomalyRecord {
                        at: tuple.at(ts, up.flow_id, cfg.id),
                        event,
                        blocked,
                    }),
                );
            }
        }
        // A UDP datagram the app layer takes (DNS): its transactions are
        // matched before the packet's own rules, as a stream's are.
        if let (17, false, Some(app)) = (d.proto, refused, app.as_deref_mut()) {
            let to_server = up.dir == Dir::ToServer;
            if let Some(st) = app.datagram(up.slot, up.flow_id, to_server, payload, tuple.port53())
            {
                let cx = TxCx {
                    tuple: &tuple,
                    to_server,
                    established: up.established,
                    app_proto: AppProto::Dns,
                    ids,
                    snap,
                    slot: up.slot,
                };
                let out = Out {
                    events,
                    wait: false,
                    prompts: None,
                };
                let blocked = on_points(
                    app, st, rules, &cx, &mut bits, &mut hits, out, counters, cfg,
                );
                if blocked && verdict.is_none() {
                    verdict = Some(DropReason::Rule);
                }
            }
        }
        // A pass rule on one of the flow's transactions passes the packet
        // that completed it too.
        if !suspect && !rules.pass_flow_request {
            let view = PacketView {
                tcp_flags: if tcp { d.tcp.flags } else { 0 },
                icmp_type: d.icmp_type,
                icmp_code: d.icmp_code,
                headers: crate::decode::HeaderBytes::of(frame, d),
                vlan: &d.vlan[..usize::from(d.vlan_count).min(d.vlan.len())],
                stream_sizes: if tcp {
                    flows.tcp_stream_sizes(up.slot)
                } else {
                    None
                },
                app_proto: app
                    .as_deref()
                    .map_or(AppProto::Unknown, |a| a.proto(up.slot, up.flow_id)),
                events: pkt_events,
                ..tuple.view(up.dir == Dir::ToServer, up.established, payload)
            };
            let on_alert = |h: Hit| {
                counters.alerts += 1;
                let mut alert = tuple.alert(ts, up.flow_id, cfg.id, h.rule, h.blocked, snap);
                alert.traffic = h.traffic;
                offer_event(events, counters, Event::Alert(alert));
                hits[h.class] += 1;
            };
            let (blocked, lost) = match_rules(
                rules,
                &view,
                cfg.mode,
                &mut bits,
                with_stream_rules,
                ids,
                on_alert,
            );
            counters.flowbits_full += lost;
            if blocked && verdict.is_none() {
                verdict = Some(DropReason::Rule);
            }
        }
        if features::alerted(&hits) {
            flows.mark_alerted(up.slot);
        }
        if let Some(spec) = rules.tag_request.take() {
            flows.start_tag(up.slot, spec, ts);
        }
        if std::mem::take(&mut rules.bypass_request) {
            flows.mark_bypassed(up.slot);
        }
        if std::mem::take(&mut rules.pass_flow_request) {
            flows.mark_passed(up.slot);
        }
        if let (true, Some(ws)) = (hits != [0; features::HIT_BUCKETS], scoring.as_deref_mut()) {
            ws.add_hits(up.slot, &hits);
        }
        if bits != before {
            flows.set_bits(up.slot, bits);
        }
        if verdict == Some(DropReason::Rule) {
            flows.mark_dropped(up.slot);
        }
        verdict.filter(|_| ips)
    }

    /// A reassembled datagram: decoded and inspected like a whole packet.
    pub(super) fn datagram(
        &mut self,
        frame: &[u8],
        ts: u64,
        now: u64,
        pass: u16,
    ) -> Option<DropReason> {
        match decode(frame) {
            Ok(mut d) if d.is_ip() && !d.fragment => {
                if pass != 0 {
                    d.offset_addresses(pass);
                }
                let pkt = RawPacket {
                    src: PktSrc::Defrag,
                    ..RawPacket::new(frame, ts)
                };
                self.inspect(&d, &pkt, now, pass)
            }
            _ => None,
        }
    }
}

/// Accounts held datagrams stamped before `upto_ns` (all of them with
/// u64::MAX), in time order, and returns their buffers to the pool.
pub(super) fn release_held(
    held: &mut Vec<Datagram>,
    upto_ns: u64,
    now_ns: u64,
    inspector: &mut Inspector<'_>,
    handoff: Option<&Handoff>,
) {
    let n = held
        .iter()
        .take_while(|d| d.ts_ns < upto_ns || upto_ns == u64::MAX)
        .count();
    for dg in held.drain(..n) {
        let verdict = inspector.datagram(&dg.buf, dg.ts_ns, now_ns.max(dg.ts_ns), dg.pass);
        let Some(h) = handoff else {
            continue;
        };
        // Inline, the worker holding its completing fragment is waiting
        // for this: its ring has room for every fragment it holds.
        if let Some((origin, token)) = dg.reply {
            if let Some(Some(to)) = h.verdicts_to.get(usize::from(origin)) {
                let _ = to.try_send(FragVerdict {
                    token,
                    blocked: verdict.is_some(),
                });
            }
        }
        let _ = h.pool_put.try_send(dg.buf);
    }
}

/// One IP fragment: reassembled, and its datagram inspected here or handed
/// to the worker that owns its flow. Returns the fragment's drop reason
/// (inline), or the token it is held under while another worker judges its
/// datagram (inline).
#[allow(clippy::too_many_arguments)]
pub(super) fn fragment(
    inspector: &mut Inspector<'_>,
    defrag: &mut Defrag,
    rss: &SoftRss,
    handoff: Option<&Handoff>,
    held: &mut HeldFragments,
    d: &Decoded,
    pkt: &RawPacket<'_>,
    now: u64,
    pass: u16,
) -> (Option<DropReason>, Option<u16>) {
    let ips = inspector.cfg.mode == Mode::Ips;
    let ts = pkt.ts_ns;
    let tuple = Tuple::of_packet(d).for_packet(pkt.pcap_cnt, packet_source(pkt, d), pkt.source);
    let overlap = Anomaly::FragOverlap {
        v6: d.network == Network::Ipv6,
    };
    let drop = |why| (ips.then_some(why), None);
    // The host drops a fragment whose IPv4 header checksum fails.
    if !inspector.checks.ip_ok(pkt.data, d, pkt.ip_checksum) {
        inspector.anomaly(&tuple, ts, 0, Anomaly::Ipv4BadChecksum, ips);
        return drop(DropReason::InvalidChecksum);
    }
    let exception = inspector.cfg.exception;
    let (dg, handle) = match defrag.fragment(pkt.data, d, now, pass) {
        FragFate::Complete {
            datagram,
            handle,
            overlap: o,
        } => {
            if o {
                inspector.anomaly(&tuple, ts, 0, overlap, false);
            }
            (datagram, handle)
        }
        FragFate::Held { overlap: o } => {
            if o {
                inspector.anomaly(&tuple, ts, 0, overlap, false);
            }
            return (None, None);
        }
        FragFate::Duplicate { differs: false } => return (None, None),
        // A copy with other bytes: inline the host must not get it.
        FragFate::Duplicate { differs: true } | FragFate::Refused => {
            inspector.anomaly(&tuple, ts, 0, overlap, ips);
            return drop(DropReason::Fragment);
        }
        FragFate::Discarded => {
            inspector.anomaly(&tuple, ts, 0, overlap, false);
            return (None, None);
        }
        FragFate::Invalid | FragFate::Blocked => return drop(DropReason::Fragment),
        FragFate::Lost => {
            let act = exception != ExceptionPolicy::Pass;
            inspector.anomaly(&tuple, ts, 0, Anomaly::ExceptionPolicy, ips && act);
            return if act {
                drop(DropReason::ExceptionPolicy)
            } else {
                (None, None)
            };
        }
    };
    // The datagram goes to the worker its 5-tuple hashes to (fragments
    // were spread on addresses alone).
    let owner = rss.queue_for(dg, pass);
    let to = handoff.and_then(|h| h.to.get(usize::from(owner))?.as_ref().map(|t| (h, t)));
    let Some((h, to)) = to else {
        // Its flow is this worker's: judged here, now.
        let verdict = inspector.datagram(dg, ts, now, pass);
        defrag.settle(handle, verdict.is_some());
        return (verdict, None);
    };
    // Inline, the completing fragment waits for the owner's verdict.
    let token = if ips {
        held.hold(handle, pkt.data.len())
    } else {
        None
    };
    let reply = token.map(|t| (inspector.cfg.id, t));
    let sent = match h.pool_get.try_recv() {
        Ok(mut buf) => {
            buf.clear();
            buf.extend_from_slice(dg);
            match to.try_send(Datagram {
                buf,
                ts_ns: ts,
                pass,
                reply,
            }) {
                Ok(()) => true,
                Err(e) => {
                    let _ = h.pool_put.try_send(e.into_inner().buf);
                    false
                }
            }
        }
        Err(_) => false,
    };
    if sent {
        defrag.counters.handoffs += 1;
        match token {
            Some(t) => return (None, Some(t)),
            None if !ips => defrag.settle(handle, false),
            None => {
                // No room to hold it: it cannot wait for its verdict.
                defrag.counters.exception += 1;
                let act = exception != ExceptionPolicy::Pass;
                defrag.settle(handle, act);
                return if act {
                    drop(DropReason::ExceptionPolicy)
                } else {
                    (None, None)
                };
            }
        }
        return (None, None);
    }
    // Judged nowhere: inline, the exception policy.
    defrag.counters.handoff_drops += 1;
    if let Some(t) = token {
        held.cancel(t);
    }
    if ips && exception != ExceptionPolicy::Pass {
        defrag.counters.exception += 1;
        defrag.settle(handle, true);
        return drop(DropReason::ExceptionPolicy);
    }
    defrag.settle(handle, false);
    (None, None)
}
