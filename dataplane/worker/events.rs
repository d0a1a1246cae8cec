//! What leaves a worker for the EVE writer: tuples as events name them,
//! and the ring they go through (a full ring is counted, never waited on
//! in the hot path).

use super::*;
/// A packet's or a flow direction's addresses, as alerts and rule headers
/// need them: an `EventTuple` whose time, flow and worker are set per event.
#[derive(Debug, Clone, Copy)]
pub(super) struct Tuple(EventTuple);

impl Tuple {
    pub(super) fn of_packet(d: &Decoded) -> Self {
        Tuple(EventTuple {
            network: d.network,
            proto: d.proto,
            src: d.src,
            dst: d.dst,
            src_port: d.src_port,
            dst_port: d.dst_port,
            vlan: d.vlan,
            vlan_count: d.vlan_count,
            vni: d.vni,
            icmp: matches!(d.proto, 1 | 58).then_some((d.icmp_type, d.icmp_code)),
            ..EventTuple::default()
        })
    }

    /// The same tuple, for events about packet number `pcap_cnt` that
    /// came from `src`.
    pub(super) fn for_packet(mut self, pcap_cnt: u64, src: PktSrc, source: u16) -> Self {
        self.0.pcap_cnt = pcap_cnt;
        self.0.pkt_src = src;
        self.0.source = source;
        self
    }

    /// The same tuple, for a packet (or stream data) going to the server
    /// or not.
    pub(super) fn toward(mut self, to_server: bool) -> Self {
        self.0.to_server = Some(to_server);
        self
    }

    /// The flow's tuple as the sender in `dir` sees it.
    pub(super) fn of_flow(r: &FlowRecord, dir: Dir) -> Self {
        let t = Tuple(r.tuple(0, 0));
        if dir == Dir::ToServer {
            t
        } else {
            t.reversed()
        }
    }

    /// Either port is DNS's (a hint for the app layer's probe).
    pub(super) fn port53(&self) -> bool {
        self.0.src_port == 53 || self.0.dst_port == 53
    }

    pub(super) fn reversed(self) -> Self {
        let t = self.0;
        Tuple(EventTuple {
            src: t.dst,
            dst: t.src,
            src_port: t.dst_port,
            dst_port: t.src_port,
            ..t
        })
    }

    pub(super) fn view<'a>(
        &self,
        to_server: bool,
        established: bool,
        payload: &'a [u8],
    ) -> PacketView<'a> {
        let t = &self.0;
        PacketView {
            proto: t.proto,
            src: addr_to_ip(t.network, &t.src),
            dst: addr_to_ip(t.network, &t.dst),
            src_port: t.src_port,
            dst_port: t.dst_port,
            to_server,
            established,
            tcp_flags: 0,
            icmp_type: 0,
            icmp_code: 0,
            payload,
            headers: Default::default(),
            vlan: &[],
            stream_sizes: None,
            app_proto: crate::applayer::AppProto::Unknown,
            events: 0,
        }
    }

    /// Where an event on this tuple happened.
    pub(super) fn at(&self, ts_ns: u64, flow_id: u64, worker: u16) -> EventTuple {
        EventTuple {
            ts_ns,
            flow_id,
            worker,
            ..self.0
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn alert(
        &self,
        ts_ns: u64,
        flow_id: u64,
        worker: u16,
        rule: u32,
        blocked: bool,
        flow: Option<FlowSnap>,
    ) -> AlertRecord {
        AlertRecord {
            at: self.at(ts_ns, flow_id, worker),
            tx: None,
            text: None,
            traffic: 0,
            rule,
            rules: 0,
            blocked,
            flow,
        }
    }
}

/// Where a worker's events go, and whether to wait for room (at shutdown;
/// on the hot path a full ring drops and counts, but in replay, whose
/// rings wait, `EventRings::set_wait`).
#[derive(Clone, Copy)]
pub(super) struct Out<'a> {
    pub(super) events: &'a EventRings,
    pub(super) wait: bool,
    /// Where complete LLM prompts go to be scored (a prompt model runs).
    pub(super) prompts: Option<&'a crate::scoring::text::PromptPort>,
}

/// The prompt rings of a worker's scoring link, if a prompt model runs.
pub(super) fn prompt_port<'a>(
    s: &'a Option<&mut WorkerScoring>,
) -> Option<&'a crate::scoring::text::PromptPort> {
    s.as_deref().and_then(|w| w.link.prompts.as_ref())
}

impl Out<'_> {
    pub(super) fn emit(&self, c: &mut WorkerCounters, ev: Event) {
        if self.wait {
            self.events.send(&mut c.emit, ev);
        } else {
            self.events.offer(&mut c.emit, ev);
        }
    }
}

/// Sends a flow record without waiting; counts what a full ring loses.
pub(super) fn offer(events: &EventRings, c: &mut WorkerCounters, r: &FlowRecord) {
    events.offer(&mut c.emit, Event::Flow(*r));
}

pub(super) fn offer_event(events: &EventRings, c: &mut WorkerCounters, ev: Event) {
    events.offer(&mut c.emit, ev);
}
