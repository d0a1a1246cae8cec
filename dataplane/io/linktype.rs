//! Link layers besides Ethernet that captures come in: Linux cooked capture
//! (SLL and SLL2, what `tcpdump -i any` writes), raw IP (link types 101, 12
//! and 14, and 228/229 for IPv4/IPv6 alone) and BSD loopback (NULL and
//! LOOP). The pipeline decodes Ethernet frames, so a capture with any other
//! record is rewritten once, at load, as an Ethernet pcap: each record's
//! link header becomes a 14-byte Ethernet header carrying the same network
//! protocol (and, from SLL, the sender's MAC). Ethernet captures are never
//! copied.

use super::pcap::{CaptureError, Records, LINKTYPE_ETHERNET, MAX_RECORD_LEN};

pub const LINKTYPE_NULL: u32 = 0;
pub const LINKTYPE_RAW: u32 = 101;
/// DLT_RAW as some BSDs number it in classic pcap files.
pub const LINKTYPE_RAW_12: u32 = 12;
pub const LINKTYPE_RAW_14: u32 = 14;
pub const LINKTYPE_LOOP: u32 = 108;
pub const LINKTYPE_SLL: u32 = 113;
pub const LINKTYPE_IPV4: u32 = 228;
pub const LINKTYPE_IPV6: u32 = 229;
pub const LINKTYPE_SLL2: u32 = 276;

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;

/// Whether captures of this link type can be replayed.
pub fn supported(link: u32) -> bool {
    matches!(
        link,
        LINKTYPE_ETHERNET
            | LINKTYPE_NULL
            | LINKTYPE_RAW
            | LINKTYPE_RAW_12
            | LINKTYPE_RAW_14
            | LINKTYPE_LOOP
            | LINKTYPE_SLL
            | LINKTYPE_IPV4
            | LINKTYPE_IPV6
            | LINKTYPE_SLL2
    )
}

/// The network layer of a frame: its ethertype, where it starts, and the
/// sender's MAC when the link header has one. None when the frame is too
/// short for its link header.
fn network(link: u32, frame: &[u8]) -> Option<(u16, usize, [u8; 6])> {
    let be16 = |at: usize| Some(u16::from_be_bytes([*frame.get(at)?, *frame.get(at + 1)?]));
    let by_version = |at: usize| match frame.get(at).map(|b| b >> 4) {
        Some(6) => ETHERTYPE_IPV6,
        Some(4) => ETHERTYPE_IPV4,
        // Not IP: an ethertype nothing decodes, so it is counted.
        _ => 0,
    };
    let mac = |at: usize, len: usize| {
        let mut m = [0u8; 6];
        if len == 6 {
            if let Some(s) = frame.get(at..at + 6) {
                m.copy_from_slice(s);
            }
        }
        m
    };
    match link {
        LINKTYPE_RAW | LINKTYPE_RAW_12 | LINKTYPE_RAW_14 => {
            frame.first()?;
            Some((by_version(0), 0, [0; 6]))
        }
        LINKTYPE_IPV4 => Some((ETHERTYPE_IPV4, 0, [0; 6])),
        LINKTYPE_IPV6 => Some((ETHERTYPE_IPV6, 0, [0; 6])),
        LINKTYPE_NULL | LINKTYPE_LOOP => {
            // The address family, in the capturing host's byte order (NULL)
            // or network order (LOOP). IPv6's number differs by OS.
            let h = frame.get(..4)?;
            let family = if link == LINKTYPE_LOOP || (h[0] == 0 && h[1] == 0) {
                u32::from_be_bytes([h[0], h[1], h[2], h[3]])
            } else {
                u32::from_le_bytes([h[0], h[1], h[2], h[3]])
            };
            let et = match family {
                2 => ETHERTYPE_IPV4,
                10 | 24 | 28 | 30 => ETHERTYPE_IPV6,
                _ => by_version(4),
            };
            Some((et, 4, [0; 6]))
        }
        LINKTYPE_SLL => {
            // packet type, ARPHRD, address length, 8 address bytes, protocol.
            let proto = be16(14)?;
            let alen = usize::from(be16(4)?);
            Some((proto, 16, mac(6, alen)))
        }
        LINKTYPE_SLL2 => {
            // protocol, reserved, ifindex, ARPHRD, packet type, address
            // length, 8 address bytes.
            let proto = be16(0)?;
            let alen = usize::from(*frame.get(11)?);
            frame.get(19)?;
            Some((proto, 20, mac(12, alen)))
        }
        _ => None,
    }
}

/// A capture rewritten as Ethernet.
#[derive(Debug)]
pub struct Rewritten {
    /// A little-endian nanosecond Ethernet pcap.
    pub capture: Vec<u8>,
    /// The error that ended the source early (a cut record), after the
    /// records before it.
    pub cut_short: Option<CaptureError>,
}

/// A capture whose records are not all Ethernet, rewritten as a
/// little-endian nanosecond Ethernet pcap; None when it is Ethernet
/// already. A record too short for its link header becomes its first
/// bytes, shorter than an Ethernet header, so the decoder counts it as
/// `ethernet.truncated`.
pub fn to_ethernet(buf: &[u8]) -> Result<Option<Rewritten>, CaptureError> {
    let all_ethernet = Records::new(buf)?
        .filter_map(Result::ok)
        .all(|r| r.link == LINKTYPE_ETHERNET);
    if all_ethernet {
        return Ok(None);
    }
    let mut out = Vec::with_capacity(buf.len() + buf.len() / 8);
    out.extend_from_slice(&0xa1b2_3c4du32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&(MAX_RECORD_LEN as u32).to_le_bytes());
    out.extend_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
    let mut error = None;
    for r in Records::new(buf)? {
        let r = match r {
            Ok(r) => r,
            Err(e) => {
                error = Some(e);
                break;
            }
        };
        let frame = &buf[r.offset..r.offset + r.caplen as usize];
        let (head, body): ([u8; 14], &[u8]) = if r.link == LINKTYPE_ETHERNET {
            let mut h = [0u8; 14];
            let n = frame.len().min(14);
            h[..n].copy_from_slice(&frame[..n]);
            if n < 14 {
                push_record(&mut out, r.ts_ns, &frame[..n], &[], r.origlen);
                continue;
            }
            (h, &frame[14..])
        } else {
            match network(r.link, frame) {
                Some((ethertype, start, src)) => {
                    let mut h = [0u8; 14];
                    h[6..12].copy_from_slice(&src);
                    h[12..14].copy_from_slice(&ethertype.to_be_bytes());
                    (h, &frame[start..])
                }
                None => {
                    let n = frame.len().min(13);
                    push_record(&mut out, r.ts_ns, &frame[..n], &[], r.origlen);
                    continue;
                }
            }
        };
        let link_len = r.caplen as usize - body.len();
        let origlen = (r.origlen as usize).saturating_sub(link_len) + 14;
        push_record(&mut out, r.ts_ns, &head, body, origlen as u32);
    }
    Ok(Some(Rewritten {
        capture: out,
        cut_short: error,
    }))
}

fn push_record(out: &mut Vec<u8>, ts_ns: u64, head: &[u8], body: &[u8], origlen: u32) {
    let caplen = (head.len() + body.len()) as u32;
    let sec = (ts_ns / 1_000_000_000) as u32;
    let nsec = (ts_ns % 1_000_000_000) as u32;
    for v in [sec, nsec, caplen, origlen.max(caplen)] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(head);
    out.extend_from_slice(body);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::decode;
    use crate::io::pcap::PcapWriter;

    /// An IPv4/UDP packet from 10.0.0.1:1234 to 10.0.0.2:53.
    fn ipv4_udp() -> Vec<u8> {
        let mut p = vec![
            0x45, 0, 0, 32, 0, 1, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        p.extend_from_slice(&[0x04, 0xd2, 0, 53, 0, 12, 0, 0, b'a', b'b', b'c', b'd']);
        p
    }

    fn ipv6_udp() -> Vec<u8> {
        let mut p = vec![0x60, 0, 0, 0, 0, 12, 17, 64];
        p.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8].repeat(4));
        p.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb9].repeat(4));
        p.extend_from_slice(&[0x04, 0xd2, 0, 53, 0, 12, 0, 0, b'a', b'b', b'c', b'd']);
        p
    }

    fn capture(link: u32, frames: &[Vec<u8>]) -> Vec<u8> {
        let mut w = PcapWriter::with_link(Vec::new(), link).unwrap();
        for (i, f) in frames.iter().enumerate() {
            w.write(1_000_000_000 * (i as u64 + 1), f).unwrap();
        }
        w.into_inner()
    }

    /// Every record of `cap`, decoded as the pipeline decodes them.
    fn decoded(cap: &[u8]) -> Vec<Option<(u8, u16, u16)>> {
        let Rewritten {
            capture: eth,
            cut_short,
        } = to_ethernet(cap).unwrap().expect("rewritten");
        assert!(cut_short.is_none());
        Records::new(&eth)
            .unwrap()
            .map(|r| {
                let r = r.unwrap();
                assert_eq!(r.link, LINKTYPE_ETHERNET);
                decode(&eth[r.offset..r.offset + r.caplen as usize])
                    .ok()
                    .map(|d| (d.proto, d.src_port, d.dst_port))
            })
            .collect()
    }

    #[test]
    fn every_supported_link_type_reaches_the_same_decoder() {
        let v4 = ipv4_udp();
        let v6 = ipv6_udp();
        let with = |head: &[u8], p: &[u8]| [head, p].concat();
        let mut sll = vec![0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0];
        sll.extend_from_slice(&0x0800u16.to_be_bytes());
        let mut sll2 = vec![0x86, 0xdd, 0, 0, 0, 0, 0, 2, 0, 1, 0, 6];
        sll2.extend_from_slice(&[2, 0, 0, 0, 0, 1, 0, 0]);
        let cases: Vec<(u32, Vec<Vec<u8>>)> = vec![
            (LINKTYPE_RAW, vec![v4.clone(), v6.clone()]),
            (LINKTYPE_RAW_12, vec![v4.clone()]),
            (LINKTYPE_RAW_14, vec![v6.clone()]),
            (LINKTYPE_IPV4, vec![v4.clone()]),
            (LINKTYPE_IPV6, vec![v6.clone()]),
            (
                LINKTYPE_NULL,
                vec![
                    with(&2u32.to_le_bytes(), &v4),
                    with(&30u32.to_le_bytes(), &v6),
                ],
            ),
            (
                LINKTYPE_NULL,
                vec![
                    with(&2u32.to_be_bytes(), &v4),
                    with(&24u32.to_be_bytes(), &v6),
                ],
            ),
            (LINKTYPE_LOOP, vec![with(&2u32.to_be_bytes(), &v4)]),
            (LINKTYPE_SLL, vec![with(&sll, &v4)]),
            (LINKTYPE_SLL2, vec![with(&sll2, &v6)]),
        ];
        for (link, frames) in cases {
            let got = decoded(&capture(link, &frames));
            assert_eq!(
                got,
                vec![Some((17, 1234, 53)); frames.len()],
                "link type {link}"
            );
        }
    }

    #[test]
    fn sll_keeps_the_senders_mac() {
        let mut f = vec![0, 0, 0, 1, 0, 6, 2, 0x42, 0, 0, 0, 7, 0, 0, 0x08, 0];
        f.extend_from_slice(&ipv4_udp());
        let eth = to_ethernet(&capture(LINKTYPE_SLL, &[f]))
            .unwrap()
            .unwrap()
            .capture;
        let r = Records::new(&eth).unwrap().next().unwrap().unwrap();
        assert_eq!(&eth[r.offset + 6..r.offset + 12], &[2, 0x42, 0, 0, 0, 7]);
    }

    #[test]
    fn a_record_shorter_than_its_link_header_is_kept_and_counted_truncated() {
        let cap = capture(LINKTYPE_SLL, &[vec![0; 10], ipv4_udp()]);
        let eth = to_ethernet(&cap).unwrap().unwrap().capture;
        let recs: Vec<_> = Records::new(&eth).unwrap().map(Result::unwrap).collect();
        assert_eq!(recs.len(), 2, "nothing is lost");
        let short = &eth[recs[0].offset..recs[0].offset + recs[0].caplen as usize];
        assert_eq!(
            decode(short).unwrap_err(),
            crate::decode::DecodeError::EthernetTruncated
        );
    }

    #[test]
    fn an_ethernet_capture_is_not_copied() {
        let mut frame = vec![0u8; 12];
        frame.extend_from_slice(&0x0800u16.to_be_bytes());
        frame.extend_from_slice(&ipv4_udp());
        assert!(to_ethernet(&capture(LINKTYPE_ETHERNET, &[frame]))
            .unwrap()
            .is_none());
    }

    #[test]
    fn a_cut_capture_keeps_its_whole_records_and_its_error() {
        let cap = capture(LINKTYPE_RAW, &[ipv4_udp(), ipv4_udp()]);
        let r = to_ethernet(&cap[..cap.len() - 5]).unwrap().unwrap();
        assert_eq!(Records::new(&r.capture).unwrap().count(), 1);
        assert!(matches!(
            r.cut_short,
            Some(CaptureError::Truncated { record: 2, .. })
        ));
    }
}
