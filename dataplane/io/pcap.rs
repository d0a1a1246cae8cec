//! Capture files: a reader for pcap (both byte orders, micro- and nanosecond
//! timestamps) and pcapng (sections, interfaces with their own timestamp
//! resolution, enhanced, simple and obsolete packet blocks), and writers for
//! both. The reader works over a capture loaded into memory and yields record
//! descriptors (offset, length, timestamp), never copies of the packets. Only
//! Ethernet captures are accepted. A file cut mid-record yields every whole
//! record and then the truncation, so nothing that was captured is lost.
//! Records carry their link type; `linktype` turns captures of the other
//! link types it supports into Ethernet for the pipeline.

use std::fmt;
use std::io::{self, Write};

/// Link type for Ethernet (LINKTYPE_ETHERNET).
pub const LINKTYPE_ETHERNET: u32 = 1;
/// Records longer than this are not packets but corruption.
pub const MAX_RECORD_LEN: usize = 256 * 1024;

const PCAP_MAGIC_US: u32 = 0xa1b2_c3d4;
const PCAP_MAGIC_NS: u32 = 0xa1b2_3c4d;
const PCAPNG_SHB: u32 = 0x0a0d_0d0a;
const PCAPNG_BYTE_ORDER: u32 = 0x1a2b_3c4d;
const PCAPNG_IDB: u32 = 1;
const PCAPNG_OBSOLETE_PB: u32 = 2;
const PCAPNG_SPB: u32 = 3;
const PCAPNG_EPB: u32 = 6;
const PCAPNG_MAX_INTERFACES: usize = 256;

/// What went wrong reading a capture. The caller adds the file name.
#[derive(Debug)]
pub enum CaptureError {
    Io(io::Error),
    TooShort(usize),
    BadMagic(u32),
    LinkType(u32),
    Truncated {
        record: u64,
        offset: usize,
        needed: usize,
        available: usize,
    },
    Corrupt {
        offset: usize,
        what: &'static str,
    },
}

impl fmt::Display for CaptureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CaptureError::Io(e) => write!(f, "cannot read: {e}"),
            CaptureError::TooShort(n) => {
                write!(f, "truncated capture: {n} bytes is too short for a pcap or pcapng header")
            }
            CaptureError::BadMagic(m) => {
                write!(f, "not a pcap or pcapng file (starts with 0x{m:08x})")
            }
            CaptureError::LinkType(t) => write!(
                f,
                "link type {t} ({}) is not supported; Tollgate reads Ethernet, Linux cooked (SLL, SLL2), raw IP and BSD loopback captures",
                linktype_name(*t)
            ),
            CaptureError::Truncated {
                record,
                offset,
                needed,
                available,
            } => write!(
                f,
                "capture cut mid-record: record {record} at byte {offset} needs {needed} bytes, \
                 the file has {available} left; the {} whole records before it were processed",
                record - 1
            ),
            CaptureError::Corrupt { offset, what } => {
                write!(f, "corrupt capture at byte {offset}: {what}")
            }
        }
    }
}

impl std::error::Error for CaptureError {}

impl CaptureError {
    /// The error of a chunk of a file (`io::chunks`) as the file's: its
    /// record counted after `records_before`, its byte `shift` further.
    pub fn in_file(self, records_before: u64, shift: i64) -> CaptureError {
        let at = |o: usize| (o as i64 + shift).max(0) as usize;
        match self {
            CaptureError::Truncated {
                record,
                offset,
                needed,
                available,
            } => CaptureError::Truncated {
                record: record + records_before,
                offset: at(offset),
                needed,
                available,
            },
            CaptureError::Corrupt { offset, what } => CaptureError::Corrupt {
                offset: at(offset),
                what,
            },
            e => e,
        }
    }
}

fn linktype_name(t: u32) -> &'static str {
    match t {
        0 => "BSD loopback",
        101 => "raw IP",
        104 => "Cisco HDLC",
        105 => "802.11",
        113 => "Linux cooked (SLL)",
        127 => "802.11 radiotap",
        228 => "raw IPv4",
        229 => "raw IPv6",
        276 => "Linux cooked v2 (SLL2)",
        _ => "unsupported",
    }
}

/// Where one packet sits in the loaded capture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record {
    /// Nanoseconds since the Unix epoch.
    pub ts_ns: u64,
    /// Byte offset of the packet data in the capture buffer.
    pub offset: usize,
    /// Bytes captured.
    pub caplen: u32,
    /// Bytes on the wire.
    pub origlen: u32,
    /// Link type of the file or pcapng interface it was captured on.
    pub link: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Pcap,
    Pcapng,
}

#[derive(Clone, Copy)]
struct Endian {
    big: bool,
}

impl Endian {
    fn u16(self, b: &[u8]) -> u16 {
        let a = [b[0], b[1]];
        if self.big {
            u16::from_be_bytes(a)
        } else {
            u16::from_le_bytes(a)
        }
    }
    fn u32(self, b: &[u8]) -> u32 {
        let a = [b[0], b[1], b[2], b[3]];
        if self.big {
            u32::from_be_bytes(a)
        } else {
            u32::from_le_bytes(a)
        }
    }
}

/// Timestamp units per second, as a power of 10 or of 2.
#[derive(Clone, Copy)]
enum Resolution {
    Pow10(u32),
    Pow2(u32),
}

impl Resolution {
    fn to_ns(self, ticks: u64) -> u64 {
        match self {
            Resolution::Pow10(n) if n <= 9 => ticks.saturating_mul(10u64.pow(9 - n)),
            Resolution::Pow10(n) => ticks / 10u64.pow((n - 9).min(19)),
            Resolution::Pow2(n) => {
                ((u128::from(ticks) * 1_000_000_000) >> n.min(127)).min(u128::from(u64::MAX)) as u64
            }
        }
    }
}

/// Checks a capture's header: format, byte order and link type. Reads only
/// the first block, so every file of a replay can be checked before any is
/// loaded.
pub fn check_header(head: &[u8]) -> Result<Format, CaptureError> {
    if head.len() < 4 {
        return Err(CaptureError::TooShort(head.len()));
    }
    let magic_le = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
    let magic_be = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
    if magic_le == PCAPNG_SHB {
        if head.len() < 12 {
            return Err(CaptureError::TooShort(head.len()));
        }
        return Ok(Format::Pcapng);
    }
    let is_pcap = [PCAP_MAGIC_US, PCAP_MAGIC_NS].contains(&magic_le)
        || [PCAP_MAGIC_US, PCAP_MAGIC_NS].contains(&magic_be);
    if !is_pcap {
        return Err(CaptureError::BadMagic(magic_be));
    }
    if head.len() < 24 {
        return Err(CaptureError::TooShort(head.len()));
    }
    let e = Endian {
        big: [PCAP_MAGIC_US, PCAP_MAGIC_NS].contains(&magic_be),
    };
    // The link type's upper bits may carry FCS information (pcap-linktype(7)).
    let linktype = e.u32(&head[20..24]) & 0x0fff_ffff;
    if !super::linktype::supported(linktype) {
        return Err(CaptureError::LinkType(linktype));
    }
    Ok(Format::Pcap)
}

/// Iterates the records of a capture held in memory. Yields `Err` at most
/// once, after the last whole record, and then stops.
pub struct Records<'a> {
    buf: &'a [u8],
    pos: usize,
    count: u64,
    done: bool,
    endian: Endian,
    kind: Kind,
}

enum Kind {
    Pcap {
        res: Resolution,
        link: u32,
    },
    Pcapng {
        /// Timestamp resolution and link type per interface of the
        /// current section.
        ifaces: Box<[(Resolution, u32); PCAPNG_MAX_INTERFACES]>,
        n_ifaces: usize,
        last_ts: u64,
    },
}

impl<'a> Records<'a> {
    pub fn new(buf: &'a [u8]) -> Result<Self, CaptureError> {
        let format = check_header(buf)?;
        match format {
            Format::Pcap => {
                let magic_be = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
                let big = magic_be == PCAP_MAGIC_US || magic_be == PCAP_MAGIC_NS;
                let magic = if big {
                    magic_be
                } else {
                    u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]])
                };
                let res = if magic == PCAP_MAGIC_NS {
                    Resolution::Pow10(9)
                } else {
                    Resolution::Pow10(6)
                };
                let endian = Endian { big };
                let link = endian.u32(&buf[20..24]) & 0x0fff_ffff;
                Ok(Records {
                    buf,
                    pos: 24,
                    count: 0,
                    done: false,
                    endian,
                    kind: Kind::Pcap { res, link },
                })
            }
            Format::Pcapng => Ok(Records {
                buf,
                pos: 0,
                count: 0,
                done: false,
                endian: Endian { big: false },
                kind: Kind::Pcapng {
                    ifaces: Box::new(
                        [(Resolution::Pow10(6), LINKTYPE_ETHERNET); PCAPNG_MAX_INTERFACES],
                    ),
                    n_ifaces: 0,
                    last_ts: 0,
                },
            }),
        }
    }

    /// Whole records yielded so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Bytes of the capture consumed so far (for progress reports).
    pub fn position(&self) -> usize {
        self.pos
    }

    fn truncated(&mut self, needed: usize) -> Option<Result<Record, CaptureError>> {
        self.done = true;
        Some(Err(CaptureError::Truncated {
            record: self.count + 1,
            offset: self.pos,
            needed,
            available: self.buf.len() - self.pos,
        }))
    }

    fn corrupt(&mut self, what: &'static str) -> Option<Result<Record, CaptureError>> {
        self.done = true;
        Some(Err(CaptureError::Corrupt {
            offset: self.pos,
            what,
        }))
    }

    fn next_pcap(&mut self, res: Resolution, link: u32) -> Option<Result<Record, CaptureError>> {
        let rest = &self.buf[self.pos..];
        if rest.is_empty() {
            return None;
        }
        if rest.len() < 16 {
            return self.truncated(16);
        }
        let e = self.endian;
        let sec = u64::from(e.u32(&rest[0..4]));
        let frac = u64::from(e.u32(&rest[4..8]));
        let caplen = e.u32(&rest[8..12]) as usize;
        let origlen = e.u32(&rest[12..16]);
        if caplen > MAX_RECORD_LEN {
            return self.corrupt("record length over 256 KiB");
        }
        if rest.len() < 16 + caplen {
            return self.truncated(16 + caplen);
        }
        let ts_ns = sec
            .saturating_mul(1_000_000_000)
            .saturating_add(res.to_ns(frac));
        let rec = Record {
            ts_ns,
            offset: self.pos + 16,
            caplen: caplen as u32,
            origlen,
            link,
        };
        self.pos += 16 + caplen;
        self.count += 1;
        Some(Ok(rec))
    }

    fn next_pcapng(&mut self) -> Option<Result<Record, CaptureError>> {
        loop {
            let rest = &self.buf[self.pos..];
            if rest.is_empty() {
                return None;
            }
            if rest.len() < 12 {
                return self.truncated(12);
            }
            let block_type = self.endian.u32(&rest[0..4]);
            if block_type == PCAPNG_SHB {
                // A new section may switch byte order; its interfaces start over.
                let bom = &rest[8..12];
                self.endian.big = match u32::from_le_bytes([bom[0], bom[1], bom[2], bom[3]]) {
                    PCAPNG_BYTE_ORDER => false,
                    0x4d3c_2b1a => true,
                    _ => return self.corrupt("bad pcapng byte-order magic"),
                };
                if let Kind::Pcapng { n_ifaces, .. } = &mut self.kind {
                    *n_ifaces = 0;
                }
            }
            let e = self.endian;
            let block_len = e.u32(&rest[4..8]) as usize;
            if block_len < 12 || block_len % 4 != 0 {
                return self.corrupt("bad pcapng block length");
            }
            if block_len > MAX_RECORD_LEN + 64 && block_type != PCAPNG_SHB {
                return self.corrupt("pcapng block over 256 KiB");
            }
            if rest.len() < block_len {
                return self.truncated(block_len);
            }
            let body = &rest[8..block_len - 4];
            let block_start = self.pos;
            let Kind::Pcapng {
                ifaces,
                n_ifaces,
                last_ts,
            } = &mut self.kind
            else {
                return None;
            };
            let rec = match block_type {
                PCAPNG_IDB => {
                    if body.len() < 8 {
                        return self.corrupt("short interface description block");
                    }
                    let linktype = u32::from(e.u16(&body[0..2]));
                    if !super::linktype::supported(linktype) {
                        self.done = true;
                        return Some(Err(CaptureError::LinkType(linktype)));
                    }
                    if *n_ifaces == PCAPNG_MAX_INTERFACES {
                        return self.corrupt("more than 256 interfaces in one section");
                    }
                    ifaces[*n_ifaces] = (idb_resolution(e, &body[8..]), linktype);
                    *n_ifaces += 1;
                    None
                }
                PCAPNG_EPB | PCAPNG_OBSOLETE_PB => {
                    if body.len() < 20 {
                        return self.corrupt("short packet block");
                    }
                    let iface = if block_type == PCAPNG_EPB {
                        e.u32(&body[0..4]) as usize
                    } else {
                        usize::from(e.u16(&body[0..2]))
                    };
                    if iface >= *n_ifaces {
                        return self.corrupt("packet block names an undeclared interface");
                    }
                    let ticks =
                        (u64::from(e.u32(&body[4..8])) << 32) | u64::from(e.u32(&body[8..12]));
                    let caplen = e.u32(&body[12..16]) as usize;
                    let origlen = e.u32(&body[16..20]);
                    if caplen > body.len() - 20 {
                        return self.corrupt("packet block's captured length exceeds the block");
                    }
                    let (res, link) = ifaces[iface];
                    let ts_ns = res.to_ns(ticks);
                    *last_ts = ts_ns;
                    Some(Record {
                        ts_ns,
                        offset: block_start + 28,
                        caplen: caplen as u32,
                        origlen,
                        link,
                    })
                }
                PCAPNG_SPB => {
                    if body.len() < 4 {
                        return self.corrupt("short simple packet block");
                    }
                    if *n_ifaces == 0 {
                        return self.corrupt("packet block names an undeclared interface");
                    }
                    let origlen = e.u32(&body[0..4]);
                    let caplen = (origlen as usize).min(body.len() - 4);
                    // A simple packet block has no timestamp: it takes the
                    // previous packet's.
                    Some(Record {
                        ts_ns: *last_ts,
                        offset: block_start + 12,
                        caplen: caplen as u32,
                        origlen,
                        // The section's first interface.
                        link: ifaces[0].1,
                    })
                }
                _ => None,
            };
            self.pos += block_len;
            if let Some(r) = rec {
                self.count += 1;
                return Some(Ok(r));
            }
        }
    }
}

/// Reads the if_tsresol option (code 9) of an interface description block.
fn idb_resolution(e: Endian, mut opts: &[u8]) -> Resolution {
    while opts.len() >= 4 {
        let code = e.u16(&opts[0..2]);
        let len = usize::from(e.u16(&opts[2..4]));
        if code == 0 {
            break;
        }
        let padded = (len + 3) & !3;
        if opts.len() < 4 + padded {
            break;
        }
        if code == 9 && len == 1 {
            let v = opts[4];
            return if v & 0x80 != 0 {
                Resolution::Pow2(u32::from(v & 0x7f))
            } else {
                Resolution::Pow10(u32::from(v))
            };
        }
        opts = &opts[4 + padded..];
    }
    Resolution::Pow10(6)
}

impl<'a> Iterator for Records<'a> {
    type Item = Result<Record, CaptureError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.kind {
            Kind::Pcap { res, link } => self.next_pcap(res, link),
            Kind::Pcapng { .. } => self.next_pcapng(),
        }
    }
}

/// Writes a classic pcap file (Ethernet link type).
pub struct PcapWriter<W: Write> {
    out: W,
    nanos: bool,
    big: bool,
}

impl<W: Write> PcapWriter<W> {
    /// Little-endian, microsecond timestamps: what every tool reads.
    pub fn new(out: W) -> io::Result<Self> {
        Self::with_format(out, false, false)
    }

    pub fn with_format(out: W, nanos: bool, big_endian: bool) -> io::Result<Self> {
        Self::with_header(out, nanos, big_endian, LINKTYPE_ETHERNET)
    }

    /// Little-endian, nanosecond timestamps, frames of link type `link`.
    pub fn with_link(out: W, link: u32) -> io::Result<Self> {
        Self::with_header(out, true, false, link)
    }

    fn with_header(mut out: W, nanos: bool, big_endian: bool, link: u32) -> io::Result<Self> {
        let magic = if nanos { PCAP_MAGIC_NS } else { PCAP_MAGIC_US };
        let fields: [u32; 5] = [0, 0, MAX_RECORD_LEN as u32, link, 0];
        let w32 = |v: u32| {
            if big_endian {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let w16 = |v: u16| {
            if big_endian {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        out.write_all(&w32(magic))?;
        out.write_all(&w16(2))?;
        out.write_all(&w16(4))?;
        out.write_all(&w32(fields[0]))?; // thiszone
        out.write_all(&w32(fields[1]))?; // sigfigs
        out.write_all(&w32(fields[2]))?; // snaplen
        out.write_all(&w32(fields[3]))?; // link type
        Ok(PcapWriter {
            out,
            nanos,
            big: big_endian,
        })
    }

    pub fn write(&mut self, ts_ns: u64, data: &[u8]) -> io::Result<()> {
        let sec = (ts_ns / 1_000_000_000) as u32;
        let sub = ts_ns % 1_000_000_000;
        let frac = if self.nanos { sub } else { sub / 1000 } as u32;
        let len = data.len() as u32;
        for v in [sec, frac, len, len] {
            let b = if self.big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            };
            self.out.write_all(&b)?;
        }
        self.out.write_all(data)
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

/// Writes a pcapng file: one section, one Ethernet interface with nanosecond
/// timestamps, enhanced packet blocks.
pub struct PcapngWriter<W: Write> {
    out: W,
}

impl<W: Write> PcapngWriter<W> {
    pub fn new(mut out: W) -> io::Result<Self> {
        // Section header: type, length 28, byte-order magic, version 1.0,
        // section length unknown (-1), length again.
        let mut shb = Vec::with_capacity(28);
        shb.extend_from_slice(&PCAPNG_SHB.to_le_bytes());
        shb.extend_from_slice(&28u32.to_le_bytes());
        shb.extend_from_slice(&PCAPNG_BYTE_ORDER.to_le_bytes());
        shb.extend_from_slice(&1u16.to_le_bytes());
        shb.extend_from_slice(&0u16.to_le_bytes());
        shb.extend_from_slice(&u64::MAX.to_le_bytes());
        shb.extend_from_slice(&28u32.to_le_bytes());
        out.write_all(&shb)?;
        // Interface: Ethernet, snaplen, if_tsresol = 9, end of options.
        let mut idb = Vec::with_capacity(32);
        idb.extend_from_slice(&PCAPNG_IDB.to_le_bytes());
        idb.extend_from_slice(&32u32.to_le_bytes());
        idb.extend_from_slice(&(LINKTYPE_ETHERNET as u16).to_le_bytes());
        idb.extend_from_slice(&0u16.to_le_bytes());
        idb.extend_from_slice(&(MAX_RECORD_LEN as u32).to_le_bytes());
        idb.extend_from_slice(&9u16.to_le_bytes());
        idb.extend_from_slice(&1u16.to_le_bytes());
        idb.extend_from_slice(&[9, 0, 0, 0]);
        idb.extend_from_slice(&0u32.to_le_bytes());
        idb.extend_from_slice(&32u32.to_le_bytes());
        out.write_all(&idb)?;
        Ok(PcapngWriter { out })
    }

    pub fn write(&mut self, ts_ns: u64, data: &[u8]) -> io::Result<()> {
        let padded = (data.len() + 3) & !3;
        let block_len = (32 + padded) as u32;
        let mut hdr = Vec::with_capacity(28);
        hdr.extend_from_slice(&PCAPNG_EPB.to_le_bytes());
        hdr.extend_from_slice(&block_len.to_le_bytes());
        hdr.extend_from_slice(&0u32.to_le_bytes());
        hdr.extend_from_slice(&((ts_ns >> 32) as u32).to_le_bytes());
        hdr.extend_from_slice(&(ts_ns as u32).to_le_bytes());
        hdr.extend_from_slice(&(data.len() as u32).to_le_bytes());
        hdr.extend_from_slice(&(data.len() as u32).to_le_bytes());
        self.out.write_all(&hdr)?;
        self.out.write_all(data)?;
        self.out.write_all(&[0u8; 3][..padded - data.len()])?;
        self.out.write_all(&block_len.to_le_bytes())
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames() -> Vec<(u64, Vec<u8>)> {
        (0..5u8)
            .map(|i| {
                (
                    1_700_000_000_123_456_000 + u64::from(i) * 1_000_000,
                    vec![i; 60 + usize::from(i)],
                )
            })
            .collect()
    }

    fn pcap_of(frames: &[(u64, Vec<u8>)], nanos: bool, big: bool) -> Vec<u8> {
        let mut w = PcapWriter::with_format(Vec::new(), nanos, big).unwrap();
        for (ts, f) in frames {
            w.write(*ts, f).unwrap();
        }
        w.into_inner()
    }

    fn pcapng_of(frames: &[(u64, Vec<u8>)]) -> Vec<u8> {
        let mut w = PcapngWriter::new(Vec::new()).unwrap();
        for (ts, f) in frames {
            w.write(*ts, f).unwrap();
        }
        w.into_inner()
    }

    fn read_all(buf: &[u8]) -> (Vec<(u64, Vec<u8>)>, Option<CaptureError>) {
        let mut out = Vec::new();
        let mut err = None;
        for r in Records::new(buf).unwrap() {
            match r {
                Ok(r) => out.push((
                    r.ts_ns,
                    buf[r.offset..r.offset + r.caplen as usize].to_vec(),
                )),
                Err(e) => err = Some(e),
            }
        }
        (out, err)
    }

    #[test]
    fn pcap_round_trips_in_every_flavour() {
        for nanos in [false, true] {
            for big in [false, true] {
                let buf = pcap_of(&frames(), nanos, big);
                assert_eq!(check_header(&buf).unwrap(), Format::Pcap);
                let (got, err) = read_all(&buf);
                assert!(err.is_none());
                assert_eq!(got, frames(), "nanos={nanos} big={big}");
            }
        }
    }

    #[test]
    fn pcapng_round_trips() {
        let buf = pcapng_of(&frames());
        assert_eq!(check_header(&buf).unwrap(), Format::Pcapng);
        let (got, err) = read_all(&buf);
        assert!(err.is_none());
        assert_eq!(got, frames());
    }

    #[test]
    fn cut_mid_record_yields_whole_records_then_the_truncation() {
        for ng in [false, true] {
            let buf = if ng {
                pcapng_of(&frames())
            } else {
                pcap_of(&frames(), false, false)
            };
            let cut = &buf[..buf.len() - 10];
            let (got, err) = read_all(cut);
            assert_eq!(got.len(), 4, "ng={ng}");
            match err {
                Some(CaptureError::Truncated { record, .. }) => assert_eq!(record, 5),
                other => panic!("expected truncation, got {other:?}"),
            }
        }
    }

    #[test]
    fn header_errors_are_named() {
        assert!(matches!(
            check_header(&[0xd4, 0xc3]),
            Err(CaptureError::TooShort(2))
        ));
        assert!(matches!(
            check_header(b"GIF89a.........................."),
            Err(CaptureError::BadMagic(_))
        ));
        let mut w = PcapWriter::new(Vec::new()).unwrap();
        w.write(0, &[0; 60]).unwrap();
        let mut buf = w.into_inner();
        buf[20] = 105; // 802.11
        let err = check_header(&buf).unwrap_err();
        assert!(matches!(err, CaptureError::LinkType(105)));
        assert!(err.to_string().contains("802.11"));
        buf[20] = 113; // Linux cooked capture: read, rewritten later
        assert_eq!(check_header(&buf).unwrap(), Format::Pcap);
        assert!(matches!(
            check_header(&buf[..20]),
            Err(CaptureError::TooShort(20))
        ));
    }

    #[test]
    fn pcapng_interfaces_carry_their_link_type() {
        let mut w = PcapngWriter::new(Vec::new()).unwrap();
        w.write(0, &[0; 60]).unwrap();
        let mut buf = w.into_inner();
        buf[28 + 8] = 101; // raw IP
        let r = Records::new(&buf).unwrap().next().unwrap().unwrap();
        assert_eq!(r.link, 101);
        buf[28 + 8] = 105; // 802.11: not read
        let (got, err) = read_all(&buf);
        assert!(got.is_empty());
        assert!(matches!(err, Some(CaptureError::LinkType(105))));
    }

    #[test]
    fn corrupt_lengths_stop_the_reader() {
        let mut w = PcapWriter::new(Vec::new()).unwrap();
        w.write(0, &[0; 60]).unwrap();
        let mut buf = w.into_inner();
        buf[24 + 8..24 + 12].copy_from_slice(&(1u32 << 30).to_le_bytes());
        let (got, err) = read_all(&buf);
        assert!(got.is_empty());
        assert!(matches!(err, Some(CaptureError::Corrupt { .. })));
    }

    #[test]
    fn resolutions_convert_to_nanoseconds() {
        assert_eq!(Resolution::Pow10(6).to_ns(1_500_000), 1_500_000_000);
        assert_eq!(Resolution::Pow10(9).to_ns(42), 42);
        assert_eq!(Resolution::Pow10(12).to_ns(5_000), 5);
        assert_eq!(Resolution::Pow2(10).to_ns(1024), 1_000_000_000);
    }
}
