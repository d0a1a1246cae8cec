//! What leaves a worker for the EVE writer: tuples as events name them,
//! and the ring they go through (a full ring is counted, never waited on
//! in the hot path).

use super::*;
use std::cell::Cell;
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
            rule,
            blocked,
            flow,
        }
    }
}

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
    worker: u16,
    /// Alerts lost to a full ring, not yet reported.
    unreported: Cell<u64>,
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
    /// and an alert ring of `ALERT_RING`; the receivers go to the writer.
    pub fn for_workers(workers: usize, records: usize) -> (Vec<EventRings>, Vec<Receiver<Event>>) {
        let mut rings = Vec::with_capacity(workers);
        let mut rxs = Vec::with_capacity(2 * workers);
        for _ in 0..workers {
            let (rtx, rrx) = bounded(records);
            let (atx, arx) = bounded(ALERT_RING);
            rings.push(EventRings::split(rtx, atx));
            rxs.push(rrx);
            rxs.push(arx);
        }
        (rings, rxs)
    }

    pub(super) fn set_worker(&mut self, worker: u16) {
        self.worker = worker;
    }

    fn ring(&self, ev: &Event) -> Option<&Sender<Event>> {
        match ev {
            Event::Alert(_) | Event::AlertsLost { .. } => {
                self.alerts.as_ref().or(self.records.as_ref())
            }
            _ => self.records.as_ref(),
        }
    }

    /// Sends without waiting; counts what a full ring loses.
    pub(super) fn offer(&self, c: &mut WorkerCounters, ev: Event) {
        let is_alert = matches!(ev, Event::Alert(_));
        if is_alert {
            self.report_lost(c, event_ts(&ev));
        }
        let Some(tx) = self.ring(&ev) else {
            return;
        };
        match tx.try_send(ev) {
            Ok(()) => c.events_sent += 1,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                c.events_dropped += 1;
                if is_alert {
                    c.alerts_dropped += 1;
                    self.unreported.set(self.unreported.get() + 1);
                }
            }
        }
    }

    /// Sends, waiting for room (only at shutdown, when the writer drains).
    pub(super) fn send(&self, c: &mut WorkerCounters, ev: Event) {
        if matches!(ev, Event::Alert(_)) {
            self.report_lost(c, event_ts(&ev));
        }
        let Some(tx) = self.ring(&ev) else {
            return;
        };
        match tx.send(ev) {
            Ok(()) => c.events_sent += 1,
            Err(_) => c.events_dropped += 1,
        }
    }

    /// Tells the writer how many alerts were lost, once there is room.
    pub(super) fn report_lost(&self, c: &mut WorkerCounters, ts_ns: u64) {
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
            c.events_sent += 1;
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

/// Where a worker's events go, and whether to wait for room (only at
/// shutdown; on the hot path a full ring drops and counts).
#[derive(Clone, Copy)]
pub(super) struct Out<'a> {
    pub(super) events: &'a EventRings,
    pub(super) wait: bool,
}

impl Out<'_> {
    pub(super) fn emit(&self, c: &mut WorkerCounters, ev: Event) {
        if self.wait {
            self.events.send(c, ev);
        } else {
            self.events.offer(c, ev);
        }
    }
}

/// Sends a flow record without waiting; counts what a full ring loses.
pub(super) fn offer(events: &EventRings, c: &mut WorkerCounters, r: &FlowRecord) {
    events.offer(c, Event::Flow(*r));
}

pub(super) fn offer_event(events: &EventRings, c: &mut WorkerCounters, ev: Event) {
    events.offer(c, ev);
}
