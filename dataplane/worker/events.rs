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
            ..EventTuple::default()
        })
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

    pub(super) fn alert(
        &self,
        ts_ns: u64,
        flow_id: u64,
        worker: u16,
        rule: u32,
        blocked: bool,
    ) -> AlertRecord {
        AlertRecord {
            at: self.at(ts_ns, flow_id, worker),
            rule,
            blocked,
        }
    }
}

/// Where a worker's events go: its ring to the EVE writer, and whether to
/// wait for room (only at shutdown; on the hot path a full ring drops and
/// counts).
#[derive(Clone, Copy)]
pub(super) struct Out<'a> {
    pub(super) events: &'a Option<Sender<Event>>,
    pub(super) wait: bool,
}

impl Out<'_> {
    pub(super) fn emit(&self, c: &mut WorkerCounters, ev: Event) {
        match (self.events, self.wait) {
            (Some(tx), true) => match tx.send(ev) {
                Ok(()) => c.events_sent += 1,
                Err(_) => c.events_dropped += 1,
            },
            _ => offer_event(self.events, c, ev),
        }
    }
}

/// Sends a flow record without waiting; counts what a full ring loses.
pub(super) fn offer(events: &Option<Sender<Event>>, c: &mut WorkerCounters, r: &FlowRecord) {
    offer_event(events, c, Event::Flow(*r));
}

pub(super) fn offer_event(events: &Option<Sender<Event>>, c: &mut WorkerCounters, ev: Event) {
    if let Some(tx) = events {
        match tx.try_send(ev) {
            Ok(()) => c.events_sent += 1,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => c.events_dropped += 1,
        }
    }
}
