//! safetensors: an 8-byte little-endian header length, a JSON header
//! naming each tensor's dtype, shape and byte offsets, then the data. No
//! code can hide in one, but a header can lie: offsets that overlap, leave
//! gaps, disagree with dtype × shape, or a size the body does not have.
//! Those are what a loader refuses and what a crafted file tries; each is
//! reported by reason.

use crate::applayer::json::{self, At, Sink};

/// Header bytes read at most (the format's own limit is 100 MB; a header
/// past this many is reported, not read).
pub const MAX_HEADER: u64 = 16 << 20;
/// Tensors checked per file at most.
pub const MAX_TENSORS: usize = 1 << 16;

/// Why a header does not hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lie {
    /// The header is not a JSON object (or is cut).
    Header,
    /// A dtype the format does not have.
    Dtype,
    /// A tensor's byte length is not dtype × shape.
    Length,
    /// Offsets overlap or leave a gap.
    Offsets,
    /// Header and data do not add up to the file's size.
    Size,
    /// Past `MAX_HEADER` or `MAX_TENSORS`.
    Limit,
}

impl Lie {
    pub fn name(self) -> &'static str {
        match self {
            Lie::Header => "header",
            Lie::Dtype => "dtype",
            Lie::Length => "length",
            Lie::Offsets => "offsets",
            Lie::Size => "size",
            Lie::Limit => "limit",
        }
    }
}

/// What a header says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Header {
    pub tensors: u32,
    /// Data bytes the tensors take (the last offset).
    pub data_len: u64,
    pub lie: Option<Lie>,
}

/// Whether `b` starts like a safetensors file: a header length that fits
/// the format's limit, then `{`.
pub fn looks_like(b: &[u8]) -> bool {
    match (b.get(..8), b.get(8)) {
        (Some(h), Some(b'{')) => {
            let n = u64::from_le_bytes(h.try_into().unwrap_or_default());
            (2..=100_000_000).contains(&n)
        }
        _ => false,
    }
}

fn dtype_bytes(d: &[u8]) -> Option<u64> {
    Some(match d {
        b"BOOL" | b"U8" | b"I8" | b"F8_E5M2" | b"F8_E4M3" | b"F8_E8M0" => 1,
        b"I16" | b"U16" | b"F16" | b"BF16" => 2,
        b"I32" | b"U32" | b"F32" => 4,
        b"I64" | b"U64" | b"F64" | b"C64" => 8,
        _ => return None,
    })
}

#[derive(Default)]
struct Tensor {
    size: Option<u64>,
    elems: Option<u64>,
    offsets: [u64; 2],
    n_offsets: u8,
}

struct HeaderSink {
    out: Header,
    cur: Option<Tensor>,
    spans: Vec<(u64, u64)>,
}

impl HeaderSink {
    fn finish(&mut self) {
        let Some(t) = self.cur.take() else { return };
        let [b, e] = t.offsets;
        let lie = match (t.size, t.elems) {
            (None, _) => Some(Lie::Dtype),
            _ if t.n_offsets != 2 || e < b => Some(Lie::Offsets),
            (Some(s), Some(n)) if n.checked_mul(s) != Some(e - b) => Some(Lie::Length),
            (_, None) => Some(Lie::Length),
            _ => None,
        };
        self.out.lie = self.out.lie.or(lie);
        self.out.tensors += 1;
        if self.spans.len() < MAX_TENSORS {
            self.spans.push((b, e));
        } else {
            self.out.lie = self.out.lie.or(Some(Lie::Limit));
        }
    }
}

impl Sink for HeaderSink {
    fn string(&mut self, at: At<'_>, s: &[u8]) {
        if let (2, b"dtype", Some(t)) = (at.depth, at.key, self.cur.as_mut()) {
            t.size = dtype_bytes(s);
        }
    }

    fn scalar(&mut self, at: At<'_>, raw: &[u8]) {
        let Some(t) = self.cur.as_mut() else { return };
        if at.depth != 3 {
            return;
        }
        let v = std::str::from_utf8(raw)
            .ok()
            .and_then(|s| s.parse::<u64>().ok());
        match at.key {
            b"shape" => {
                t.elems = match (t.elems, v) {
                    (Some(n), Some(d)) => n.checked_mul(d),
                    _ => None,
                }
            }
            b"data_offsets" => match (t.n_offsets, v) {
                (0 | 1, Some(v)) => {
                    t.offsets[usize::from(t.n_offsets)] = v;
                    t.n_offsets += 1;
                }
                _ => t.n_offsets = 3,
            },
            _ => {}
        }
    }

    fn open(&mut self, at: At<'_>, array: bool) {
        if at.depth == 1 {
            self.finish();
            if !array && at.key != b"__metadata__" {
                self.cur = Some(Tensor {
                    elems: Some(1),
                    ..Tensor::default()
                });
            }
        }
    }
}

/// Reads the header of `b` (the file's first bytes, maybe not all of it),
/// checking it against the file's whole `size` when that is known.
pub fn read(b: &[u8], size: Option<u64>) -> Header {
    let mut out = Header::default();
    let Some(n) = b
        .get(..8)
        .map(|h| u64::from_le_bytes(h.try_into().unwrap_or_default()))
    else {
        out.lie = Some(Lie::Header);
        return out;
    };
    if n > MAX_HEADER {
        out.lie = Some(Lie::Limit);
        return out;
    }
    let Some(head) = b.get(8..8 + n as usize) else {
        // The body stops inside its header: a lie when the file is whole,
        // a cut (by the body limit) otherwise.
        out.lie = Some(if size.is_some_and(|s| s < 8 + n) {
            Lie::Size
        } else {
            Lie::Header
        });
        return out;
    };
    let mut sink = HeaderSink {
        out,
        cur: None,
        spans: Vec::new(),
    };
    let mut tmp = Vec::new();
    let ok = json::walk_whole(head, &mut sink, &mut tmp).is_ok();
    sink.finish();
    let mut out = sink.out;
    if !ok {
        out.lie = Some(Lie::Header);
        return out;
    }
    // Sorted, the spans must tile 0..data_len.
    let mut spans = sink.spans;
    spans.sort_unstable();
    let mut end = 0u64;
    for &(b, e) in &spans {
        if b != end {
            out.lie = out.lie.or(Some(Lie::Offsets));
        }
        end = end.max(e);
    }
    out.data_len = end;
    if let Some(s) = size {
        if (8 + n).checked_add(end) != Some(s) {
            out.lie = out.lie.or(Some(Lie::Size));
        }
    }
    out
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// A safetensors file of `header` with `data` bytes after it.
    pub fn file(header: &str, data: usize) -> Vec<u8> {
        let mut f = (header.len() as u64).to_le_bytes().to_vec();
        f.extend_from_slice(header.as_bytes());
        f.resize(f.len() + data, 0);
        f
    }

    const GOOD: &str = r#"{"__metadata__":{"format":"pt"},"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},"b":{"dtype":"BF16","shape":[3],"data_offsets":[24,30]}}"#;

    #[test]
    fn a_true_header_holds() {
        let f = file(GOOD, 30);
        assert!(looks_like(&f));
        let h = read(&f, Some(f.len() as u64));
        assert_eq!((h.tensors, h.data_len, h.lie), (2, 30, None));
        // Cut by the body limit, size unknown: what was read holds.
        assert_eq!(read(&f[..f.len() - 10], None).lie, None);
    }

    #[test]
    fn each_lie_is_named() {
        let lie = |h: &str, data: usize| {
            let f = file(h, data);
            read(&f, Some(f.len() as u64)).lie
        };
        assert_eq!(lie(GOOD, 31), Some(Lie::Size));
        assert_eq!(lie(&GOOD.replace("BF16", "Q4"), 30), Some(Lie::Dtype));
        assert_eq!(lie(&GOOD.replace("[2,3]", "[2,4]"), 30), Some(Lie::Length));
        assert_eq!(
            lie(&GOOD.replace("[24,30]", "[20,26]"), 26),
            Some(Lie::Offsets)
        );
        assert_eq!(
            lie(
                r#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}}"#,
                0
            ),
            Some(Lie::Offsets)
        );
        assert_eq!(lie("{\"w\":", 0), Some(Lie::Header));
        // A header that says it is longer than the file.
        let mut f = file(GOOD, 30);
        f[..8].copy_from_slice(&1000u64.to_le_bytes());
        assert_eq!(read(&f, Some(f.len() as u64)).lie, Some(Lie::Size));
        f[..8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(read(&f, Some(f.len() as u64)).lie, Some(Lie::Limit));
        assert!(!looks_like(&f));
    }
}
