//! Packet crafting for tests, the sample capture and benchmarks: Ethernet
//! frames with VLAN/QinQ tags, IPv4 (with options) or IPv6 (with extension
//! headers), TCP, UDP and ICMP with correct checksums, and TCP conversations
//! (handshake, data cut into chosen segment sizes and sent in a chosen order,
//! teardown or reset). Captures are built from code, never hand-edited.
//! This is tooling, not the hot path: it allocates freely.

use crate::decode::tcp::{ACK_FLAG, FIN, PSH, RST, SYN};
use crate::io::pcap::{PcapWriter, PcapngWriter};
use std::io;
use std::net::IpAddr;

/// The Internet checksum (RFC 1071) over several byte slices, as if they were
/// one buffer (odd-length parts are only allowed last).
pub fn internet_checksum(parts: &[&[u8]]) -> u16 {
    let mut sum: u32 = 0;
    for part in parts {
        let mut chunks = part.chunks_exact(2);
        for c in &mut chunks {
            sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
        }
        if let [last] = chunks.remainder() {
            sum += u32::from(*last) << 8;
        }
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An IPv6 extension header to put in front of the transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ipv6Ext {
    HopByHop,
    Routing,
    DestOpts,
}

impl Ipv6Ext {
    /// Bytes the header takes on the wire.
    fn len(self) -> usize {
        match self {
            Ipv6Ext::Routing => 24,
            Ipv6Ext::HopByHop | Ipv6Ext::DestOpts => 8,
        }
    }

    fn number(self) -> u8 {
        match self {
            Ipv6Ext::HopByHop => 0,
            Ipv6Ext::Routing => 43,
            Ipv6Ext::DestOpts => 60,
        }
    }
}

/// Everything below the transport: MACs, VLAN tags, addresses, IP options.
#[derive(Debug, Clone)]
pub struct Route {
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    /// Outermost first: (TPID, VLAN id). 0x88a8 then 0x8100 is QinQ.
    pub vlans: Vec<(u16, u16)>,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub ttl: u8,
    /// Raw IPv4 option bytes (padded to 4 by the builder).
    pub ipv4_options: Vec<u8>,
    pub ipv6_ext: Vec<Ipv6Ext>,
}

impl Route {
    /// A plain path between two addresses of the same family.
    pub fn new(src: IpAddr, dst: IpAddr) -> Self {
        assert_eq!(src.is_ipv4(), dst.is_ipv4(), "one address family per path");
        Route {
            src_mac: [0x02, 0x00, 0x00, 0x00, 0x00, 0x01],
            dst_mac: [0x02, 0x00, 0x00, 0x00, 0x00, 0x02],
            vlans: Vec::new(),
            src,
            dst,
            ttl: 64,
            ipv4_options: Vec::new(),
            ipv6_ext: Vec::new(),
        }
    }

    pub fn vlan(mut self, vid: u16) -> Self {
        self.vlans.push((0x8100, vid));
        self
    }

    /// An 802.1ad service tag outside a customer tag.
    pub fn qinq(mut self, outer: u16, inner: u16) -> Self {
        self.vlans.push((0x88a8, outer));
        self.vlans.push((0x8100, inner));
        self
    }

    pub fn ipv4_options(mut self, opts: &[u8]) -> Self {
        self.ipv4_options = opts.to_vec();
        self
    }

    pub fn ipv6_ext(mut self, ext: &[Ipv6Ext]) -> Self {
        self.ipv6_ext = ext.to_vec();
        self
    }

    /// The same path seen from the other end.
    pub fn reversed(&self) -> Route {
        Route {
            src_mac: self.dst_mac,
            dst_mac: self.src_mac,
            src: self.dst,
            dst: self.src,
            ..self.clone()
        }
    }

    fn pseudo_header(&self, proto: u8, len: usize) -> Vec<u8> {
        let mut p = Vec::with_capacity(40);
        match (self.src, self.dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                p.extend_from_slice(&s.octets());
                p.extend_from_slice(&d.octets());
                p.extend_from_slice(&[0, proto]);
                p.extend_from_slice(&(len as u16).to_be_bytes());
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                p.extend_from_slice(&s.octets());
                p.extend_from_slice(&d.octets());
                p.extend_from_slice(&(len as u32).to_be_bytes());
                p.extend_from_slice(&[0, 0, 0, proto]);
            }
            _ => unreachable!("Route::new keeps one family"),
        }
        p
    }

    /// Wraps a transport segment (with its checksum already set) in IP and
    /// Ethernet.
    pub fn frame(&self, proto: u8, l4: &[u8]) -> Vec<u8> {
        let mut f = Vec::with_capacity(64 + l4.len());
        f.extend_from_slice(&self.dst_mac);
        f.extend_from_slice(&self.src_mac);
        for &(tpid, vid) in &self.vlans {
            f.extend_from_slice(&tpid.to_be_bytes());
            f.extend_from_slice(&(vid & 0x0fff).to_be_bytes());
        }
        match (self.src, self.dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                f.extend_from_slice(&0x0800u16.to_be_bytes());
                let mut opts = self.ipv4_options.clone();
                while opts.len() % 4 != 0 {
                    opts.push(0);
                }
                let hlen = 20 + opts.len();
                let mut h = vec![0u8; 20];
                h[0] = 0x40 | (hlen / 4) as u8;
                h[2..4].copy_from_slice(&((hlen + l4.len()) as u16).to_be_bytes());
                h[4..6].copy_from_slice(&0x1000u16.to_be_bytes());
                h[6] = 0x40; // DF
                h[8] = self.ttl;
                h[9] = proto;
                h[12..16].copy_from_slice(&s.octets());
                h[16..20].copy_from_slice(&d.octets());
                h.extend_from_slice(&opts);
                let c = internet_checksum(&[&h]);
                h[10..12].copy_from_slice(&c.to_be_bytes());
                f.extend_from_slice(&h);
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                f.extend_from_slice(&0x86ddu16.to_be_bytes());
                let ext_len: usize = self.ipv6_ext.iter().map(|e| e.len()).sum();
                let first = self.ipv6_ext.first().map_or(proto, |e| e.number());
                f.extend_from_slice(&[0x60, 0, 0, 0]);
                f.extend_from_slice(&((ext_len + l4.len()) as u16).to_be_bytes());
                f.extend_from_slice(&[first, self.ttl]);
                f.extend_from_slice(&s.octets());
                f.extend_from_slice(&d.octets());
                for (i, e) in self.ipv6_ext.iter().enumerate() {
                    let next = self.ipv6_ext.get(i + 1).map_or(proto, |n| n.number());
                    match e {
                        // Options headers carry one PadN option filling 6 bytes.
                        Ipv6Ext::HopByHop | Ipv6Ext::DestOpts => {
                            f.extend_from_slice(&[next, 0, 1, 4, 0, 0, 0, 0])
                        }
                        // A segment routing header (type 4, RFC 8754) whose one
                        // segment is the destination, with no segments left.
                        Ipv6Ext::Routing => {
                            f.extend_from_slice(&[next, 2, 4, 0, 0, 0, 0, 0]);
                            f.extend_from_slice(&d.octets());
                        }
                    }
                }
            }
            _ => unreachable!("Route::new keeps one family"),
        }
        f.extend_from_slice(l4);
        f
    }

    fn l4_with_checksum(&self, proto: u8, mut seg: Vec<u8>, at: usize) -> Vec<u8> {
        let ph = self.pseudo_header(proto, seg.len());
        let c = internet_checksum(&[&ph, &seg]);
        // UDP sends a computed 0 as 0xffff.
        let c = if proto == 17 && c == 0 { 0xffff } else { c };
        seg[at..at + 2].copy_from_slice(&c.to_be_bytes());
        seg
    }

    #[allow(clippy::too_many_arguments)]
    pub fn tcp(
        &self,
        sport: u16,
        dport: u16,
        seq: u32,
        ack: u32,
        flags: u8,
        window: u16,
        options: &[u8],
        payload: &[u8],
    ) -> Vec<u8> {
        let mut opts = options.to_vec();
        while opts.len() % 4 != 0 {
            opts.push(0);
        }
        let hlen = 20 + opts.len();
        let mut s = vec![0u8; 20];
        s[0..2].copy_from_slice(&sport.to_be_bytes());
        s[2..4].copy_from_slice(&dport.to_be_bytes());
        s[4..8].copy_from_slice(&seq.to_be_bytes());
        s[8..12].copy_from_slice(&ack.to_be_bytes());
        s[12] = ((hlen / 4) as u8) << 4;
        s[13] = flags;
        s[14..16].copy_from_slice(&window.to_be_bytes());
        s.extend_from_slice(&opts);
        s.extend_from_slice(payload);
        let s = self.l4_with_checksum(6, s, 16);
        self.frame(6, &s)
    }

    pub fn udp(&self, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
        let mut d = Vec::with_capacity(8 + payload.len());
        d.extend_from_slice(&sport.to_be_bytes());
        d.extend_from_slice(&dport.to_be_bytes());
        d.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        d.extend_from_slice(&[0, 0]);
        d.extend_from_slice(payload);
        let d = self.l4_with_checksum(17, d, 6);
        self.frame(17, &d)
    }

    /// A tenant's Ethernet frame carried in VXLAN over this route: UDP from
    /// `sport` (a VTEP sets it from a hash of the inner flow) to 4789.
    pub fn vxlan(&self, sport: u16, vni: u32, inner: &[u8]) -> Vec<u8> {
        let mut p = vec![0x08, 0, 0, 0];
        p.extend_from_slice(&(vni << 8).to_be_bytes());
        p.extend_from_slice(inner);
        self.udp(sport, crate::decode::vxlan::PORT, &p)
    }

    /// An ICMP (IPv4) or ICMPv6 (IPv6) message; `rest` is the 4 bytes after
    /// the checksum (identifier and sequence for echoes).
    pub fn icmp(&self, msg_type: u8, code: u8, rest: [u8; 4], payload: &[u8]) -> Vec<u8> {
        let mut m = vec![msg_type, code, 0, 0];
        m.extend_from_slice(&rest);
        m.extend_from_slice(payload);
        if self.src.is_ipv4() {
            let c = internet_checksum(&[&m]);
            m[2..4].copy_from_slice(&c.to_be_bytes());
            self.frame(1, &m)
        } else {
            let m = self.l4_with_checksum(58, m, 2);
            self.frame(58, &m)
        }
    }
}

/// Splits a frame's IP payload into fragments carrying `chunk` bytes each
/// (rounded down to a multiple of 8; the last one takes the rest). IPv4
/// fragments repeat the IP header with MF and the offset set; IPv6
/// fragments carry a fragment header after the IPv6 header and its
/// extension headers. `ident` is the datagram's identification. Panics on
/// frames it cannot split: this is test tooling.
pub fn fragment(frame: &[u8], chunk: usize, ident: u32) -> Vec<Vec<u8>> {
    let d = crate::decode::decode(frame).expect("a frame that decodes");
    let chunk = (chunk / 8).max(1) * 8;
    let l3 = 14 + 4 * usize::from(d.vlan_count);
    let mut out = Vec::new();
    match d.network {
        crate::decode::Network::Ipv4 => {
            let hl = usize::from(frame[l3] & 0x0f) * 4;
            let payload = &frame[l3 + hl..];
            let mut at = 0;
            while at < payload.len() {
                let end = (at + chunk).min(payload.len());
                let mut f = frame[..l3 + hl].to_vec();
                let ip = &mut f[l3..];
                ip[2..4].copy_from_slice(&((hl + end - at) as u16).to_be_bytes());
                ip[4..6].copy_from_slice(&(ident as u16).to_be_bytes());
                let more = if end < payload.len() { 0x2000 } else { 0 };
                ip[6..8].copy_from_slice(&(more | (at / 8) as u16).to_be_bytes());
                ip[10..12].copy_from_slice(&[0, 0]);
                let c = internet_checksum(&[&ip[..hl]]);
                ip[10..12].copy_from_slice(&c.to_be_bytes());
                f.extend_from_slice(&payload[at..end]);
                out.push(f);
                at = end;
            }
        }
        crate::decode::Network::Ipv6 => {
            // The unfragmentable part: the IPv6 header and the extension
            // headers before the transport (Route puts only those in).
            let (unfrag, next_field) = ipv6_unfragmentable(frame, l3);
            let payload = &frame[l3 + unfrag..];
            let upper = frame[l3 + next_field];
            let mut at = 0;
            while at < payload.len() {
                let end = (at + chunk).min(payload.len());
                let mut f = frame[..l3 + unfrag].to_vec();
                f[l3 + next_field] = 44;
                let plen = (unfrag - 40 + 8 + end - at) as u16;
                f[l3 + 4..l3 + 6].copy_from_slice(&plen.to_be_bytes());
                let more = u16::from(end < payload.len());
                f.push(upper);
                f.push(0);
                f.extend_from_slice(&((at as u16) | more).to_be_bytes());
                f.extend_from_slice(&ident.to_be_bytes());
                f.extend_from_slice(&payload[at..end]);
                out.push(f);
                at = end;
            }
        }
        crate::decode::Network::Arp => panic!("ARP does not fragment"),
    }
    out
}

/// Walks the IPv6 extension headers Route builds (hop-by-hop, routing,
/// destination options) and returns the unfragmentable length and the
/// offset of the byte naming the header after them, both from the IPv6
/// header.
fn ipv6_unfragmentable(frame: &[u8], l3: usize) -> (usize, usize) {
    let mut field = 6;
    let mut at = 40;
    while matches!(frame[l3 + field], 0 | 43 | 60) {
        field = at;
        at += (usize::from(frame[l3 + at + 1]) + 1) * 8;
    }
    (at, field)
}

/// Which end of a conversation sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Client,
    Server,
}

impl Side {
    pub fn peer(self) -> Side {
        match self {
            Side::Client => Side::Server,
            Side::Server => Side::Client,
        }
    }
}

/// A TCP conversation with tracked sequence numbers. Each call appends
/// packets, each one `gap_ns` after the previous.
#[derive(Debug, Clone)]
pub struct TcpConversation {
    path: Route,
    client_port: u16,
    server_port: u16,
    /// Next sequence number each side will send.
    client_seq: u32,
    server_seq: u32,
    window: u16,
    wscale: Option<u8>,
    ts_ns: u64,
    gap_ns: u64,
    packets: Vec<(u64, Vec<u8>)>,
}

impl TcpConversation {
    pub fn new(path: Route, client_port: u16, server_port: u16, start_ns: u64) -> Self {
        TcpConversation {
            path,
            client_port,
            server_port,
            client_seq: 0x1000_0000 ^ u32::from(client_port) << 8,
            server_seq: 0x7000_0000 ^ u32::from(server_port) << 4,
            window: 64240,
            wscale: None,
            ts_ns: start_ns,
            gap_ns: 1_000_000,
            packets: Vec::new(),
        }
    }

    /// Time between consecutive packets.
    pub fn gap(mut self, gap_ns: u64) -> Self {
        self.gap_ns = gap_ns;
        self
    }

    /// Negotiates window scaling with this shift on both SYNs.
    pub fn window_scale(mut self, shift: u8) -> Self {
        self.wscale = Some(shift);
        self
    }

    pub fn isn(mut self, client: u32, server: u32) -> Self {
        self.client_seq = client;
        self.server_seq = server;
        self
    }

    pub fn client_seq(&self) -> u32 {
        self.client_seq
    }

    pub fn server_seq(&self) -> u32 {
        self.server_seq
    }

    pub fn now(&self) -> u64 {
        self.ts_ns
    }

    /// Moves the clock on without sending (idle time).
    pub fn idle(&mut self, ns: u64) -> &mut Self {
        self.ts_ns += ns;
        self
    }

    fn ports(&self, from: Side) -> (u16, u16) {
        match from {
            Side::Client => (self.client_port, self.server_port),
            Side::Server => (self.server_port, self.client_port),
        }
    }

    /// Appends a frame built elsewhere (an edited segment), at the
    /// conversation's clock.
    pub fn push(&mut self, frame: Vec<u8>) -> &mut Self {
        self.packets.push((self.ts_ns, frame));
        self.ts_ns += self.gap_ns;
        self
    }

    /// Builds one segment from `from` with explicit numbers and TCP option
    /// bytes, without appending it.
    #[allow(clippy::too_many_arguments)]
    pub fn segment(
        &self,
        from: Side,
        seq: u32,
        ack: u32,
        flags: u8,
        options: &[u8],
        payload: &[u8],
    ) -> Vec<u8> {
        let (sp, dp) = self.ports(from);
        match from {
            Side::Client => self
                .path
                .tcp(sp, dp, seq, ack, flags, self.window, options, payload),
            Side::Server => {
                self.path
                    .reversed()
                    .tcp(sp, dp, seq, ack, flags, self.window, options, payload)
            }
        }
    }

    /// Moves the tracked sequence number of `from` on by `n` (after data
    /// sent with `raw` or `push`).
    pub fn advance_seq(&mut self, from: Side, n: u32) -> &mut Self {
        self.advance(from, n);
        self
    }

    /// Appends one raw segment from `from` with explicit numbers; does not
    /// move the tracked sequence numbers.
    pub fn raw(&mut self, from: Side, seq: u32, ack: u32, flags: u8, payload: &[u8]) -> &mut Self {
        let (sp, dp) = self.ports(from);
        let mut opts = Vec::new();
        if flags & SYN != 0 {
            opts.extend_from_slice(&[2, 4, 0x05, 0xb4]); // MSS 1460
            if let Some(ws) = self.wscale {
                opts.extend_from_slice(&[1, 3, 3, ws]);
            }
        }
        let frame = match from {
            Side::Client => self
                .path
                .tcp(sp, dp, seq, ack, flags, self.window, &opts, payload),
            Side::Server => {
                self.path
                    .reversed()
                    .tcp(sp, dp, seq, ack, flags, self.window, &opts, payload)
            }
        };
        self.packets.push((self.ts_ns, frame));
        self.ts_ns += self.gap_ns;
        self
    }

    fn seqs(&self, from: Side) -> (u32, u32) {
        match from {
            Side::Client => (self.client_seq, self.server_seq),
            Side::Server => (self.server_seq, self.client_seq),
        }
    }

    fn advance(&mut self, from: Side, n: u32) {
        match from {
            Side::Client => self.client_seq = self.client_seq.wrapping_add(n),
            Side::Server => self.server_seq = self.server_seq.wrapping_add(n),
        }
    }

    /// The other end acknowledges everything `from` sent.
    fn ack_from_peer(&mut self, from: Side) -> &mut Self {
        let peer = from.peer();
        let (s, a) = self.seqs(peer);
        self.raw(peer, s, a, ACK_FLAG, &[])
    }

    /// SYN, SYN-ACK, ACK.
    pub fn handshake(&mut self) -> &mut Self {
        let (c, _) = self.seqs(Side::Client);
        self.raw(Side::Client, c, 0, SYN, &[]);
        self.advance(Side::Client, 1);
        let (s, a) = self.seqs(Side::Server);
        self.raw(Side::Server, s, a, SYN | ACK_FLAG, &[]);
        self.advance(Side::Server, 1);
        let (c, a) = self.seqs(Side::Client);
        self.raw(Side::Client, c, a, ACK_FLAG, &[])
    }

    /// Sends `data` from one side in segments of at most `mss` bytes, in
    /// order, then the other side's ACK. As a real sender does, it never
    /// has more unacknowledged than the window the receiver advertised in
    /// its SYN (unscaled): the receiver acknowledges each window's worth.
    pub fn send(&mut self, from: Side, data: &[u8], mss: usize) -> &mut Self {
        let window = usize::from(self.window).max(mss.max(1));
        let per_ack = window / mss.max(1) * mss.max(1);
        if data.is_empty() {
            return self.send_segments(from, data, &[0], &[0]);
        }
        for part in data.chunks(per_ack) {
            let sizes: Vec<usize> = part.chunks(mss.max(1)).map(<[u8]>::len).collect();
            let order: Vec<usize> = (0..sizes.len()).collect();
            self.send_segments(from, part, &sizes, &order);
        }
        self
    }

    /// Cuts `data` into segments of the given sizes (the last one takes what
    /// is left) and sends them in `order` (indices into the segments; an
    /// index may repeat, which is a retransmission). Ends with the peer's ACK
    /// of everything.
    pub fn send_segments(
        &mut self,
        from: Side,
        data: &[u8],
        sizes: &[usize],
        order: &[usize],
    ) -> &mut Self {
        let (base, ack) = self.seqs(from);
        let mut segs = Vec::new();
        let mut at = 0;
        for (i, &s) in sizes.iter().enumerate() {
            let end = if i + 1 == sizes.len() {
                data.len()
            } else {
                (at + s).min(data.len())
            };
            segs.push((at, end));
            at = end;
        }
        for &i in order {
            let (a, b) = segs[i];
            self.raw(
                from,
                base.wrapping_add(a as u32),
                ack,
                ACK_FLAG | PSH,
                &data[a..b],
            );
        }
        self.advance(from, data.len() as u32);
        self.ack_from_peer(from)
    }

    /// Sends `parts` from one side as one segment each (server-sent events,
    /// say), idling `pause_ns(i)` after part i, then the peer's ACK.
    pub fn send_parts(
        &mut self,
        from: Side,
        parts: &[Vec<u8>],
        mut pause_ns: impl FnMut(usize) -> u64,
    ) -> &mut Self {
        for (i, part) in parts.iter().enumerate() {
            let (s, a) = self.seqs(from);
            self.raw(from, s, a, ACK_FLAG | PSH, part);
            self.advance(from, part.len() as u32);
            self.ts_ns += pause_ns(i);
        }
        self.ack_from_peer(from)
    }

    /// FIN from `first`, ACK, FIN from the other side, final ACK.
    pub fn close(&mut self, first: Side) -> &mut Self {
        let second = first.peer();
        let (s, a) = self.seqs(first);
        self.raw(first, s, a, FIN | ACK_FLAG, &[]);
        self.advance(first, 1);
        let (s, a) = self.seqs(second);
        self.raw(second, s, a, ACK_FLAG, &[]);
        self.raw(second, s, a, FIN | ACK_FLAG, &[]);
        self.advance(second, 1);
        let (s, a) = self.seqs(first);
        self.raw(first, s, a, ACK_FLAG, &[])
    }

    /// A RST from `from` at its next sequence number (in window).
    pub fn reset(&mut self, from: Side) -> &mut Self {
        let (s, a) = self.seqs(from);
        self.raw(from, s, a, RST | ACK_FLAG, &[])
    }

    pub fn packets(&self) -> &[(u64, Vec<u8>)] {
        &self.packets
    }

    pub fn into_packets(self) -> Vec<(u64, Vec<u8>)> {
        self.packets
    }
}

/// Edits of a built frame that evasion captures need (checksums are fixed
/// unless the edit is to break one). The frame must decode.
pub mod edit {
    use super::internet_checksum;
    use crate::decode::{decode, Network};

    fn ip_header(frame: &[u8]) -> (usize, usize, Network) {
        let d = decode(frame).expect("a frame that decodes");
        let l3 = usize::from(d.l3_offset);
        let len = match d.network {
            Network::Ipv4 => usize::from(frame[l3] & 0x0f) * 4,
            _ => 40,
        };
        (l3, len, d.network)
    }

    fn fix_ipv4_checksum(frame: &mut [u8], l3: usize, hl: usize) {
        frame[l3 + 10..l3 + 12].copy_from_slice(&[0, 0]);
        let c = internet_checksum(&[&frame[l3..l3 + hl]]);
        frame[l3 + 10..l3 + 12].copy_from_slice(&c.to_be_bytes());
    }

    /// Sets the IPv4 TTL or IPv6 hop limit.
    pub fn set_ttl(frame: &mut [u8], ttl: u8) {
        let (l3, hl, net) = ip_header(frame);
        match net {
            Network::Ipv4 => {
                frame[l3 + 8] = ttl;
                fix_ipv4_checksum(frame, l3, hl);
            }
            _ => frame[l3 + 7] = ttl,
        }
    }

    /// Spoils the IPv4 header checksum.
    pub fn break_ip_checksum(frame: &mut [u8]) {
        let (l3, _, _) = ip_header(frame);
        frame[l3 + 10] ^= 0x5a;
    }

    /// Spoils the TCP checksum.
    pub fn break_tcp_checksum(frame: &mut [u8]) {
        let d = decode(frame).expect("a frame that decodes");
        let at = d.payload_offset as usize - usize::from(d.tcp.header_len) + 16;
        frame[at] ^= 0x5a;
    }

    /// Sets URG and the urgent pointer of a TCP segment, checksum fixed.
    pub fn set_urgent(frame: &mut [u8], pointer: u16) {
        let d = decode(frame).expect("a frame that decodes");
        let l4 = d.payload_offset as usize - usize::from(d.tcp.header_len);
        frame[l4 + 13] |= crate::decode::tcp::URG;
        frame[l4 + 18..l4 + 20].copy_from_slice(&pointer.to_be_bytes());
        fix_tcp_checksum(frame);
    }

    /// Recomputes a TCP segment's checksum over its pseudo-header.
    pub fn fix_tcp_checksum(frame: &mut [u8]) {
        let d = decode(frame).expect("a frame that decodes");
        let l4 = d.payload_offset as usize - usize::from(d.tcp.header_len);
        let end = d.payload_offset as usize + d.payload_len as usize;
        frame[l4 + 16..l4 + 18].copy_from_slice(&[0, 0]);
        let len = (end - l4) as u32;
        let mut ph = Vec::with_capacity(40);
        match d.network {
            Network::Ipv4 => {
                ph.extend_from_slice(&d.src[..4]);
                ph.extend_from_slice(&d.dst[..4]);
                ph.extend_from_slice(&[0, 6]);
                ph.extend_from_slice(&(len as u16).to_be_bytes());
            }
            _ => {
                ph.extend_from_slice(&d.src);
                ph.extend_from_slice(&d.dst);
                ph.extend_from_slice(&len.to_be_bytes());
                ph.extend_from_slice(&[0, 0, 0, 6]);
            }
        }
        let c = internet_checksum(&[&ph, &frame[l4..end]]);
        frame[l4 + 16..l4 + 18].copy_from_slice(&c.to_be_bytes());
    }
}

/// A capture under construction: packets from many conversations, merged in
/// time order when written.
#[derive(Debug, Default, Clone)]
pub struct Capture {
    pub packets: Vec<(u64, Vec<u8>)>,
}

impl Capture {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, ts_ns: u64, frame: Vec<u8>) -> &mut Self {
        self.packets.push((ts_ns, frame));
        self
    }

    pub fn extend(&mut self, pkts: impl IntoIterator<Item = (u64, Vec<u8>)>) -> &mut Self {
        self.packets.extend(pkts);
        self
    }

    /// Packets in time order; ties keep the order they were added in.
    pub fn sorted(&self) -> Vec<(u64, Vec<u8>)> {
        let mut p = self.packets.clone();
        p.sort_by_key(|(ts, _)| *ts);
        p
    }

    pub fn to_pcap(&self) -> Vec<u8> {
        let mut w = PcapWriter::new(Vec::new()).expect("writing to memory");
        for (ts, f) in self.sorted() {
            w.write(ts, &f).expect("writing to memory");
        }
        w.into_inner()
    }

    pub fn to_pcapng(&self) -> Vec<u8> {
        let mut w = PcapngWriter::new(Vec::new()).expect("writing to memory");
        for (ts, f) in self.sorted() {
            w.write(ts, &f).expect("writing to memory");
        }
        w.into_inner()
    }

    pub fn write_pcap(&self, path: &std::path::Path) -> io::Result<()> {
        std::fs::write(path, self.to_pcap())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{decode, Network};

    fn v4(a: &str) -> IpAddr {
        a.parse().unwrap()
    }

    /// Sums a segment with its pseudo-header: a correct checksum makes 0.
    fn verify_l4(frame: &[u8]) {
        let d = decode(frame).unwrap();
        assert_eq!(d.network, Network::Ipv4);
        let ip_start = 14 + 4 * d.vlans().len();
        let l4_start = ip_start + usize::from(frame[ip_start] & 0xf) * 4;
        let l4 = &frame[l4_start..];
        let mut ph = Vec::new();
        ph.extend_from_slice(&d.src[..4]);
        ph.extend_from_slice(&d.dst[..4]);
        ph.extend_from_slice(&[0, d.proto]);
        ph.extend_from_slice(&(l4.len() as u16).to_be_bytes());
        assert_eq!(internet_checksum(&[&ph, l4]), 0);
        assert_eq!(internet_checksum(&[&frame[ip_start..l4_start]]), 0);
    }

    #[test]
    fn checksum_matches_rfc1071_example() {
        // RFC 1071 section 3: the one's-complement sum of these words is 0xddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(internet_checksum(&[&data]), !0xddf2);
        assert_eq!(internet_checksum(&[&data[..4], &data[4..]]), !0xddf2);
        // An odd-length part is allowed last.
        assert_eq!(
            internet_checksum(&[&data[..7]]),
            internet_checksum(&[&data[..6], &[0xf6, 0]])
        );
    }

    #[test]
    fn built_frames_have_valid_checksums_and_decode() {
        let p = Route::new(v4("10.0.0.1"), v4("10.0.0.2")).ipv4_options(&[0x94, 4, 0, 0]);
        let f = p.tcp(1234, 80, 7, 9, SYN, 1000, &[2, 4, 5, 0xb4], b"hello");
        verify_l4(&f);
        let d = decode(&f).unwrap();
        assert_eq!(
            (d.src_port, d.dst_port, d.tcp.seq, d.tcp.flags),
            (1234, 80, 7, SYN)
        );
        assert_eq!(d.payload_len, 5);
        assert_eq!(&f[d.payload_offset as usize..], b"hello");
        let u = p.clone().qinq(100, 200).udp(5353, 53, b"q");
        verify_l4(&u);
        assert_eq!(decode(&u).unwrap().vlans(), &[100, 200]);
    }

    #[test]
    fn ipv6_frames_with_extension_headers_decode() {
        let p = Route::new(
            "2001:db8::1".parse().unwrap(),
            "2001:db8::2".parse().unwrap(),
        )
        .ipv6_ext(&[Ipv6Ext::HopByHop, Ipv6Ext::Routing, Ipv6Ext::DestOpts]);
        let f = p.tcp(40000, 443, 1, 0, SYN, 1000, &[], &[]);
        let d = decode(&f).unwrap();
        assert_eq!(d.network, Network::Ipv6);
        assert_eq!((d.proto, d.src_port, d.dst_port), (6, 40000, 443));
        // Checksum over the IPv6 pseudo-header (upper-layer length, next header 6).
        let l4 = &f[14 + 40 + 40..];
        let mut ph = Vec::new();
        ph.extend_from_slice(&d.src);
        ph.extend_from_slice(&d.dst);
        ph.extend_from_slice(&(l4.len() as u32).to_be_bytes());
        ph.extend_from_slice(&[0, 0, 0, 6]);
        assert_eq!(internet_checksum(&[&ph, l4]), 0);
        let e = p.icmp(128, 0, [0, 7, 0, 1], b"ping");
        let d = decode(&e).unwrap();
        assert_eq!((d.proto, d.icmp_type, d.src_port), (58, 128, 7));
    }

    #[test]
    fn conversation_tracks_sequence_numbers() {
        let p = Route::new(v4("10.0.0.1"), v4("10.0.0.2"));
        let mut c = TcpConversation::new(p, 40000, 80, 1_000_000_000).isn(100, 500);
        c.handshake()
            .send(Side::Client, b"GET / HTTP/1.1\r\n\r\n", 8)
            .close(Side::Client);
        let pk: Vec<_> = c
            .packets()
            .iter()
            .map(|(_, f)| decode(f).unwrap())
            .collect();
        // SYN, SYN-ACK, ACK, 3 data segments, ACK, FIN, ACK, FIN, ACK
        assert_eq!(pk.len(), 11);
        assert_eq!(pk[0].tcp.seq, 100);
        assert_eq!(pk[1].tcp.ack, 101);
        assert_eq!(pk[3].tcp.seq, 101);
        assert_eq!(pk[4].tcp.seq, 109);
        assert_eq!(pk[6].tcp.ack, 101 + 18);
        assert_eq!(pk[7].tcp.flags, FIN | ACK_FLAG);
        assert_eq!(pk[10].tcp.ack, 502);
        let ts: Vec<u64> = c.packets().iter().map(|(t, _)| *t).collect();
        assert!(ts.windows(2).all(|w| w[1] == w[0] + 1_000_000));
    }

    #[test]
    fn segments_go_out_in_the_order_asked() {
        let p = Route::new(v4("10.0.0.1"), v4("10.0.0.2"));
        let mut c = TcpConversation::new(p, 1, 2, 0).isn(0, 0);
        c.send_segments(Side::Client, b"abcdefgh", &[3, 3, 2], &[2, 0, 1, 1]);
        let seqs: Vec<u32> = c.packets()[..4]
            .iter()
            .map(|(_, f)| decode(f).unwrap().tcp.seq)
            .collect();
        assert_eq!(seqs, [6, 0, 3, 3]);
    }
}
