//! Where and when an event happened, as every event that leaves a worker
//! carries it, and what an alert says of its flow.

use crate::decode::{Network, MAX_VLAN_TAGS};
use crate::io::PktSrc;

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
    /// Where the packet came in: the capture file (replay) or the port
    /// (run), by index into the writer's names.
    pub source: u16,
    /// The packet went to the server (alerts say which way).
    pub to_server: Option<bool>,
}

impl EventTuple {
    /// The same flow seen from the other side.
    pub fn reversed(&self) -> EventTuple {
        EventTuple {
            src: self.dst,
            dst: self.src,
            src_port: self.dst_port,
            dst_port: self.src_port,
            to_server: self.to_server.map(|t| !t),
            ..*self
        }
    }
}

/// A flow's counters and start when one of its packets alerted, as
/// Suricata's alerts carry them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FlowSnap {
    pub pkts_toserver: u64,
    pub pkts_toclient: u64,
    pub bytes_toserver: u64,
    pub bytes_toclient: u64,
    pub start_ns: u64,
    /// The VLAN ids of the flow's first packet (its transactions' events
    /// carry them, whichever packet completed them).
    pub vlan: [u16; MAX_VLAN_TAGS],
    pub vlan_count: u8,
}
