//! IPv6 headers and the extension-header chain in front of the transport:
//! hop-by-hop, routing, destination options and AH are walked; a fragment
//! header ends the walk (reassembly is its own stage). The view is bounded by
//! the payload length, so Ethernet padding never reaches the transport layer.

use super::{be16, DecodeError, Field, IpProtocol};

const PAYLOAD_LEN: Field = 4..6;
const NEXT_HEADER: usize = 6;
const HOP_LIMIT: usize = 7;
const SRC: Field = 8..24;
const DST: Field = 24..40;
pub const HEADER_LEN: usize = 40;

#[derive(Debug, Clone, Copy)]
pub struct Ipv6Packet<'a> {
    buf: &'a [u8],
}

impl<'a> Ipv6Packet<'a> {
    pub fn new_checked(buf: &'a [u8]) -> Result<Self, DecodeError> {
        if buf.len() < HEADER_LEN {
            return Err(DecodeError::Ipv6Truncated);
        }
        if buf[0] >> 4 != 6 {
            return Err(DecodeError::Ipv6BadVersion);
        }
        let payload_len = usize::from(be16(&buf[PAYLOAD_LEN]));
        // A zero payload length means a jumbogram (RFC 2675); those do not
        // fit an Ethernet frame and are treated as a lying length.
        if payload_len == 0 && buf[NEXT_HEADER] != 59 {
            return Err(DecodeError::Ipv6BadPayloadLen);
        }
        if HEADER_LEN + payload_len > buf.len() {
            return Err(DecodeError::Ipv6Truncated);
        }
        Ok(Ipv6Packet {
            buf: &buf[..HEADER_LEN + payload_len],
        })
    }

    pub fn next_header(&self) -> IpProtocol {
        IpProtocol::from(self.buf[NEXT_HEADER])
    }

    pub fn hop_limit(&self) -> u8 {
        self.buf[HOP_LIMIT]
    }

    pub fn src(&self) -> [u8; 16] {
        let mut a = [0; 16];
        a.copy_from_slice(&self.buf[SRC]);
        a
    }

    pub fn dst(&self) -> [u8; 16] {
        let mut a = [0; 16];
        a.copy_from_slice(&self.buf[DST]);
        a
    }

    pub fn payload(&self) -> &'a [u8] {
        &self.buf[HEADER_LEN..]
    }

    /// Walks the extension headers and returns where the upper layer starts.
    pub fn upper_layer(&self) -> Result<UpperLayer<'a>, DecodeError> {
        let mut proto = self.next_header();
        let mut rest = self.payload();
        let mut offset = HEADER_LEN;
        let mut count = 0;
        // The byte that names the current header: the fixed header's next
        // header field, then the first byte of each extension header.
        let mut next_field = NEXT_HEADER;
        loop {
            let len = match proto {
                IpProtocol::HopByHop | IpProtocol::Ipv6Route | IpProtocol::Ipv6Opts => {
                    let l = rest.get(1).ok_or(DecodeError::Ipv6ExtTruncated)?;
                    (usize::from(*l) + 1) * 8
                }
                IpProtocol::Ah => {
                    let l = rest.get(1).ok_or(DecodeError::Ipv6ExtTruncated)?;
                    (usize::from(*l) + 2) * 4
                }
                IpProtocol::Ipv6Frag => {
                    if rest.len() < 8 {
                        return Err(DecodeError::Ipv6ExtTruncated);
                    }
                    let frag = be16(&rest[2..4]);
                    return Ok(UpperLayer {
                        protocol: IpProtocol::from(rest[0]),
                        offset: offset + 8,
                        payload: &rest[8..],
                        fragment: Some(Ipv6Fragment {
                            offset: usize::from(frag & 0xfff8),
                            more: frag & 1 != 0,
                            ident: u32::from_be_bytes([rest[4], rest[5], rest[6], rest[7]]),
                            header_offset: offset,
                            next_field,
                        }),
                        ext_headers: count + 1,
                    });
                }
                _ => {
                    return Ok(UpperLayer {
                        protocol: proto,
                        offset,
                        payload: rest,
                        fragment: None,
                        ext_headers: count,
                    })
                }
            };
            // Hop-by-hop is only allowed directly after the fixed header.
            if proto == IpProtocol::HopByHop && count != 0 {
                return Err(DecodeError::Ipv6BadExtOrder);
            }
            if len > rest.len() {
                return Err(DecodeError::Ipv6ExtTruncated);
            }
            // Each header takes at least 8 bytes: the packet bounds the walk.
            count += 1;
            proto = IpProtocol::from(rest[0]);
            next_field = offset;
            rest = &rest[len..];
            offset += len;
        }
    }
}

/// Where the transport starts after the extension headers.
#[derive(Debug, Clone, Copy)]
pub struct UpperLayer<'a> {
    pub protocol: IpProtocol,
    /// Offset from the start of the IPv6 header.
    pub offset: usize,
    pub payload: &'a [u8],
    pub fragment: Option<Ipv6Fragment>,
    pub ext_headers: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Fragment {
    /// Offset in bytes.
    pub offset: usize,
    pub more: bool,
    pub ident: u32,
    /// Where the fragment header starts, from the IPv6 header: everything
    /// before it is the unfragmentable part.
    pub header_offset: usize,
    /// The byte (from the IPv6 header) that names the fragment header.
    pub next_field: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2001:db8::1 -> 2001:db8::2, hop-by-hop (8 bytes, PadN) -> destination
    /// options (8 bytes) -> UDP; payload length 24 (16 ext + 8 UDP).
    fn packet() -> Vec<u8> {
        let mut p = vec![0x60, 0, 0, 0, 0, 24, 0, 64];
        p.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        p.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
        p.extend_from_slice(&[60, 0, 1, 4, 0, 0, 0, 0]); // hop-by-hop, next = dest opts
        p.extend_from_slice(&[17, 0, 1, 4, 0, 0, 0, 0]); // dest opts, next = UDP
        p.extend_from_slice(&[0x30, 0x39, 0x00, 0x35, 0x00, 0x08, 0x00, 0x00]); // UDP
        p.extend_from_slice(&[0xee, 0xee]); // Ethernet padding
        p
    }

    #[test]
    fn walks_extension_headers() {
        let b = packet();
        let p = Ipv6Packet::new_checked(&b).unwrap();
        assert_eq!(p.next_header(), IpProtocol::HopByHop);
        assert_eq!(p.hop_limit(), 64);
        assert_eq!(p.src()[15], 1);
        assert_eq!(p.dst()[15], 2);
        let ul = p.upper_layer().unwrap();
        assert_eq!(ul.protocol, IpProtocol::Udp);
        assert_eq!(ul.offset, 56);
        assert_eq!(ul.ext_headers, 2);
        assert_eq!(ul.payload.len(), 8, "padding is trimmed");
        assert!(ul.fragment.is_none());
    }

    #[test]
    fn fragment_header_stops_the_walk() {
        let mut b = packet();
        b[40] = 44; // hop-by-hop -> fragment
        b[48..56].copy_from_slice(&[17, 0, 0x00, 0x09, 0xca, 0xfe, 0xba, 0xbe]); // offset 8, M=1
        let p = Ipv6Packet::new_checked(&b).unwrap();
        let ul = p.upper_layer().unwrap();
        assert_eq!(ul.protocol, IpProtocol::Udp);
        assert_eq!(
            ul.fragment,
            Some(Ipv6Fragment {
                offset: 8,
                more: true,
                ident: 0xcafebabe,
                header_offset: 48,
                next_field: 40,
            })
        );
    }

    #[test]
    fn malformed_headers_are_named() {
        let b = packet();
        assert_eq!(
            Ipv6Packet::new_checked(&b[..39]).unwrap_err(),
            DecodeError::Ipv6Truncated
        );
        let mut v = b.clone();
        v[0] = 0x40;
        assert_eq!(
            Ipv6Packet::new_checked(&v).unwrap_err(),
            DecodeError::Ipv6BadVersion
        );
        let mut v = b.clone();
        v[5] = 200;
        assert_eq!(
            Ipv6Packet::new_checked(&v).unwrap_err(),
            DecodeError::Ipv6Truncated
        );
        let mut v = b.clone();
        v[5] = 0;
        assert_eq!(
            Ipv6Packet::new_checked(&v).unwrap_err(),
            DecodeError::Ipv6BadPayloadLen
        );
        let mut v = b.clone();
        v[41] = 3; // hop-by-hop claims 32 bytes
        let p = Ipv6Packet::new_checked(&v).unwrap();
        assert_eq!(p.upper_layer().unwrap_err(), DecodeError::Ipv6ExtTruncated);
        let mut v = b.clone();
        v[48] = 0; // dest opts -> hop-by-hop again
        let p = Ipv6Packet::new_checked(&v).unwrap();
        assert_eq!(p.upper_layer().unwrap_err(), DecodeError::Ipv6BadExtOrder);
    }

    #[test]
    fn long_chains_are_walked_to_the_end() {
        // Ten destination-options headers, then UDP: a host takes it.
        let mut p = vec![0x60, 0, 0, 0, 0, 88, 60, 64];
        p.extend_from_slice(&[0; 32]);
        for i in 0..10 {
            let next = if i == 9 { 17 } else { 60 };
            p.extend_from_slice(&[next, 0, 1, 4, 0, 0, 0, 0]);
        }
        p.extend_from_slice(&[0x30, 0x39, 0x00, 0x35, 0x00, 0x08, 0x00, 0x00]);
        let v = Ipv6Packet::new_checked(&p).unwrap();
        let ul = v.upper_layer().unwrap();
        assert_eq!((ul.protocol, ul.ext_headers), (IpProtocol::Udp, 10));
        // A chain that runs off the packet is still an error.
        p[40 + 9 * 8 + 1] = 3; // the last header claims 32 bytes
        let v = Ipv6Packet::new_checked(&p).unwrap();
        assert_eq!(v.upper_layer().unwrap_err(), DecodeError::Ipv6ExtTruncated);
    }
}
