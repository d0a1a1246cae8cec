//! Transforms: what a rule does to a buffer before its contents look at
//! it (`http.uri; url_decode; content:…`), applied in the order written,
//! as Suricata's transform keywords are. Each reads one buffer and writes
//! another; the engine keeps two working buffers per worker and
//! alternates between them.

use crate::applayer::http::decompress::{Coding, Inflater, Outcome};
use pcre2::bytes::Regex;

/// One transform.
#[derive(Debug, Clone)]
pub enum Transform {
    DotPrefix,
    StripWhitespace,
    CompressWhitespace,
    ToLowercase,
    ToUppercase,
    UrlDecode,
    /// `from_base64: [bytes N] [, offset N] [, mode rfc4648|rfc2045|strict]`
    FromBase64 {
        offset: usize,
        bytes: Option<usize>,
        rfc2045: bool,
    },
    /// Replaced by the expression's first capture.
    PcreXform(Regex),
    Xor(Vec<u8>),
    /// gzip / zlib (`gunzip`, `zlib_deflate`), at most `max` bytes out
    /// (`max-size`).
    Inflate(Coding, usize),
    /// HTTP/1 has no pseudo-headers: nothing to strip.
    StripPseudoHeaders,
    HeaderLowercase,
}

impl Transform {
    /// A code for a transform that takes no parameter (what a prefilter
    /// database over transformed buffers is keyed by); None for those
    /// that do.
    pub fn code(&self) -> Option<u8> {
        Some(match self {
            Transform::DotPrefix => 1,
            Transform::StripWhitespace => 2,
            Transform::CompressWhitespace => 3,
            Transform::ToLowercase => 4,
            Transform::ToUppercase => 5,
            Transform::UrlDecode => 6,
            Transform::StripPseudoHeaders => 7,
            Transform::HeaderLowercase => 8,
            Transform::FromBase64 { .. }
            | Transform::PcreXform(_)
            | Transform::Xor(_)
            | Transform::Inflate(..) => return None,
        })
    }
}

/// A worker's room for transforms: two buffers used in turn, and a
/// decoder for the decompressing ones (made once).
#[derive(Debug)]
pub struct Room {
    bufs: [Vec<u8>; 2],
    inflater: Box<Inflater>,
}

impl Default for Room {
    fn default() -> Self {
        Room {
            bufs: [Vec::with_capacity(4096), Vec::with_capacity(4096)],
            inflater: Box::new(Inflater::new()),
        }
    }
}

impl Room {
    /// `input` through `ts` in order; the result borrows the room.
    pub fn apply(&mut self, ts: &[Transform], input: &[u8]) -> &[u8] {
        let [a, b] = &mut self.bufs;
        let Some((first, rest)) = ts.split_first() else {
            a.clear();
            a.extend_from_slice(input);
            return a;
        };
        first.apply(input, a, &mut self.inflater);
        let mut cur_is_a = true;
        for t in rest {
            if cur_is_a {
                t.apply(a, b, &mut self.inflater);
            } else {
                t.apply(b, a, &mut self.inflater);
            }
            cur_is_a = !cur_is_a;
        }
        if cur_is_a {
            a
        } else {
            b
        }
    }
}

/// Output a transform may make at most (a decompressing one stops there).
pub const TRANSFORM_MAX: usize = 1 << 20;

impl Transform {
    /// The transform a keyword names, or None if the keyword is not one.
    /// An error for a transform this engine does not evaluate (named by
    /// keyword, so the rule is skipped for it) or a bad value.
    pub fn parse(k: &str, v: Option<&str>) -> Option<Result<Transform, String>> {
        let v = v.map(str::trim).unwrap_or("");
        let t = match k {
            "dotprefix" => Transform::DotPrefix,
            "strip_whitespace" => Transform::StripWhitespace,
            "compress_whitespace" => Transform::CompressWhitespace,
            "to_lowercase" => Transform::ToLowercase,
            "to_uppercase" => Transform::ToUppercase,
            "url_decode" => Transform::UrlDecode,
            "strip_pseudo_headers" => Transform::StripPseudoHeaders,
            "header_lowercase" => Transform::HeaderLowercase,
            "gunzip" => return Some(inflate(Coding::Gzip, k, v)),
            "zlib_deflate" => return Some(inflate(Coding::Deflate, k, v)),
            "from_base64" => return Some(from_base64(v)),
            "pcrexform" => return Some(pcrexform(v)),
            "xor" => return Some(xor(v)),
            "to_md5" | "to_sha1" | "to_sha256" | "domain" | "tld" | "luaxform" => {
                return Some(Err(k.to_string()))
            }
            _ => return None,
        };
        Some(Ok(t))
    }

    /// `input` transformed into `out` (cleared first).
    pub fn apply(&self, input: &[u8], out: &mut Vec<u8>, inflater: &mut Inflater) {
        out.clear();
        let ws = |c: u8| matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c);
        match self {
            Transform::DotPrefix => {
                out.push(b'.');
                out.extend_from_slice(input);
            }
            Transform::StripWhitespace => out.extend(input.iter().copied().filter(|&c| !ws(c))),
            Transform::CompressWhitespace => {
                let mut last_ws = false;
                for &c in input {
                    if ws(c) {
                        if !last_ws {
                            out.push(b' ');
                        }
                        last_ws = true;
                    } else {
                        out.push(c);
                        last_ws = false;
                    }
                }
            }
            Transform::ToLowercase => out.extend(input.iter().map(u8::to_ascii_lowercase)),
            Transform::ToUppercase => out.extend(input.iter().map(u8::to_ascii_uppercase)),
            Transform::UrlDecode => {
                let mut i = 0;
                let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
                while i < input.len() {
                    match input[i] {
                        b'%' if i + 2 < input.len() => {
                            match (hex(input[i + 1]), hex(input[i + 2])) {
                                (Some(h), Some(l)) => {
                                    out.push(h << 4 | l);
                                    i += 3;
                                    continue;
                                }
                                _ => out.push(b'%'),
                            }
                        }
                        b'+' => out.push(b' '),
                        c => out.push(c),
                    }
                    i += 1;
                }
            }
            Transform::FromBase64 {
                offset,
                bytes,
                rfc2045,
            } => {
                let mut src = input.get(*offset..).unwrap_or(&[]);
                if let Some(b) = bytes {
                    src = &src[..src.len().min(*b)];
                }
                super::content::base64_into(src, *rfc2045, TRANSFORM_MAX, out);
            }
            Transform::PcreXform(re) => {
                if let Ok(Some(c)) = re.captures(input) {
                    if let Some(m) = c.get(1) {
                        out.extend_from_slice(m.as_bytes());
                    }
                }
            }
            Transform::Xor(key) => {
                out.extend(input.iter().zip(key.iter().cycle()).map(|(a, k)| a ^ k));
            }
            Transform::Inflate(coding, max) => {
                inflater.start(*coding, 0);
                let mut room = [0u8; 4096];
                let _: Outcome = inflater.decode(input, &mut room, &mut |b| {
                    let n = b.len().min(max - out.len());
                    out.extend_from_slice(&b[..n]);
                    out.len() < *max
                });
            }
            Transform::StripPseudoHeaders => out.extend_from_slice(input),
            Transform::HeaderLowercase => {
                // Names (up to each line's colon) in lower case.
                let mut in_name = true;
                for &c in input {
                    match c {
                        b'\n' => in_name = true,
                        b':' => in_name = false,
                        _ => {}
                    }
                    out.push(if in_name { c.to_ascii_lowercase() } else { c });
                }
            }
        }
    }
}

fn inflate(coding: Coding, k: &str, v: &str) -> Result<Transform, String> {
    let max = match v.split_once(char::is_whitespace) {
        None if v.is_empty() => TRANSFORM_MAX,
        Some(("max-size", n)) => n
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| format!("{k}: `{v}`"))?
            .min(TRANSFORM_MAX),
        _ => return Err(format!("{k}: `{v}`")),
    };
    Ok(Transform::Inflate(coding, max))
}

fn from_base64(v: &str) -> Result<Transform, String> {
    let (mut offset, mut bytes, mut rfc2045) = (0, None, false);
    for item in v.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let (k, a) = item.split_once(char::is_whitespace).unwrap_or((item, ""));
        let n = || {
            a.trim()
                .parse::<usize>()
                .map_err(|_| format!("from_base64: `{item}`"))
        };
        match k {
            "offset" => offset = n()?,
            "bytes" => bytes = Some(n()?),
            "mode" => match a.trim() {
                "rfc4648" | "strict" => rfc2045 = false,
                "rfc2045" => rfc2045 = true,
                _ => return Err(format!("from_base64: `{item}`")),
            },
            _ => return Err(format!("from_base64: `{item}`")),
        }
    }
    Ok(Transform::FromBase64 {
        offset,
        bytes,
        rfc2045,
    })
}

fn pcrexform(v: &str) -> Result<Transform, String> {
    let expr = v
        .strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .unwrap_or(v);
    let re = pcre2::bytes::RegexBuilder::new()
        .build(expr)
        .map_err(|e| format!("pcrexform: PCRE2 cannot compile it ({e})"))?;
    if re.captures_len() < 2 {
        return Err("pcrexform: the expression captures nothing".into());
    }
    Ok(Transform::PcreXform(re))
}

fn xor(v: &str) -> Result<Transform, String> {
    let hex = v
        .strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .unwrap_or(v);
    match super::hex_bytes(hex) {
        Some(key) if !key.is_empty() => Ok(Transform::Xor(key)),
        _ => Err(format!("xor: `{v}`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(k: &str, v: Option<&str>, input: &[u8]) -> Vec<u8> {
        let x = Transform::parse(k, v).unwrap().unwrap();
        let mut out = Vec::new();
        x.apply(input, &mut out, &mut Inflater::new());
        out
    }

    #[test]
    fn transforms_do_what_suricata_says() {
        assert_eq!(t("dotprefix", None, b"example.com"), b".example.com");
        assert_eq!(t("strip_whitespace", None, b" a \tb\r\n"), b"ab");
        assert_eq!(t("compress_whitespace", None, b"a  \t b"), b"a b");
        assert_eq!(t("to_lowercase", None, b"AbC"), b"abc");
        assert_eq!(
            t("url_decode", None, b"/evil%27sqli+x%2"),
            b"/evil'sqli x%2"
        );
        assert_eq!(t("from_base64", Some("offset 2"), b"x=dGVzdA=="), b"test");
        assert_eq!(
            t(
                "pcrexform",
                Some(r#""[a-zA-Z]+\s+(.*)\s+HTTP""#),
                b"GET /a.jpg HTTP/1.1"
            ),
            b"/a.jpg"
        );
        assert_eq!(t("xor", Some("\"0d0a\""), b"\x0d\x0a\x0c"), b"\x00\x00\x01");
        assert!(matches!(Transform::parse("to_sha256", None), Some(Err(_))));
        // Not hex, or not ASCII at all: an error naming the value, no panic.
        for bad in ["\"0d0\"", "\"zz\"", "\"a\u{e9}0\"", "\"\""] {
            assert!(
                matches!(Transform::parse("xor", Some(bad)), Some(Err(_))),
                "{bad}"
            );
        }
        assert!(Transform::parse("content", None).is_none());
    }
}
