//! The members of a zip archive (a PyTorch checkpoint is one: `*/data.pkl`
//! beside the tensors), read as PyTorch's reader reads them: from the
//! central directory (its sizes and offsets), each member's data after
//! its local header, stored or deflated, the general-purpose flag bits
//! ignored. Without a central directory (a body cut short), the local
//! headers are walked instead. Bounded: members looked at, and bytes
//! inflated per member.

use flate2::{Decompress, FlushDecompress};

/// Members looked at per archive at most.
pub const MAX_MEMBERS: usize = 4096;

const LOCAL: &[u8] = b"PK\x03\x04";
const CENTRAL: &[u8] = b"PK\x01\x02";
const END: &[u8] = b"PK\x05\x06";

pub fn is_zip(b: &[u8]) -> bool {
    b.starts_with(LOCAL)
}

/// `n` bytes of `b` at `at`, if they are all there (offsets come off the
/// wire: every sum is checked).
fn span(b: &[u8], at: usize, n: usize) -> Option<&[u8]> {
    b.get(at..at.checked_add(n)?)
}

fn le16(b: &[u8], at: usize) -> Option<usize> {
    span(b, at, 2).map(|s| usize::from(u16::from_le_bytes([s[0], s[1]])))
}

fn le32(b: &[u8], at: usize) -> Option<usize> {
    span(b, at, 4).map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]) as usize)
}

/// One member: its name, compression method, and compressed bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member<'a> {
    pub name: &'a [u8],
    pub method: usize,
    pub data: &'a [u8],
}

/// The members of `zip`, by its central directory when it has one.
pub fn members(zip: &[u8]) -> Vec<Member<'_>> {
    let mut out = Vec::new();
    // The end record is in the last 64 KiB + 22 bytes.
    let from = zip.len().saturating_sub(65_535 + 22);
    let end = zip[from..]
        .windows(4)
        .rposition(|w| w == END)
        .map(|p| from + p);
    if let (Some(count), Some(mut at)) =
        end.map_or((None, None), |e| (le16(zip, e + 10), le32(zip, e + 16)))
    {
        for _ in 0..count.min(MAX_MEMBERS) {
            if span(zip, at, 4) != Some(CENTRAL) {
                break;
            }
            let (Some(method), Some(csize), Some(nlen), Some(xlen), Some(clen), Some(local)) = (
                le16(zip, at + 10),
                le32(zip, at + 20),
                le16(zip, at + 28),
                le16(zip, at + 30),
                le16(zip, at + 32),
                le32(zip, at + 42),
            ) else {
                break;
            };
            let name = span(zip, at + 46, nlen).unwrap_or(&[]);
            if let Some(data) = local_data(zip, local, csize) {
                out.push(Member { name, method, data });
            }
            // The header's fields are at most 16 and 32 bits: no overflow
            // on 64 bits, and the next span check ends a bad one.
            at += 46 + nlen + xlen + clen;
        }
        if !out.is_empty() {
            return out;
        }
    }
    // No directory: the local headers in turn.
    let mut at = 0;
    while out.len() < MAX_MEMBERS && span(zip, at, 4) == Some(LOCAL) {
        let (Some(method), Some(csize), Some(nlen), Some(xlen)) = (
            le16(zip, at + 8),
            le32(zip, at + 18),
            le16(zip, at + 26),
            le16(zip, at + 28),
        ) else {
            break;
        };
        let name = span(zip, at + 30, nlen).unwrap_or(&[]);
        let start = at + 30 + nlen + xlen;
        // A size the header does not know (data descriptor): to the end.
        let end = if csize == 0 {
            zip.len()
        } else {
            (start + csize).min(zip.len())
        };
        out.push(Member {
            name,
            method,
            data: zip.get(start..end).unwrap_or(&[]),
        });
        if csize == 0 {
            break;
        }
        at = end;
    }
    out
}

/// A member's data: after its local header (whose own name and extra
/// lengths count), `csize` bytes (cut at the archive's end).
fn local_data(zip: &[u8], local: usize, csize: usize) -> Option<&[u8]> {
    if span(zip, local, 4) != Some(LOCAL) {
        return None;
    }
    let start = local + 30 + le16(zip, local + 26)? + le16(zip, local + 28)?;
    zip.get(start..start.checked_add(csize)?.min(zip.len()))
}

/// A member's bytes, into `out` (cleared): stored as is, deflated
/// inflated, at most `max`; false for another method or a corrupt stream
/// (what was inflated before the corruption stays in `out`).
pub fn extract(m: &Member<'_>, max: usize, out: &mut Vec<u8>) -> bool {
    out.clear();
    match m.method {
        0 => {
            out.extend_from_slice(&m.data[..m.data.len().min(max)]);
            true
        }
        8 => {
            let mut d = Decompress::new(false);
            out.reserve(max.min(m.data.len().saturating_mul(4)).max(1024));
            loop {
                if out.len() >= max {
                    return true;
                }
                if out.capacity() == out.len() {
                    out.reserve((out.len()).min(max - out.len()).max(1024));
                }
                let before = (d.total_in(), d.total_out());
                let input = &m.data[(d.total_in() as usize).min(m.data.len())..];
                match d.decompress_vec(input, out, FlushDecompress::Finish) {
                    Ok(flate2::Status::StreamEnd) => return true,
                    Ok(_) if (d.total_in(), d.total_out()) == before => return input.is_empty(),
                    Ok(_) => {}
                    Err(_) => return false,
                }
            }
        }
        _ => false,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::Write;

    /// A zip of `files` (name, data, deflate?), with a central directory.
    pub(crate) fn zip(files: &[(&str, &[u8], bool)]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut central = Vec::new();
        for (name, data, deflate) in files {
            let body = if *deflate {
                let mut e =
                    flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
                e.write_all(data).unwrap();
                e.finish().unwrap()
            } else {
                data.to_vec()
            };
            let method: u16 = if *deflate { 8 } else { 0 };
            let off = out.len() as u32;
            out.extend_from_slice(LOCAL);
            out.extend_from_slice(&[20, 0, 0, 0]);
            out.extend_from_slice(&method.to_le_bytes());
            out.extend_from_slice(&[0; 8]);
            out.extend_from_slice(&(body.len() as u32).to_le_bytes());
            out.extend_from_slice(&(data.len() as u32).to_le_bytes());
            out.extend_from_slice(&(name.len() as u16).to_le_bytes());
            out.extend_from_slice(&[0, 0]);
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(&body);
            central.extend_from_slice(CENTRAL);
            central.extend_from_slice(&[20, 0, 20, 0, 0, 0]);
            central.extend_from_slice(&method.to_le_bytes());
            central.extend_from_slice(&[0; 8]);
            central.extend_from_slice(&(body.len() as u32).to_le_bytes());
            central.extend_from_slice(&(data.len() as u32).to_le_bytes());
            central.extend_from_slice(&(name.len() as u16).to_le_bytes());
            central.extend_from_slice(&[0; 12]);
            central.extend_from_slice(&off.to_le_bytes());
            central.extend_from_slice(name.as_bytes());
        }
        let cd = out.len() as u32;
        out.extend_from_slice(&central);
        out.extend_from_slice(END);
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&(files.len() as u16).to_le_bytes());
        out.extend_from_slice(&(files.len() as u16).to_le_bytes());
        out.extend_from_slice(&(central.len() as u32).to_le_bytes());
        out.extend_from_slice(&cd.to_le_bytes());
        out.extend_from_slice(&[0, 0]);
        out
    }

    #[test]
    fn members_are_read_by_the_directory_stored_or_deflated() {
        let z = zip(&[
            ("archive/data.pkl", b"pickle bytes", true),
            ("archive/data/0", b"tensor", false),
        ]);
        let m = members(&z);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].name, b"archive/data.pkl");
        let mut out = Vec::new();
        assert!(extract(&m[0], 1 << 20, &mut out));
        assert_eq!(out, b"pickle bytes");
        assert!(extract(&m[1], 1 << 20, &mut out));
        assert_eq!(out, b"tensor");
        // Cut before its directory: the local headers still give it.
        let second = 4 + z[4..].windows(4).position(|w| w == LOCAL).unwrap();
        let cut = &z[..second];
        assert_eq!(members(cut)[0].name, b"archive/data.pkl");
        for n in 0..z.len() {
            for m in members(&z[..n]) {
                let _ = extract(&m, 1 << 10, &mut out);
            }
        }
    }
}
