//! A capture file read in chunks of whole records, so a replay holds a
//! bounded window of it however large the file is (a 50 GB capture on a
//! 24 GiB box). Each chunk is itself a valid capture: the file's preamble
//! (a pcap's global header; a pcapng's section header and the interface
//! blocks seen so far) followed by as many whole records as fit, so
//! `Records` and `to_ethernet` read it as they read a whole file. Only the
//! record framing is walked here (lengths); records are parsed there.

use super::pcap::{check_header, CaptureError, Format, MAX_RECORD_LEN};
use std::io::Read;

const PCAPNG_SHB: u32 = 0x0a0d_0d0a;
const PCAPNG_IDB: u32 = 1;

/// One chunk: a capture of whole records (the file's last chunk also
/// carries a cut record at its end, for `Records` to report).
#[derive(Debug)]
pub struct Chunk {
    pub buf: Vec<u8>,
    /// The preamble's length: records start there.
    pub preamble: usize,
    /// Where in the file the bytes after the preamble start.
    pub file_offset: u64,
}

impl Chunk {
    /// A position in the chunk as a position in the file.
    pub fn file_pos(&self, chunk_pos: usize) -> u64 {
        self.file_offset + chunk_pos.saturating_sub(self.preamble) as u64
    }
}

/// Reads a capture in chunks of about `size` bytes of records. Each
/// chunk's bytes are read from the file straight into it; only the
/// preamble and the record cut at its end are copied.
pub struct ChunkReader<R: Read> {
    src: R,
    size: usize,
    format: Format,
    big: bool,
    /// What every chunk starts with.
    preamble: Vec<u8>,
    /// Bytes read after the last chunk's cut (they start at a record).
    tail: Vec<u8>,
    /// The file offset of `tail[0]`.
    tail_offset: u64,
    eof: bool,
}

impl<R: Read> ChunkReader<R> {
    /// Reads the header; `size` is the records' bytes per chunk (at least
    /// two records' worth).
    pub fn new(mut src: R, size: usize) -> Result<Self, CaptureError> {
        let size = size.max(2 * MAX_RECORD_LEN);
        let mut head = Vec::with_capacity(64);
        (&mut src)
            .take(64)
            .read_to_end(&mut head)
            .map_err(CaptureError::Io)?;
        let format = check_header(&head)?;
        let mut r = ChunkReader {
            src,
            size,
            format,
            big: false,
            preamble: Vec::new(),
            tail: head,
            tail_offset: 0,
            eof: false,
        };
        if format == Format::Pcap {
            let magic_be = u32::from_be_bytes([r.tail[0], r.tail[1], r.tail[2], r.tail[3]]);
            r.big = magic_be == 0xa1b2_c3d4 || magic_be == 0xa1b2_3c4d;
            r.preamble = r.tail[..24].to_vec();
            r.tail.drain(..24);
            r.tail_offset = 24;
        }
        Ok(r)
    }

    fn u32_of(big: bool, b: &[u8]) -> u32 {
        let a = [b[0], b[1], b[2], b[3]];
        if big {
            u32::from_be_bytes(a)
        } else {
            u32::from_le_bytes(a)
        }
    }

    /// Appends up to `n` bytes of the file to `buf`.
    fn read_into(&mut self, buf: &mut Vec<u8>, n: usize) -> Result<(), CaptureError> {
        let want = buf.len() + n;
        while buf.len() < want && !self.eof {
            let left = (want - buf.len()) as u64;
            match (&mut self.src).take(left).read_to_end(buf) {
                Ok(0) => self.eof = true,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(CaptureError::Io(e)),
            }
        }
        Ok(())
    }

    /// The length of the record (or pcapng block) at `b`, if its header
    /// is there; None when the bytes do not say (too few, or a length no
    /// record has: `Records` reports those).
    fn record_len(&mut self, b: &[u8]) -> Option<usize> {
        match self.format {
            Format::Pcap => {
                let caplen = Self::u32_of(self.big, b.get(8..12)?) as usize;
                (caplen <= MAX_RECORD_LEN).then_some(16 + caplen)
            }
            Format::Pcapng => {
                let kind = u32::from_le_bytes(b.get(0..4)?.try_into().ok()?);
                if kind == PCAPNG_SHB {
                    // A section sets the byte order of what follows.
                    let bom = u32::from_le_bytes(b.get(8..12)?.try_into().ok()?);
                    self.big = bom != 0x1a2b_3c4d;
                    let len = Self::u32_of(self.big, b.get(4..8)?) as usize;
                    return (len >= 12 && len % 4 == 0 && len <= 1 << 20).then_some(len);
                }
                let len = Self::u32_of(self.big, b.get(4..8)?) as usize;
                (len >= 12 && len % 4 == 0 && len <= MAX_RECORD_LEN + 64).then_some(len)
            }
        }
    }

    /// The next chunk, None once the file is done.
    pub fn next_chunk(&mut self) -> Result<Option<Chunk>, CaptureError> {
        self.next_chunk_in(Vec::new())
    }

    /// The next chunk, in `buf`'s memory (a buffer a chunk had before: no
    /// allocation, no page to fault in).
    pub fn next_chunk_in(&mut self, mut buf: Vec<u8>) -> Result<Option<Chunk>, CaptureError> {
        let start = self.preamble.len();
        buf.clear();
        buf.reserve(start + self.size + MAX_RECORD_LEN + 64);
        buf.extend_from_slice(&self.preamble);
        buf.extend_from_slice(&self.tail);
        let file_offset = self.tail_offset;
        let carried = self.tail.len();
        self.tail.clear();
        self.read_into(&mut buf, self.size.saturating_sub(carried))?;
        if buf.len() == start {
            return Ok(None);
        }
        // Whole records; pcapng section and interface blocks join the
        // preamble of the chunks after. Where the framing cannot go on (a
        // record cut at the end, a length no record has), the rest goes
        // along for `Records` to report, and the file ends there.
        let mut at = start;
        let mut preamble_next: Option<Vec<u8>> = None;
        let mut stuck = false;
        let header = match self.format {
            Format::Pcap => 16,
            Format::Pcapng => 12,
        };
        // A record (or its header) cut by the end of what was read is
        // finished if this chunk is still short, else left for the next; at
        // the end of the file it goes along, cut.
        let whole = |r: &mut Self, buf: &mut Vec<u8>, at: usize, need: usize| {
            if at + need > buf.len() && at - start < r.size / 2 {
                r.read_into(buf, at + need - buf.len())?;
            }
            Ok::<bool, CaptureError>(at + need <= buf.len())
        };
        while at < buf.len() {
            if !whole(self, &mut buf, at, header)? {
                stuck = self.eof;
                break;
            }
            let Some(len) = self.record_len(&buf[at..]) else {
                stuck = true;
                break;
            };
            if !whole(self, &mut buf, at, len)? {
                stuck = self.eof;
                break;
            }
            if self.format == Format::Pcapng {
                let kind = Self::u32_of(self.big, &buf[at..at + 4]);
                let block = &buf[at..at + len];
                let p = preamble_next.get_or_insert_with(|| self.preamble.clone());
                match kind {
                    PCAPNG_SHB => {
                        p.clear();
                        p.extend_from_slice(block);
                    }
                    PCAPNG_IDB => p.extend_from_slice(block),
                    _ => {}
                }
            }
            at += len;
        }
        if stuck {
            self.eof = true;
        } else {
            self.tail.extend_from_slice(&buf[at..]);
            buf.truncate(at);
        }
        self.tail_offset = file_offset + (buf.len() - start) as u64;
        if let Some(p) = preamble_next {
            self.preamble = p;
        }
        Ok(Some(Chunk {
            buf,
            preamble: start,
            file_offset,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::pcap::{PcapWriter, PcapngWriter, Records};

    fn frames(n: usize) -> Vec<Vec<u8>> {
        (0..n)
            .map(|i| vec![(i % 251) as u8; 60 + i % 1400])
            .collect()
    }

    /// Every record of a file read in chunks of `size`: (ts, bytes), the
    /// errors, and how many chunks.
    type ReadAll = (Vec<(u64, Vec<u8>)>, Vec<String>, usize);

    fn read_all(file: impl Read, size: usize) -> ReadAll {
        let mut r = ChunkReader::new(file, size).unwrap();
        let (mut out, mut errs, mut chunks) = (Vec::new(), Vec::new(), 0);
        while let Some(c) = r.next_chunk().unwrap() {
            chunks += 1;
            for rec in Records::new(&c.buf).unwrap() {
                match rec {
                    Ok(rec) => out.push((
                        rec.ts_ns,
                        c.buf[rec.offset..rec.offset + rec.caplen as usize].to_vec(),
                    )),
                    Err(e) => errs.push(e.to_string()),
                }
            }
        }
        (out, errs, chunks)
    }

    fn pcap(fs: &[Vec<u8>]) -> Vec<u8> {
        let mut w = PcapWriter::new(Vec::new()).unwrap();
        for (i, f) in fs.iter().enumerate() {
            w.write(i as u64 * 1000, f).unwrap();
        }
        w.into_inner()
    }

    #[test]
    fn pcap_in_chunks_gives_every_record_once_in_order() {
        let fs = frames(3000);
        let file = pcap(&fs);
        let (got, errs, chunks) = read_all(&file[..], 0);
        assert!(errs.is_empty(), "{errs:?}");
        assert!(chunks > 2, "{chunks} chunks");
        assert_eq!(got.len(), fs.len());
        assert!(got.iter().zip(&fs).all(|(g, f)| g.1 == *f));
        assert!(got.windows(2).all(|w| w[0].0 < w[1].0));
        // A record cut at the end is reported, after every whole one.
        let (got, errs, _) = read_all(&file[..file.len() - 10], 0);
        assert_eq!(got.len(), fs.len() - 1);
        assert_eq!(errs.len(), 1, "{errs:?}");
    }

    /// A file that gives at most `step` bytes per read.
    struct Dribble<'a> {
        b: &'a [u8],
        step: usize,
    }

    impl Read for Dribble<'_> {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            let n = self.b.len().min(self.step).min(out.len());
            out[..n].copy_from_slice(&self.b[..n]);
            self.b = &self.b[n..];
            Ok(n)
        }
    }

    #[test]
    fn a_chunk_end_inside_a_record_header_loses_nothing() {
        let fs = frames(2000);
        let file = pcap(&fs);
        // A chunk that ends 1 to 15 bytes into a record's header.
        let mut start = 0;
        let starts: Vec<usize> = fs
            .iter()
            .map(|f| {
                let s = start;
                start += 16 + f.len();
                s
            })
            .collect();
        let k = starts
            .iter()
            .position(|&s| s >= 2 * MAX_RECORD_LEN)
            .unwrap();
        for into in 1..16 {
            let (got, errs, _) = read_all(&file[..], starts[k] + into);
            assert!(errs.is_empty(), "{into} bytes into a header: {errs:?}");
            assert_eq!(got.len(), fs.len(), "{into} bytes into a header");
        }
        // Chunk ends at every offset within a few records' headers, and
        // reads of odd sizes.
        for extra in 0..48 {
            for step in [7usize, 4096, 1 << 20] {
                let size = 2 * MAX_RECORD_LEN + extra;
                let (got, errs, _) = read_all(Dribble { b: &file, step }, size);
                assert!(errs.is_empty(), "size {size}, reads of {step}: {errs:?}");
                assert_eq!(got.len(), fs.len(), "size {size}, reads of {step}");
            }
        }
    }

    #[test]
    fn pcapng_chunks_carry_the_interfaces_they_need() {
        let fs = frames(3000);
        let mut w = PcapngWriter::new(Vec::new()).unwrap();
        for (i, f) in fs.iter().enumerate() {
            w.write(i as u64 * 1000, f).unwrap();
        }
        let file = w.into_inner();
        let (got, errs, chunks) = read_all(&file[..], 0);
        assert!(errs.is_empty(), "{errs:?}");
        assert!(chunks > 2);
        assert_eq!(got.len(), fs.len());
        assert!(got.iter().zip(&fs).all(|(g, f)| g.1 == *f));
    }

    #[test]
    fn garbage_is_no_panic() {
        for n in 0..200 {
            let mut b = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0];
            b.extend(std::iter::repeat_n(0u8, 12));
            b.extend_from_slice(&1u32.to_le_bytes());
            b.extend((0..n).map(|i| (i * 37 % 256) as u8));
            let mut r = ChunkReader::new(&b[..], 0).unwrap();
            let mut guard = 0;
            while let Ok(Some(c)) = r.next_chunk() {
                if let Ok(recs) = Records::new(&c.buf) {
                    for _ in recs {}
                }
                guard += 1;
                assert!(guard < 10_000, "no progress");
            }
        }
    }
}
