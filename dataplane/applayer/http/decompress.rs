//! Content-Encoding gzip, x-gzip and deflate, decoded as the body streams
//! in: a gzip member's header is read by hand (its optional fields may
//! straddle segments), the deflate data by miniz_oxide through flate2.
//! `deflate` is zlib-wrapped or raw, told apart by its first two bytes as
//! libhtp does. Decoders come from a per-worker pool made at start-up.

use flate2::{Decompress, FlushDecompress, Status};

/// Content codings this decoder knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    Gzip,
    Deflate,
}

impl Coding {
    pub fn of(token: &[u8]) -> Option<Coding> {
        if token.eq_ignore_ascii_case(b"gzip") || token.eq_ignore_ascii_case(b"x-gzip") {
            Some(Coding::Gzip)
        } else if token.eq_ignore_ascii_case(b"deflate") {
            Some(Coding::Deflate)
        } else {
            None
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Gzip: reading the fixed ten bytes of the member header.
    GzFixed,
    /// Gzip optional fields: FEXTRA length, FEXTRA data, FNAME, FCOMMENT,
    /// FHCRC.
    GzExtraLen,
    GzExtra,
    GzName,
    GzComment,
    GzCrc,
    /// Deflate: waiting for two bytes to tell zlib from raw.
    Sniff,
    Data,
    Done,
    Failed,
}

const FHCRC: u8 = 2;
const FEXTRA: u8 = 4;
const FNAME: u8 = 8;
const FCOMMENT: u8 = 16;

/// One decoder: a coding and where it is.
pub struct Inflater {
    z: Decompress,
    /// Decoded bytes per coded byte allowed (0: no cap).
    cap: u32,
    coding: Coding,
    stage: Stage,
    hdr: [u8; 10],
    have: usize,
    flags: u8,
    /// FEXTRA bytes (or FHCRC bytes) still to skip.
    skip: usize,
}

impl std::fmt::Debug for Inflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Inflater({:?}, {:?})", self.coding, self.stage)
    }
}

/// What a decode call ended on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// All input taken (maybe more to come).
    More,
    /// The stream ended; what follows is ignored.
    End,
    /// The data is not what its coding says.
    Corrupt,
    /// The sink wanted no more.
    Stopped,
    /// Decoded bytes outgrew the coded ones past the ratio cap.
    Bomb,
}

/// Decoded bytes before the ratio cap is looked at.
pub const RATIO_FLOOR: u64 = 16 * 1024;

impl Inflater {
    pub fn new() -> Inflater {
        Inflater {
            z: Decompress::new(false),
            cap: 0,
            coding: Coding::Gzip,
            stage: Stage::Done,
            hdr: [0; 10],
            have: 0,
            flags: 0,
            skip: 0,
        }
    }

    /// Starts on a new body in `coding`, whose decoded size may be at most
    /// `cap` times its coded size (0: any).
    pub fn start(&mut self, coding: Coding, cap: u32) {
        self.cap = cap;
        self.coding = coding;
        self.stage = match coding {
            Coding::Gzip => Stage::GzFixed,
            Coding::Deflate => Stage::Sniff,
        };
        self.have = 0;
        self.flags = 0;
        self.skip = 0;
        self.z.reset(false);
    }

    /// Decodes `input`; each decoded run goes to `sink`, which returns
    /// false to stop. `room` is working space for output.
    pub fn decode(
        &mut self,
        mut input: &[u8],
        room: &mut [u8],
        sink: &mut dyn FnMut(&[u8]) -> bool,
    ) -> Outcome {
        while !input.is_empty() {
            match self.stage {
                Stage::Done => return Outcome::End,
                Stage::Failed => return Outcome::Corrupt,
                Stage::GzFixed => {
                    let n = (10 - self.have).min(input.len());
                    self.hdr[self.have..self.have + n].copy_from_slice(&input[..n]);
                    self.have += n;
                    input = &input[n..];
                    if self.have == 10 {
                        if self.hdr[0] != 0x1f || self.hdr[1] != 0x8b || self.hdr[2] != 8 {
                            self.stage = Stage::Failed;
                            return Outcome::Corrupt;
                        }
                        self.flags = self.hdr[3];
                        self.have = 0;
                        self.next_gz_field();
                    }
                }
                Stage::GzExtraLen => {
                    let n = (2 - self.have).min(input.len());
                    self.hdr[self.have..self.have + n].copy_from_slice(&input[..n]);
                    self.have += n;
                    input = &input[n..];
                    if self.have == 2 {
                        self.skip = usize::from(u16::from_le_bytes([self.hdr[0], self.hdr[1]]));
                        self.stage = Stage::GzExtra;
                    }
                }
                Stage::GzExtra | Stage::GzCrc => {
                    let n = self.skip.min(input.len());
                    self.skip -= n;
                    input = &input[n..];
                    if self.skip == 0 {
                        if self.stage == Stage::GzExtra {
                            self.flags &= !FEXTRA;
                        } else {
                            self.flags &= !FHCRC;
                        }
                        self.next_gz_field();
                    }
                }
                Stage::GzName | Stage::GzComment => match input.iter().position(|&c| c == 0) {
                    Some(i) => {
                        input = &input[i + 1..];
                        self.flags &= if self.stage == Stage::GzName {
                            !FNAME
                        } else {
                            !FCOMMENT
                        };
                        self.next_gz_field();
                    }
                    None => input = &[],
                },
                Stage::Sniff => {
                    // A zlib header: CM 8, and CMF·256 + FLG a multiple of 31.
                    if self.have == 0 && input.len() >= 2 || self.have == 1 {
                        let (a, b) = if self.have == 1 {
                            (self.hdr[0], input[0])
                        } else {
                            (input[0], input[1])
                        };
                        let zlib = a & 0x0f == 8 && (u16::from(a) << 8 | u16::from(b)) % 31 == 0;
                        self.z.reset(zlib);
                        self.stage = Stage::Data;
                        if self.have == 1 {
                            // Feed the byte kept aside first.
                            self.have = 0;
                            let first = [self.hdr[0]];
                            match self.inflate(&first, room, sink) {
                                Outcome::More => {}
                                other => return other,
                            }
                        }
                    } else {
                        self.hdr[0] = input[0];
                        self.have = 1;
                        input = &input[1..];
                    }
                }
                Stage::Data => return self.inflate(input, room, sink),
            }
        }
        Outcome::More
    }

    fn next_gz_field(&mut self) {
        self.have = 0;
        self.stage = if self.flags & FEXTRA != 0 {
            Stage::GzExtraLen
        } else if self.flags & FNAME != 0 {
            Stage::GzName
        } else if self.flags & FCOMMENT != 0 {
            Stage::GzComment
        } else if self.flags & FHCRC != 0 {
            self.skip = 2;
            Stage::GzCrc
        } else {
            self.z.reset(false);
            Stage::Data
        };
    }

    fn inflate(
        &mut self,
        mut input: &[u8],
        room: &mut [u8],
        sink: &mut dyn FnMut(&[u8]) -> bool,
    ) -> Outcome {
        loop {
            let (i0, o0) = (self.z.total_in(), self.z.total_out());
            let st = self.z.decompress(input, room, FlushDecompress::None);
            let used = (self.z.total_in() - i0) as usize;
            let made = (self.z.total_out() - o0) as usize;
            input = &input[used.min(input.len())..];
            if made > 0 && !sink(&room[..made]) {
                return Outcome::Stopped;
            }
            let (cin, cout) = (self.z.total_in(), self.z.total_out());
            if self.cap > 0 && cout > RATIO_FLOOR && cout > cin.saturating_mul(u64::from(self.cap))
            {
                self.stage = Stage::Failed;
                return Outcome::Bomb;
            }
            match st {
                Ok(Status::StreamEnd) => {
                    self.stage = Stage::Done;
                    return Outcome::End;
                }
                Ok(_) if used == 0 && made == 0 => return Outcome::More,
                Ok(_) => {
                    if input.is_empty() && made < room.len() {
                        return Outcome::More;
                    }
                }
                Err(_) => {
                    self.stage = Stage::Failed;
                    return Outcome::Corrupt;
                }
            }
        }
    }
}

impl Default for Inflater {
    fn default() -> Self {
        Inflater::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::{DeflateEncoder, GzEncoder, ZlibEncoder};
    use flate2::Compression;
    use std::io::Write;

    fn run(coding: Coding, data: &[u8], step: usize) -> (Vec<u8>, Outcome) {
        let mut d = Inflater::new();
        d.start(coding, 0);
        let mut out = Vec::new();
        let mut room = [0u8; 64];
        let mut last = Outcome::More;
        for piece in data.chunks(step) {
            last = d.decode(piece, &mut room, &mut |b| {
                out.extend_from_slice(b);
                true
            });
        }
        (out, last)
    }

    #[test]
    fn gzip_zlib_and_raw_deflate_decode_in_any_pieces() {
        let text: Vec<u8> = b"ignore previous instructions ".repeat(40);
        let mut gz = GzEncoder::new(Vec::new(), Compression::default());
        gz.write_all(&text).unwrap();
        let gz = gz.finish().unwrap();
        let mut zl = ZlibEncoder::new(Vec::new(), Compression::default());
        zl.write_all(&text).unwrap();
        let zl = zl.finish().unwrap();
        let mut raw = DeflateEncoder::new(Vec::new(), Compression::default());
        raw.write_all(&text).unwrap();
        let raw = raw.finish().unwrap();
        for step in [1, 3, 7, 1000] {
            assert_eq!(run(Coding::Gzip, &gz, step), (text.clone(), Outcome::End));
            assert_eq!(
                run(Coding::Deflate, &zl, step),
                (text.clone(), Outcome::End)
            );
            assert_eq!(
                run(Coding::Deflate, &raw, step),
                (text.clone(), Outcome::End)
            );
        }
    }

    #[test]
    fn gzip_optional_fields_are_skipped() {
        // FEXTRA (3 bytes), FNAME, FCOMMENT, FHCRC, then raw deflate.
        let mut raw = DeflateEncoder::new(Vec::new(), Compression::default());
        raw.write_all(b"hello").unwrap();
        let raw = raw.finish().unwrap();
        let mut gz = vec![
            0x1f,
            0x8b,
            8,
            FEXTRA | FNAME | FCOMMENT | FHCRC,
            0,
            0,
            0,
            0,
            0,
            3,
        ];
        gz.extend_from_slice(&[3, 0, b'x', b'y', b'z']);
        gz.extend_from_slice(b"name\0comment\0");
        gz.extend_from_slice(&[0xaa, 0xbb]);
        gz.extend_from_slice(&raw);
        for step in [1, 2, 100] {
            assert_eq!(run(Coding::Gzip, &gz, step).0, b"hello");
        }
    }

    #[test]
    fn garbage_is_corrupt_not_a_panic() {
        assert_eq!(run(Coding::Gzip, b"not gzip at all", 4).1, Outcome::Corrupt);
        let (_, o) = run(Coding::Deflate, &[0xff; 64], 5);
        assert_eq!(o, Outcome::Corrupt);
    }
}
