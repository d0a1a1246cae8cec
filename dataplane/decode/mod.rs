//! Packet decoding, zero-copy and checked once, one file per header in the
//! style of smoltcp's `wire` module. `decode` walks Ethernet, VLAN tags,
//! IPv4 or IPv6 (with extension headers) and TCP, UDP, ICMP or ICMPv6, and
//! fills a small `Copy` summary that the flow table and the dispatcher
//! read. It never allocates and never panics: anything that does not add up
//! is a `DecodeError` naming the layer and the reason, which workers count.
//!
//! What a receiving host would still accept is decoded, not refused, so no
//! payload goes uninspected because its headers are odd: any number of VLAN
//! tags and IPv6 extension headers (bounded by the frame itself), TCP
//! options with lengths that do not add up. Each such oddity is a
//! `DecodeAnomaly`, counted and reported, on a packet that is inspected.

pub mod ethernet;
pub mod gre;
pub mod icmp;
pub mod ipv4;
pub mod ipv6;
pub mod tcp;
pub mod udp;
pub mod vxlan;

use ethernet::{EtherType, EthernetFrame, VlanTag};
use icmp::IcmpMessage;
use ipv4::Ipv4Packet;
use ipv6::Ipv6Packet;
use tcp::TcpSegment;
use udp::UdpDatagram;
use vxlan::VxlanHeader;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A byte range inside a header.
pub(crate) type Field = core::ops::Range<usize>;

/// How many stacked VLAN tags a flow key keeps (802.1ad + 802.1Q + one
/// more, as Suricata keeps); a frame may carry more, which are walked over
/// and flagged.
pub const MAX_VLAN_TAGS: usize = 3;

/// IPv6 extension headers beyond this many are flagged (still walked).
pub const MANY_EXT_HEADERS: usize = 8;

pub(crate) fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

pub(crate) fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// Why a packet could not be decoded. Small and `Copy`: it is counted per
/// worker, never allocated or logged per packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum DecodeError {
    EthernetTruncated,
    UnknownEthertype,
    VlanTruncated,
    Ipv4Truncated,
    Ipv4BadVersion,
    Ipv4BadHeaderLen,
    Ipv4BadTotalLen,
    Ipv4BadOptions,
    Ipv6Truncated,
    Ipv6BadVersion,
    Ipv6BadPayloadLen,
    Ipv6ExtTruncated,
    Ipv6BadExtOrder,
    TcpTruncated,
    TcpBadHeaderLen,
    UdpTruncated,
    UdpBadLen,
    Icmpv4Truncated,
    Icmpv6Truncated,
    VxlanTruncated,
    GreTruncated,
}

impl DecodeError {
    pub const COUNT: usize = 21;
    pub const ALL: [DecodeError; Self::COUNT] = [
        DecodeError::EthernetTruncated,
        DecodeError::UnknownEthertype,
        DecodeError::VlanTruncated,
        DecodeError::Ipv4Truncated,
        DecodeError::Ipv4BadVersion,
        DecodeError::Ipv4BadHeaderLen,
        DecodeError::Ipv4BadTotalLen,
        DecodeError::Ipv4BadOptions,
        DecodeError::Ipv6Truncated,
        DecodeError::Ipv6BadVersion,
        DecodeError::Ipv6BadPayloadLen,
        DecodeError::Ipv6ExtTruncated,
        DecodeError::Ipv6BadExtOrder,
        DecodeError::TcpTruncated,
        DecodeError::TcpBadHeaderLen,
        DecodeError::UdpTruncated,
        DecodeError::UdpBadLen,
        DecodeError::Icmpv4Truncated,
        DecodeError::Icmpv6Truncated,
        DecodeError::VxlanTruncated,
        DecodeError::GreTruncated,
    ];

    /// The counter name in the stats JSON: `layer.reason`.
    pub fn name(self) -> &'static str {
        match self {
            DecodeError::EthernetTruncated => "ethernet.truncated",
            DecodeError::UnknownEthertype => "ethernet.unknown_ethertype",
            DecodeError::VlanTruncated => "vlan.truncated",
            DecodeError::Ipv4Truncated => "ipv4.truncated",
            DecodeError::Ipv4BadVersion => "ipv4.bad_version",
            DecodeError::Ipv4BadHeaderLen => "ipv4.bad_header_length",
            DecodeError::Ipv4BadTotalLen => "ipv4.bad_total_length",
            DecodeError::Ipv4BadOptions => "ipv4.bad_options",
            DecodeError::Ipv6Truncated => "ipv6.truncated",
            DecodeError::Ipv6BadVersion => "ipv6.bad_version",
            DecodeError::Ipv6BadPayloadLen => "ipv6.bad_payload_length",
            DecodeError::Ipv6ExtTruncated => "ipv6.ext_header_truncated",
            DecodeError::Ipv6BadExtOrder => "ipv6.ext_header_order",
            DecodeError::TcpTruncated => "tcp.truncated",
            DecodeError::TcpBadHeaderLen => "tcp.bad_header_length",
            DecodeError::UdpTruncated => "udp.truncated",
            DecodeError::UdpBadLen => "udp.bad_length",
            DecodeError::Icmpv4Truncated => "icmpv4.truncated",
            DecodeError::Icmpv6Truncated => "icmpv6.truncated",
            DecodeError::VxlanTruncated => "vxlan.truncated",
            DecodeError::GreTruncated => "gre.truncated",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// Something odd about a packet that decoded: counted and reported, and
/// the packet is inspected all the same (a host would take it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum DecodeAnomaly {
    /// More VLAN tags than a flow key keeps.
    VlanTooManyLayers,
    /// More IPv6 extension headers than `MANY_EXT_HEADERS`.
    Ipv6ManyExtHeaders,
    /// A TCP option whose length does not add up (read up to it, as
    /// Linux does).
    TcpOptInvalidLen,
}

impl DecodeAnomaly {
    pub const COUNT: usize = 3;
    pub const ALL: [DecodeAnomaly; Self::COUNT] = [
        DecodeAnomaly::VlanTooManyLayers,
        DecodeAnomaly::Ipv6ManyExtHeaders,
        DecodeAnomaly::TcpOptInvalidLen,
    ];

    /// The counter name, `layer.reason` (Suricata's decoder event names
    /// where it has one).
    pub fn name(self) -> &'static str {
        match self {
            DecodeAnomaly::VlanTooManyLayers => "vlan.too_many_layers",
            DecodeAnomaly::Ipv6ManyExtHeaders => "ipv6.many_ext_headers",
            DecodeAnomaly::TcpOptInvalidLen => "tcp.opt_invalid_len",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// IP protocol numbers the decoder and the EVE writer know by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpProtocol {
    HopByHop,
    Icmp,
    Tcp,
    Udp,
    Ipv6Route,
    Ipv6Frag,
    Gre,
    Esp,
    Ah,
    Icmpv6,
    Ipv6NoNxt,
    Ipv6Opts,
    Sctp,
    Unknown(u8),
}

impl From<u8> for IpProtocol {
    fn from(v: u8) -> Self {
        match v {
            0 => IpProtocol::HopByHop,
            1 => IpProtocol::Icmp,
            6 => IpProtocol::Tcp,
            17 => IpProtocol::Udp,
            43 => IpProtocol::Ipv6Route,
            44 => IpProtocol::Ipv6Frag,
            47 => IpProtocol::Gre,
            50 => IpProtocol::Esp,
            51 => IpProtocol::Ah,
            58 => IpProtocol::Icmpv6,
            59 => IpProtocol::Ipv6NoNxt,
            60 => IpProtocol::Ipv6Opts,
            132 => IpProtocol::Sctp,
            other => IpProtocol::Unknown(other),
        }
    }
}

impl From<IpProtocol> for u8 {
    fn from(v: IpProtocol) -> u8 {
        match v {
            IpProtocol::HopByHop => 0,
            IpProtocol::Icmp => 1,
            IpProtocol::Tcp => 6,
            IpProtocol::Udp => 17,
            IpProtocol::Ipv6Route => 43,
            IpProtocol::Ipv6Frag => 44,
            IpProtocol::Gre => 47,
            IpProtocol::Esp => 50,
            IpProtocol::Ah => 51,
            IpProtocol::Icmpv6 => 58,
            IpProtocol::Ipv6NoNxt => 59,
            IpProtocol::Ipv6Opts => 60,
            IpProtocol::Sctp => 132,
            IpProtocol::Unknown(v) => v,
        }
    }
}

/// What sits on top of the link layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Network {
    #[default]
    Arp,
    Ipv4,
    Ipv6,
}

/// The transport fields flow tracking needs from a TCP segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpFields {
    pub flags: u8,
    pub seq: u32,
    pub ack: u32,
    pub window: u16,
    pub wscale: Option<u8>,
    /// The urgent pointer (meaningful with URG).
    pub urgent: u16,
    /// The segment offers TCP Fast Open.
    pub tfo: bool,
    /// The timestamp option: (TSval, TSecr).
    pub ts: Option<(u32, u32)>,
    /// Header length with options: the header starts this far before the
    /// payload (`Decoded::payload_offset`).
    pub header_len: u8,
}

/// One's-complement sum of `b` as big-endian 16-bit words (a last odd byte
/// is padded with zero), added to `acc` without the final complement. `b`
/// must start on an even offset of the checksummed sequence.
///
/// The bytes are summed as little-endian 16-bit words into 16 lanes of 32
/// bits, which the compiler turns into vector adds of 16 words at a time,
/// then folded to 16 bits and byte-swapped: the one's-complement sum does
/// not depend on byte order (RFC 1071, 2(B)). No lane can overflow: each
/// takes at most 2,048 words of a 64 KiB block before it is emptied.
fn ones_sum(acc: u64, b: &[u8]) -> u64 {
    const LANES: usize = 16;
    let mut sum: u64 = 0;
    for block in b.chunks(1 << 16) {
        let mut lanes = [0u32; LANES];
        let mut rows = block.chunks_exact(2 * LANES);
        for row in rows.by_ref() {
            for (lane, w) in lanes.iter_mut().zip(row.chunks_exact(2)) {
                *lane += u32::from(u16::from_le_bytes([w[0], w[1]]));
            }
        }
        sum += lanes.iter().map(|&l| u64::from(l)).sum::<u64>();
        // Only the last block can end on an odd byte (the others are
        // 64 KiB long): it is the low byte of a little-endian word.
        let mut words = rows.remainder().chunks_exact(2);
        sum += words
            .by_ref()
            .map(|w| u64::from(u16::from_le_bytes([w[0], w[1]])))
            .sum::<u64>();
        sum += words.remainder().first().map_or(0, |&x| u64::from(x));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    acc + u64::from((sum as u16).swap_bytes())
}

/// Whether a whole (unfragmented) TCP segment's checksum verifies over the
/// IPv4 or IPv6 pseudo-header. `frame` is the frame `d` was decoded from.
pub fn tcp_checksum_ok(frame: &[u8], d: &Decoded) -> bool {
    let end = d.payload_offset as usize + d.payload_len as usize;
    let start = (d.payload_offset as usize).saturating_sub(usize::from(d.tcp.header_len));
    let Some(seg) = frame.get(start..end) else {
        return false;
    };
    let len = seg.len() as u64;
    let mut acc = match d.network {
        Network::Ipv4 => ones_sum(ones_sum(0, &d.src[..4]), &d.dst[..4]) + 6 + len,
        Network::Ipv6 => ones_sum(ones_sum(0, &d.src), &d.dst) + 6 + (len >> 16) + (len & 0xffff),
        Network::Arp => return false,
    };
    acc = ones_sum(acc, seg);
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc == 0xffff
}

/// Whether an IPv4 packet's header checksum verifies (true for anything
/// else). `frame` is the frame `d` was decoded from.
pub fn ipv4_checksum_ok(frame: &[u8], d: &Decoded) -> bool {
    if d.network != Network::Ipv4 {
        return true;
    }
    let l3 = usize::from(d.l3_offset);
    let Some(&vihl) = frame.get(l3) else {
        return false;
    };
    let Some(h) = frame.get(l3..l3 + usize::from(vihl & 0x0f) * 4) else {
        return false;
    };
    let mut acc = ones_sum(0, h);
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc == 0xffff
}

/// The bytes of a decoded packet's headers, for the rule buffers that
/// inspect them (`ipv4.hdr`, `ipv6.hdr` with its extension headers,
/// `tcp.hdr` with options, `udp.hdr`, `icmpv4.hdr`, `icmpv6.hdr`); empty
/// where the packet has no such header.
#[derive(Debug, Clone, Copy, Default)]
pub struct HeaderBytes<'a> {
    pub ipv4: &'a [u8],
    pub ipv6: &'a [u8],
    pub tcp: &'a [u8],
    pub udp: &'a [u8],
    pub icmpv4: &'a [u8],
    pub icmpv6: &'a [u8],
}

impl<'a> HeaderBytes<'a> {
    /// The headers of `d` in `frame`, the frame it was decoded from.
    pub fn of(frame: &'a [u8], d: &Decoded) -> Self {
        let mut h = HeaderBytes::default();
        if d.fragment {
            return h;
        }
        let l3 = usize::from(d.l3_offset);
        let l4 = d.l4_offset as usize;
        let pay = d.payload_offset as usize;
        let ip = frame.get(l3..l4.max(l3)).unwrap_or(&[]);
        match d.network {
            Network::Ipv4 => h.ipv4 = ip,
            Network::Ipv6 => h.ipv6 = ip,
            Network::Arp => return h,
        }
        let l4_bytes = frame.get(l4..pay.max(l4)).unwrap_or(&[]);
        match (d.proto, d.network) {
            (6, _) => h.tcp = l4_bytes,
            (17, _) => h.udp = l4_bytes,
            (1, Network::Ipv4) => h.icmpv4 = l4_bytes,
            (58, Network::Ipv6) => h.icmpv6 = l4_bytes,
            _ => {}
        }
        h
    }
}

/// The parsed meaning of one packet. Addresses are kept as 16 bytes (IPv4 in
/// the first four) so a flow key needs no branch on the IP version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Decoded {
    pub vlan: [u16; MAX_VLAN_TAGS],
    pub vlan_count: u8,
    pub network: Network,
    pub src: [u8; 16],
    pub dst: [u8; 16],
    /// The upper-layer protocol number after any IPv6 extension headers.
    pub proto: u8,
    /// IPv4 TTL or IPv6 hop limit.
    pub ttl: u8,
    /// Where the IP header starts in the frame (of the tenant frame, for
    /// VXLAN).
    pub l3_offset: u16,
    /// `DecodeAnomaly` bits.
    pub anomalies: u8,
    /// An IP fragment: ports and payload are not decoded (reassembly is a
    /// stage of its own).
    pub fragment: bool,
    pub src_port: u16,
    pub dst_port: u16,
    pub tcp: TcpFields,
    pub icmp_type: u8,
    pub icmp_code: u8,
    /// Where the transport header starts in the frame (the payload's
    /// start for protocols without one).
    pub l4_offset: u32,
    /// Offset of the transport payload in the frame, and its length as the
    /// IP lengths give it (Ethernet padding excluded).
    pub payload_offset: u32,
    pub payload_len: u32,
    /// The VXLAN network identifier when this is a tenant frame carried in
    /// VXLAN: everything above describes the inner frame.
    pub vni: Option<u32>,
    /// For a fragment: what reassembly needs (the payload fields above
    /// hold the fragment's data).
    pub frag: FragInfo,
}

/// Where a fragment sits in its datagram and in its frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FragInfo {
    /// The datagram's identification (16 bits in IPv4, 32 in IPv6).
    pub id: u32,
    /// Byte offset of this fragment's data in the datagram's payload.
    pub offset: u32,
    /// More fragments follow.
    pub more: bool,
    /// Where the IP header starts in the frame.
    pub l3_offset: u16,
    /// Bytes of IP header that every fragment repeats: the IPv4 header, or
    /// the IPv6 header and the extension headers before the fragment header.
    pub unfrag_len: u16,
    /// IPv6: the byte (from the IPv6 header) that names the fragment header.
    pub next_field: u16,
}

impl Decoded {
    pub fn has(&self, a: DecodeAnomaly) -> bool {
        self.anomalies & a.bit() != 0
    }

    fn flag(&mut self, a: DecodeAnomaly) {
        self.anomalies |= a.bit();
    }

    pub fn is_ip(&self) -> bool {
        matches!(self.network, Network::Ipv4 | Network::Ipv6)
    }

    pub fn has_ports(&self) -> bool {
        !self.fragment && matches!(self.proto, 6 | 17 | 132)
    }

    pub fn src_ip(&self) -> IpAddr {
        addr_to_ip(self.network, &self.src)
    }

    pub fn dst_ip(&self) -> IpAddr {
        addr_to_ip(self.network, &self.dst)
    }

    pub fn vlans(&self) -> &[u16] {
        &self.vlan[..usize::from(self.vlan_count)]
    }

    /// Shifts both addresses for replay pass `pass` (`--loop K`) so that each
    /// pass shows new hosts: the pass is added to octets 2-3 of an IPv4
    /// address (10.0.0.1 becomes 10.0.1.1 on pass 1) and to bytes 3-4 of an
    /// IPv6 one. The flow key also carries the pass, so passes never share a
    /// flow even where shifted addresses meet real ones.
    pub fn offset_addresses(&mut self, pass: u16) {
        let at = match self.network {
            Network::Ipv4 => 1,
            Network::Ipv6 => 2,
            Network::Arp => return,
        };
        for a in [&mut self.src, &mut self.dst] {
            let v = u16::from_be_bytes([a[at], a[at + 1]]).wrapping_add(pass);
            a[at..at + 2].copy_from_slice(&v.to_be_bytes());
        }
    }
}

pub fn addr_to_ip(network: Network, a: &[u8; 16]) -> IpAddr {
    match network {
        Network::Ipv6 => IpAddr::V6(Ipv6Addr::from(*a)),
        _ => IpAddr::V4(Ipv4Addr::new(a[0], a[1], a[2], a[3])),
    }
}

/// Decodes one Ethernet frame. A VXLAN datagram (UDP to port 4789 with the
/// VNI flag) is followed into its inner frame, one level deep: the result
/// describes the tenant's packet and carries the VNI. GRE carrying an
/// Ethernet frame, IPv4 or IPv6 is followed the same way.
pub fn decode(frame: &[u8]) -> Result<Decoded, DecodeError> {
    let outer = decode_frame(frame)?;
    if outer.proto == gre::PROTO && !outer.fragment && outer.is_ip() {
        return decode_gre(frame, outer);
    }
    if outer.proto != 17 || outer.dst_port != vxlan::PORT || outer.fragment || !outer.is_ip() {
        return Ok(outer);
    }
    let start = outer.payload_offset as usize;
    let udp_payload = frame
        .get(start..start + outer.payload_len as usize)
        .unwrap_or(&[]);
    let vx = VxlanHeader::new_checked(udp_payload)?;
    if !vx.has_vni() {
        return Ok(outer);
    }
    let mut inner = decode_frame(vx.payload())?;
    inner.vni = Some(vx.vni());
    inner.payload_offset += (start + vxlan::HEADER_LEN) as u32;
    inner.l4_offset += (start + vxlan::HEADER_LEN) as u32;
    inner.frag.l3_offset += (start + vxlan::HEADER_LEN) as u16;
    inner.l3_offset += (start + vxlan::HEADER_LEN) as u16;
    inner.anomalies |= outer.anomalies;
    Ok(inner)
}

/// The packet a GRE packet carries, its offsets counted in `frame`; the
/// outer packet itself when GRE carries something not followed.
fn decode_gre(frame: &[u8], outer: Decoded) -> Result<Decoded, DecodeError> {
    let start = outer.payload_offset as usize;
    let payload = frame
        .get(start..start + outer.payload_len as usize)
        .unwrap_or(&[]);
    let Some((proto, hl)) = gre::parse(payload)? else {
        return Ok(outer);
    };
    let body = &payload[hl..];
    let mut inner = match proto {
        gre::TEB => decode_frame(body)?,
        gre::IPV4 | gre::IPV6 => {
            let mut d = Decoded::default();
            let et = if proto == gre::IPV4 {
                EtherType::Ipv4
            } else {
                EtherType::Ipv6
            };
            decode_l3(&mut d, et, body, 0)?;
            d
        }
        _ => return Ok(outer),
    };
    let shift = start + hl;
    inner.payload_offset += shift as u32;
    inner.l4_offset += shift as u32;
    inner.frag.l3_offset += shift as u16;
    inner.l3_offset += shift as u16;
    inner.anomalies |= outer.anomalies;
    Ok(inner)
}

/// Decodes one Ethernet frame without following tunnels.
fn decode_frame(frame: &[u8]) -> Result<Decoded, DecodeError> {
    let eth = EthernetFrame::new_checked(frame)?;
    let mut out = Decoded::default();
    let mut ethertype = eth.ethertype();
    let mut rest = eth.payload();
    while ethertype.is_vlan_tag() {
        // Every tag is walked (each takes 4 bytes of the frame, so the
        // frame bounds the loop); the key keeps the outer ones.
        let tag = VlanTag::new_checked(rest)?;
        if usize::from(out.vlan_count) < MAX_VLAN_TAGS {
            out.vlan[usize::from(out.vlan_count)] = tag.vid();
            out.vlan_count += 1;
        } else {
            out.flag(DecodeAnomaly::VlanTooManyLayers);
        }
        ethertype = tag.inner_ethertype();
        rest = tag.payload();
    }
    let l3_offset = frame.len() - rest.len();
    decode_l3(&mut out, ethertype, rest, l3_offset)?;
    Ok(out)
}

/// Decodes the network layer and what it carries: `rest` starts at
/// `l3_offset` of the buffer the offsets count in.
fn decode_l3(
    out: &mut Decoded,
    ethertype: EtherType,
    rest: &[u8],
    l3_offset: usize,
) -> Result<(), DecodeError> {
    out.l3_offset = l3_offset as u16;
    match ethertype {
        EtherType::Ipv4 => {
            let ip = Ipv4Packet::new_checked(rest)?;
            out.network = Network::Ipv4;
            out.src[..4].copy_from_slice(&ip.src());
            out.dst[..4].copy_from_slice(&ip.dst());
            out.proto = ip.protocol().into();
            out.ttl = ip.ttl();
            out.fragment = ip.is_fragment();
            if out.fragment {
                out.frag = FragInfo {
                    id: u32::from(ip.ident()),
                    offset: ip.frag_offset() as u32,
                    more: ip.more_frags(),
                    l3_offset: l3_offset as u16,
                    unfrag_len: ip.header_len() as u16,
                    next_field: 0,
                };
                out.payload_offset = (l3_offset + ip.header_len()) as u32;
                out.payload_len = ip.payload().len() as u32;
                return Ok(());
            }
            let l4_offset = l3_offset + ip.header_len();
            decode_transport(out, ip.payload(), l4_offset)?;
        }
        EtherType::Ipv6 => {
            let ip = Ipv6Packet::new_checked(rest)?;
            out.network = Network::Ipv6;
            out.src = ip.src();
            out.dst = ip.dst();
            out.ttl = ip.hop_limit();
            let ul = ip.upper_layer()?;
            if ul.ext_headers > MANY_EXT_HEADERS {
                out.flag(DecodeAnomaly::Ipv6ManyExtHeaders);
            }
            out.proto = ul.protocol.into();
            if let Some(f) = ul.fragment {
                out.fragment = true;
                out.frag = FragInfo {
                    id: f.ident,
                    offset: f.offset as u32,
                    more: f.more,
                    l3_offset: l3_offset as u16,
                    unfrag_len: f.header_offset as u16,
                    next_field: f.next_field as u16,
                };
                out.payload_offset = (l3_offset + ul.offset) as u32;
                out.payload_len = ul.payload.len() as u32;
                return Ok(());
            }
            decode_transport(out, ul.payload, l3_offset + ul.offset)?;
        }
        EtherType::Arp => out.network = Network::Arp,
        _ => return Err(DecodeError::UnknownEthertype),
    }
    Ok(())
}

fn decode_transport(out: &mut Decoded, l4: &[u8], l4_offset: usize) -> Result<(), DecodeError> {
    // Offsets are bounded by the frame length, which pcap and DPDK both keep
    // far below 4 GiB.
    let at = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    out.l4_offset = at(l4_offset);
    match IpProtocol::from(out.proto) {
        IpProtocol::Tcp => {
            let seg = TcpSegment::new_checked(l4)?;
            out.src_port = seg.src_port();
            out.dst_port = seg.dst_port();
            let opts = seg.options();
            if opts.invalid {
                out.flag(DecodeAnomaly::TcpOptInvalidLen);
            }
            out.tcp = TcpFields {
                flags: seg.flags(),
                seq: seg.seq(),
                ack: seg.ack(),
                window: seg.window(),
                wscale: opts.wscale,
                urgent: seg.urgent_pointer(),
                tfo: opts.tfo,
                ts: opts.ts,
                header_len: seg.header_len() as u8,
            };
            out.payload_offset = at(l4_offset + seg.header_len());
            out.payload_len = at(seg.payload().len());
        }
        IpProtocol::Udp => {
            let dgram = UdpDatagram::new_checked(l4)?;
            out.src_port = dgram.src_port();
            out.dst_port = dgram.dst_port();
            out.payload_offset = at(l4_offset + udp::HEADER_LEN);
            out.payload_len = at(dgram.payload().len());
        }
        IpProtocol::Icmp | IpProtocol::Icmpv6 => {
            let v6 = out.network == Network::Ipv6;
            if v6 != (IpProtocol::from(out.proto) == IpProtocol::Icmpv6) {
                // ICMPv4 inside IPv6 or ICMPv6 inside IPv4: carried as an
                // opaque protocol, like any other.
                out.payload_offset = at(l4_offset);
                out.payload_len = at(l4.len());
                return Ok(());
            }
            let msg = IcmpMessage::new_checked(l4, v6)?;
            out.icmp_type = msg.msg_type();
            out.icmp_code = msg.code();
            if let Some(id) = msg.echo_ident() {
                // Echo request and reply share the identifier: it stands in
                // for both ports so they land in one flow.
                out.src_port = id;
                out.dst_port = id;
            }
            out.payload_offset = at(l4_offset + icmp::HEADER_LEN);
            out.payload_len = at(msg.payload().len());
        }
        _ => {
            out.payload_offset = at(l4_offset);
            out.payload_len = at(l4.len());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_table_is_complete_and_ordered() {
        for (i, e) in DecodeError::ALL.iter().enumerate() {
            assert_eq!(e.index(), i);
        }
        let mut names: Vec<_> = DecodeError::ALL.iter().map(|e| e.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), DecodeError::COUNT);
    }

    #[test]
    fn ones_sum_is_rfc_1071s_sum_at_every_length() {
        // RFC 1071 as written: big-endian words, a last odd byte padded;
        // both sums have their carries folded back in before comparing.
        fn reference(b: &[u8]) -> u64 {
            b.chunks(2)
                .map(|w| u64::from(w[0]) << 8 | u64::from(*w.get(1).unwrap_or(&0)))
                .sum()
        }
        let fold = |mut s: u64| {
            while s > 0xffff {
                s = (s & 0xffff) + (s >> 16);
            }
            s
        };
        let data = crate::sample::Rng(0x9e37_79b9).bytes(200_000);
        let ff = vec![0xffu8; 140_001];
        for len in (0..300).chain([1023, 1460, 9000, 65_535, 65_536, 65_537, 131_073, 200_000]) {
            assert_eq!(
                fold(ones_sum(0, &data[..len])),
                fold(reference(&data[..len])),
                "{len}"
            );
        }
        // All ones: the most a lane can be given.
        for len in [65_536, 65_537, 140_001] {
            assert_eq!(
                fold(ones_sum(0, &ff[..len])),
                fold(reference(&ff[..len])),
                "{len}"
            );
        }
    }

    #[test]
    fn tcp_checksums_verify_over_both_pseudo_headers() {
        use crate::craft::Route;
        for (a, b) in [("10.0.0.1", "10.0.0.2"), ("2001:db8::1", "2001:db8::2")] {
            let r = Route::new(a.parse().unwrap(), b.parse().unwrap()).vlan(3);
            // Odd payload length: the last byte is padded.
            let mut f = r.tcp(
                40000,
                443,
                7,
                9,
                0x18,
                1000,
                &[1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2],
                b"hello",
            );
            let d = decode(&f).unwrap();
            assert!(tcp_checksum_ok(&f, &d), "{a}");
            let last = f.len() - 1;
            f[last] ^= 0x20;
            assert!(
                !tcp_checksum_ok(&f, &decode(&f).unwrap()),
                "{a}: a flipped bit"
            );
        }
    }

    #[test]
    fn gre_is_followed_to_the_frame_or_packet_it_carries() {
        use crate::craft::Route;
        let tunnel = Route::new("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        let inside = Route::new("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let frame = inside.tcp(40000, 80, 1, 0, 0x02, 1000, &[], b"GET");
        // Ethernet over GRE (transparent bridging), with a key.
        let mut teb = vec![0x20, 0, 0x65, 0x58, 0, 0, 0, 9];
        teb.extend_from_slice(&frame);
        let outer = tunnel.frame(gre::PROTO, &teb);
        let d = decode(&outer).unwrap();
        assert_eq!(d.src_ip().to_string(), "10.0.0.1");
        assert_eq!((d.proto, d.src_port, d.dst_port), (6, 40000, 80));
        assert_eq!(&outer[d.payload_offset as usize..][..3], b"GET");
        // IPv4 straight over GRE.
        let mut ip = vec![0, 0, 0x08, 0x00];
        ip.extend_from_slice(&frame[14..]);
        let outer = tunnel.frame(gre::PROTO, &ip);
        let d = decode(&outer).unwrap();
        assert_eq!((d.proto, d.dst_port), (6, 80));
        assert_eq!(&outer[d.payload_offset as usize..][..3], b"GET");
        // A cut header is named; PPTP's GRE stays opaque.
        let cut = tunnel.frame(gre::PROTO, &[0x30, 0, 0x08, 0x00, 0, 0]);
        assert_eq!(decode(&cut).unwrap_err(), DecodeError::GreTruncated);
        let pptp = tunnel.frame(gre::PROTO, &[0x30, 0x81, 0x88, 0x0b, 0, 0, 0, 0]);
        assert_eq!(decode(&pptp).unwrap().proto, gre::PROTO);
    }

    #[test]
    fn vxlan_is_followed_to_the_tenant_frame() {
        use crate::craft::Route;
        let vtep = Route::new("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        let tenant = Route::new("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap()).vlan(7);
        let inner = tenant.tcp(40000, 443, 1, 0, 0x02, 1000, &[], b"hi");
        let outer = vtep.vxlan(51234, 0xabcdef, &inner);
        let d = decode(&outer).unwrap();
        assert_eq!(d.vni, Some(0xabcdef));
        assert_eq!(d.src_ip().to_string(), "10.0.0.1");
        assert_eq!((d.proto, d.src_port, d.dst_port), (6, 40000, 443));
        assert_eq!(d.vlans(), &[7]);
        assert_eq!(&outer[d.payload_offset as usize..][..2], b"hi");
        // A cut VXLAN header is named; a datagram without the VNI flag and
        // plain traffic to other ports are left as UDP.
        let mut cut = vtep.udp(51234, 4789, &[0x08, 0, 0]);
        assert_eq!(decode(&cut).unwrap_err(), DecodeError::VxlanTruncated);
        cut = vtep.udp(51234, 4789, &[0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(decode(&cut).unwrap().vni, None);
        // A broken tenant frame is an error of the inner layer.
        let bad = vtep.vxlan(1, 5, &inner[..16]);
        assert_eq!(decode(&bad).unwrap_err(), DecodeError::VlanTruncated);
    }

    #[test]
    fn replay_passes_shift_addresses() {
        let mut d = Decoded {
            network: Network::Ipv4,
            ..Default::default()
        };
        d.src[..4].copy_from_slice(&[10, 0, 0, 1]);
        d.dst[..4].copy_from_slice(&[10, 0, 255, 2]);
        d.offset_addresses(1);
        assert_eq!(d.src_ip().to_string(), "10.0.1.1");
        assert_eq!(d.dst_ip().to_string(), "10.1.0.2");
    }

    #[test]
    fn protocol_numbers_round_trip() {
        for v in 0..=255u8 {
            assert_eq!(u8::from(IpProtocol::from(v)), v);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A cheap deterministic fuzz: every length of a pseudo-random buffer,
        // behind each ethertype the decoder follows.
        let mut x: u32 = 0x1234_5678;
        let mut buf = vec![0u8; 256];
        for round in 0..2000 {
            for b in buf.iter_mut() {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                *b = x as u8;
            }
            let et: [u8; 2] = match round % 5 {
                0 => [0x08, 0x00],
                1 => [0x86, 0xdd],
                2 => [0x81, 0x00],
                3 => [0x88, 0xa8],
                _ => [buf[12], buf[13]],
            };
            buf[12..14].copy_from_slice(&et);
            if round % 2 == 0 {
                buf[14] = 0x45;
            }
            let n = round % buf.len();
            let _ = decode(&buf[..n]);
        }
    }
}
