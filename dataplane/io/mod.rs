//! Packet sources and sinks. The worker pipeline does not know where its
//! packets came from: a source hands it bursts of `RawPacket`s that borrow the
//! bytes, the pipeline returns a verdict per packet, and the source's loop
//! hands what is forwarded to its sink. Replay reads capture files (`pcap`);
//! `dpdk` polls NIC queues.

pub mod chunks;
#[cfg(feature = "dpdk")]
#[allow(unsafe_code)]
pub mod dpdk;
pub mod linktype;
pub mod pcap;

/// Packets per burst, as DPDK's rx_burst is usually called.
pub const BURST_SIZE: usize = 32;

/// One packet as the pipeline sees it: borrowed bytes and when they arrived.
#[derive(Debug, Clone, Copy)]
pub struct RawPacket<'a> {
    pub data: &'a [u8],
    /// Arrival time in nanoseconds since the Unix epoch (capture time in
    /// replay, the clock read once per burst on a NIC).
    pub ts_ns: u64,
    /// What the NIC found of the TCP/UDP checksum, when it checks them.
    pub l4_checksum: NicCheck,
    /// What the NIC found of the IPv4 header checksum.
    pub ip_checksum: NicCheck,
    /// Its number in the replayed captures, from 1 (0 on a NIC).
    pub pcap_cnt: u64,
    /// How it came to be (a rebuilt datagram is not what the wire carried).
    pub src: PktSrc,
    /// Where it came in: the capture file's index (replay) or the port id
    /// (run), for EVE's `pcap_filename` / `in_iface`.
    pub source: u16,
}

/// Where a packet an event is about came from (Suricata's `pkt_src`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PktSrc {
    /// Received as it is.
    #[default]
    Wire,
    /// A datagram put back together from fragments.
    Defrag,
    /// A tenant frame inside VXLAN.
    Vxlan,
    /// Stream data flushed when its flow ended.
    FlowTimeout,
}

impl PktSrc {
    pub fn name(self) -> &'static str {
        match self {
            PktSrc::Wire => "wire/pcap",
            PktSrc::Defrag => "defrag",
            PktSrc::Vxlan => "vxlan encapsulation",
            PktSrc::FlowTimeout => "stream (flow timeout)",
        }
    }
}

impl<'a> RawPacket<'a> {
    /// A packet whose checksum nobody has looked at (captures).
    pub fn new(data: &'a [u8], ts_ns: u64) -> Self {
        RawPacket {
            data,
            ts_ns,
            l4_checksum: NicCheck::Unknown,
            ip_checksum: NicCheck::Unknown,
            pcap_cnt: 0,
            src: PktSrc::Wire,
            source: 0,
        }
    }
}

/// The NIC's word on one of a packet's checksums (DPDK's RX checksum
/// offload).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NicCheck {
    /// Not checked (a capture, a port without the offload): verify in
    /// software.
    #[default]
    Unknown,
    Good,
    Bad,
}

/// Observe only, or forward and drop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    #[default]
    Ids,
    Ips,
}

/// What the pipeline decided for a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Forward,
    Drop(DropReason),
    /// Inline: keep the packet (it completed an IP datagram another worker
    /// is judging) until `Worker::take_released` names this token with the
    /// decision. Not yet counted as forwarded or dropped.
    Hold(u16),
}

/// Why a packet was dropped; counted per reason, per worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum DropReason {
    /// The decoder rejected it and `--malformed drop` is in force.
    Malformed,
    /// The NIC's TX queue stayed full through every retry.
    TxFull,
    /// The software-dispatch ring to the packet's worker was full.
    RingFull,
    /// A drop or reject rule matched the packet or, earlier, its flow.
    Rule,
    /// A TCP segment overlapped bytes already seen with different bytes:
    /// the receiver could take either version (IPS).
    StreamOverlap,
    /// The scorer's verdict condemned the packet's flow (inline).
    Score,
    /// Its IPv4 header or TCP checksum does not verify: the host would
    /// drop it, so inline it goes no further (what leaves is what was
    /// inspected).
    InvalidChecksum,
    /// A TCP segment the receiving host would not take as sent (a TTL too
    /// low, data beyond the window or on a SYN, a RST that is not exact,
    /// urgent data under `--stream-urgent drop`): inline it is dropped.
    Insertion,
    /// It could not be inspected whole (memory pressure): the exception
    /// policy dropped it, or its flow.
    ExceptionPolicy,
    /// A fragment of a datagram that is blocked, or whose verdict is not
    /// known (inline, fragments wait for their datagram's).
    Fragment,
    /// The segmentation policy denies its flow (or, non-IP, the policy
    /// says `non-ip: drop`).
    Policy,
}

impl DropReason {
    pub const COUNT: usize = 11;
    pub const ALL: [DropReason; Self::COUNT] = [
        DropReason::Malformed,
        DropReason::TxFull,
        DropReason::RingFull,
        DropReason::Rule,
        DropReason::StreamOverlap,
        DropReason::Score,
        DropReason::InvalidChecksum,
        DropReason::Insertion,
        DropReason::ExceptionPolicy,
        DropReason::Fragment,
        DropReason::Policy,
    ];

    pub fn name(self) -> &'static str {
        match self {
            DropReason::Malformed => "malformed",
            DropReason::TxFull => "tx_full",
            DropReason::RingFull => "ring_full",
            DropReason::Rule => "rule",
            DropReason::StreamOverlap => "stream_overlap",
            DropReason::Score => "score",
            DropReason::InvalidChecksum => "invalid_checksum",
            DropReason::Insertion => "insertion",
            DropReason::ExceptionPolicy => "exception_policy",
            DropReason::Fragment => "fragment",
            DropReason::Policy => "policy",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// Where forwarded packets go. In IDS replay nothing is sent anywhere, but the
/// sink still counts what it was handed so the accounting chain closes.
pub trait PacketSink {
    fn send(&mut self, pkt: &RawPacket<'_>);
    /// Packets this sink was handed.
    fn count(&self) -> u64;
}

/// A sink that only counts: the end of the line for replay.
#[derive(Debug, Default)]
pub struct CountingSink {
    packets: u64,
    bytes: u64,
}

impl CountingSink {
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

impl PacketSink for CountingSink {
    fn send(&mut self, pkt: &RawPacket<'_>) {
        self.packets += 1;
        self.bytes += pkt.data.len() as u64;
    }

    fn count(&self) -> u64 {
        self.packets
    }
}
