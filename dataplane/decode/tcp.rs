//! TCP headers and their options. `new_checked` validates the data offset and
//! walks the option list once, keeping what flow tracking needs: the
//! window-scale shift (to check sequence numbers against the window) and
//! whether the segment offers TCP Fast Open (the only case a host takes
//! data on a SYN). A malformed option list is read as Linux reads it: up to
//! the first option whose length does not add up (0, 1, past the header, a
//! window-scale option not 3 long), the rest ignored and the segment
//! accepted. That is flagged, never a reason to skip the payload.

use super::{be16, be32, DecodeError, Field};

const SRC_PORT: Field = 0..2;
const DST_PORT: Field = 2..4;
const SEQ: Field = 4..8;
const ACK: Field = 8..12;
const OFFSET: usize = 12;
const FLAGS: usize = 13;
const WINDOW: Field = 14..16;
const CHECKSUM: Field = 16..18;
const URGENT: Field = 18..20;
pub const MIN_HEADER_LEN: usize = 20;

pub const FIN: u8 = 0x01;
pub const SYN: u8 = 0x02;
pub const RST: u8 = 0x04;
pub const PSH: u8 = 0x08;
pub const ACK_FLAG: u8 = 0x10;
pub const URG: u8 = 0x20;
pub const ECE: u8 = 0x40;
pub const CWR: u8 = 0x80;

const OPT_EOL: u8 = 0;
const OPT_NOP: u8 = 1;
const OPT_WSCALE: u8 = 3;
/// Timestamps (RFC 7323): TSval then TSecr.
const OPT_TIMESTAMP: u8 = 8;
/// TCP Fast Open (RFC 7413), and the experimental option it started as.
const OPT_TFO: u8 = 34;
const OPT_EXPERIMENTAL: u8 = 254;
const TFO_MAGIC: [u8; 2] = [0xf9, 0x89];

/// What the option list says that the tracker needs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    pub wscale: Option<u8>,
    pub tfo: bool,
    /// The timestamp option: (TSval, TSecr).
    pub ts: Option<(u32, u32)>,
    /// An option's length did not add up: the list was read up to it.
    pub invalid: bool,
}

#[derive(Debug, Clone, Copy)]
pub struct TcpSegment<'a> {
    buf: &'a [u8],
    opts: Options,
}

impl<'a> TcpSegment<'a> {
    pub fn new_checked(buf: &'a [u8]) -> Result<Self, DecodeError> {
        if buf.len() < MIN_HEADER_LEN {
            return Err(DecodeError::TcpTruncated);
        }
        let header_len = usize::from(buf[OFFSET] >> 4) * 4;
        if header_len < MIN_HEADER_LEN {
            return Err(DecodeError::TcpBadHeaderLen);
        }
        if header_len > buf.len() {
            return Err(DecodeError::TcpTruncated);
        }
        let opts = parse_options(&buf[MIN_HEADER_LEN..header_len]);
        Ok(TcpSegment { buf, opts })
    }

    pub fn src_port(&self) -> u16 {
        be16(&self.buf[SRC_PORT])
    }

    pub fn dst_port(&self) -> u16 {
        be16(&self.buf[DST_PORT])
    }

    pub fn seq(&self) -> u32 {
        be32(&self.buf[SEQ])
    }

    pub fn ack(&self) -> u32 {
        be32(&self.buf[ACK])
    }

    pub fn header_len(&self) -> usize {
        usize::from(self.buf[OFFSET] >> 4) * 4
    }

    pub fn flags(&self) -> u8 {
        self.buf[FLAGS]
    }

    pub fn window(&self) -> u16 {
        be16(&self.buf[WINDOW])
    }

    pub fn checksum(&self) -> u16 {
        be16(&self.buf[CHECKSUM])
    }

    pub fn urgent_pointer(&self) -> u16 {
        be16(&self.buf[URGENT])
    }

    /// The window-scale shift from the options, if the segment carries one
    /// (clamped to 14 as RFC 7323 says).
    pub fn wscale(&self) -> Option<u8> {
        self.opts.wscale
    }

    pub fn options(&self) -> Options {
        self.opts
    }

    pub fn payload(&self) -> &'a [u8] {
        &self.buf[self.header_len()..]
    }
}

fn parse_options(mut opts: &[u8]) -> Options {
    let mut out = Options::default();
    while let Some(&kind) = opts.first() {
        match kind {
            OPT_EOL => break,
            OPT_NOP => opts = &opts[1..],
            _ => {
                let len = opts.get(1).map_or(0, |l| usize::from(*l));
                if len < 2 || len > opts.len() {
                    // Linux stops reading here and keeps the segment.
                    out.invalid = true;
                    break;
                }
                match kind {
                    // A window-scale option of another length is ignored.
                    OPT_WSCALE if len == 3 => out.wscale = Some(opts[2].min(14)),
                    OPT_WSCALE => out.invalid = true,
                    OPT_TFO => out.tfo = true,
                    OPT_TIMESTAMP if len == 10 => {
                        out.ts = Some((be32(&opts[2..6]), be32(&opts[6..10])))
                    }
                    OPT_EXPERIMENTAL if opts.get(2..4) == Some(&TFO_MAGIC[..]) => out.tfo = true,
                    _ => {}
                }
                opts = &opts[len..];
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    // 40000 -> 443, seq 1, ack 0, SYN, window 64240, options: MSS 1460, NOP,
    // wscale 7, SACK-permitted, EOL; then no payload.
    static SEGMENT_BYTES: [u8; 32] = [
        0x9c, 0x40, 0x01, 0xbb, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x80, 0x02, 0xfa,
        0xf0, 0x12, 0x34, 0x00, 0x00, 0x02, 0x04, 0x05, 0xb4, 0x01, 0x03, 0x03, 0x07, 0x04, 0x02,
        0x00, 0x00,
    ];

    #[test]
    fn parses_header_and_options() {
        let s = TcpSegment::new_checked(&SEGMENT_BYTES).unwrap();
        assert_eq!(s.src_port(), 40000);
        assert_eq!(s.dst_port(), 443);
        assert_eq!(s.seq(), 1);
        assert_eq!(s.ack(), 0);
        assert_eq!(s.header_len(), 32);
        assert_eq!(s.flags(), SYN);
        assert_eq!(s.window(), 64240);
        assert_eq!(s.checksum(), 0x1234);
        assert_eq!(s.wscale(), Some(7));
        assert!(s.payload().is_empty());
    }

    #[test]
    fn malformed_segments_are_named() {
        let err = |b: &[u8]| TcpSegment::new_checked(b).unwrap_err();
        assert_eq!(err(&SEGMENT_BYTES[..19]), DecodeError::TcpTruncated);
        let mut b = SEGMENT_BYTES;
        b[12] = 0x40; // data offset 16 bytes
        assert_eq!(err(&b), DecodeError::TcpBadHeaderLen);
        b[12] = 0xf0; // data offset 60 bytes in a 32-byte buffer
        assert_eq!(err(&b), DecodeError::TcpTruncated);
    }

    #[test]
    fn bad_option_lengths_are_read_as_linux_reads_them() {
        let ok = |b: &[u8]| TcpSegment::new_checked(b).unwrap().options();
        let mut b = SEGMENT_BYTES;
        b[21] = 0x20; // MSS option length past the header: nothing after it
        assert_eq!(
            ok(&b),
            Options {
                wscale: None,
                tfo: false,
                ts: None,
                invalid: true
            }
        );
        let mut b = SEGMENT_BYTES;
        b[26] = 0x04; // wscale with length 4: ignored, the walk goes on
        let o = ok(&b);
        assert!(o.invalid && o.wscale.is_none());
        for len in [0u8, 1] {
            let mut b = SEGMENT_BYTES;
            b[21] = len; // MSS option with length 0 or 1
            assert!(ok(&b).invalid, "length {len}");
        }
        assert_eq!(ok(&SEGMENT_BYTES).wscale, Some(7));
        assert!(!ok(&SEGMENT_BYTES).invalid);
    }

    #[test]
    fn timestamps_are_read() {
        let mut b = SEGMENT_BYTES;
        // Replace SACK-permitted + EOL (4 bytes at 28) with two NOPs and
        // the first half of a timestamp option: cut short, not read.
        b[28..32].copy_from_slice(&[1, 1, 8, 10]);
        let o = TcpSegment::new_checked(&b).unwrap().options();
        assert!(o.ts.is_none() && o.invalid);
        let mut long = b[..32].to_vec();
        long.extend_from_slice(&[0, 0, 1, 2, 0xff, 0, 0, 9]);
        long[12] = (long.len() as u8 / 4) << 4;
        let o = TcpSegment::new_checked(&long).unwrap().options();
        assert_eq!(o.ts, Some((0x102, 0xff00_0009)));
        assert!(!o.invalid);
    }

    #[test]
    fn fast_open_is_seen_in_both_forms() {
        let mut b = SEGMENT_BYTES;
        // Replace SACK-permitted + EOL (4 bytes at 28) with a TFO cookie
        // request (kind 34, length 2) and two NOPs.
        b[28..32].copy_from_slice(&[34, 2, 1, 1]);
        assert!(TcpSegment::new_checked(&b).unwrap().options().tfo);
        let mut b = SEGMENT_BYTES;
        b[28..32].copy_from_slice(&[254, 4, 0xf9, 0x89]);
        assert!(TcpSegment::new_checked(&b).unwrap().options().tfo);
        assert!(
            !TcpSegment::new_checked(&SEGMENT_BYTES)
                .unwrap()
                .options()
                .tfo
        );
    }

    #[test]
    fn every_prefix_is_safe() {
        for n in 0..SEGMENT_BYTES.len() {
            let _ = TcpSegment::new_checked(&SEGMENT_BYTES[..n]);
        }
    }
}
