//! A bounded JSON walker for the AI parsers (LLM-API bodies, safetensors
//! headers): it reads one value and tells a `Sink` what it meets, each
//! string decoded (`\n`, `\uXXXX`, surrogate pairs; a lone surrogate
//! becomes U+FFFD) with where it sits: its depth, the top-level key it is
//! under and the key it is the value of (an array's elements have their
//! array's key); a string cut by the body's end is told as far as it
//! went. Nothing is built; nesting past `MAX_DEPTH` is an error,
//! and an error keeps what the sink was told before it (a body cut by the
//! body limit still gives the strings read).

/// Nesting followed at most; deeper bodies are an error.
pub const MAX_DEPTH: usize = 64;

/// Why a body was not read whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonError {
    /// Not JSON (or not what the caller wanted at the top).
    Syntax,
    /// Past `MAX_DEPTH`.
    TooDeep,
    /// The body ended inside a value (cut by the body limit).
    Truncated,
}

impl JsonError {
    pub const ALL: [JsonError; 3] = [JsonError::Syntax, JsonError::TooDeep, JsonError::Truncated];

    pub fn name(self) -> &'static str {
        match self {
            JsonError::Syntax => "syntax",
            JsonError::TooDeep => "too_deep",
            JsonError::Truncated => "truncated",
        }
    }
}

/// Where a value sits.
#[derive(Debug, Clone, Copy)]
pub struct At<'a> {
    /// 0 for the top value, 1 for a top-level member's value …
    pub depth: usize,
    /// The top-level key it is under (empty for the top value).
    pub top: &'a [u8],
    /// The key whose value it is, or whose array it is an element of.
    pub key: &'a [u8],
    /// The key of the object holding `key` (empty at the top).
    pub parent: &'a [u8],
}

/// What a walk tells.
pub trait Sink {
    /// A string value, decoded.
    fn string(&mut self, at: At<'_>, s: &[u8]);
    /// A number, `true`, `false` or `null`, as written.
    fn scalar(&mut self, _at: At<'_>, _raw: &[u8]) {}
    /// An object (`array` false) or an array begins.
    fn open(&mut self, _at: At<'_>, _array: bool) {}
    /// The object or array begun at `depth` ended.
    fn close(&mut self, _depth: usize) {}
}

/// Walks the value at the start of `b` (after white space); returns where
/// it ended. The top must be an object.
pub fn walk_object(b: &[u8], sink: &mut impl Sink, tmp: &mut Vec<u8>) -> Result<usize, JsonError> {
    let mut p = Walker {
        b,
        at: 0,
        top: (0, 0),
        key: (0, 0),
        parent: (0, 0),
    };
    p.ws();
    if p.peek() != Some(b'{') {
        return Err(JsonError::Syntax);
    }
    p.value(0, sink, tmp)?;
    Ok(p.at)
}

/// Walks `b`, which must be one object and white space.
pub fn walk_whole(b: &[u8], sink: &mut impl Sink, tmp: &mut Vec<u8>) -> Result<(), JsonError> {
    let end = walk_object(b, sink, tmp)?;
    if b[end..]
        .iter()
        .all(|c| matches!(c, b' ' | b'\t' | b'\n' | b'\r'))
    {
        Ok(())
    } else {
        Err(JsonError::Syntax)
    }
}

struct Walker<'a> {
    b: &'a [u8],
    at: usize,
    top: (usize, usize),
    key: (usize, usize),
    parent: (usize, usize),
}

impl Walker<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.at).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn here(&self, depth: usize) -> At<'_> {
        let s = |r: (usize, usize)| &self.b[r.0..r.1];
        At {
            depth,
            top: s(self.top),
            key: s(self.key),
            parent: s(self.parent),
        }
    }

    fn value(
        &mut self,
        depth: usize,
        sink: &mut impl Sink,
        tmp: &mut Vec<u8>,
    ) -> Result<(), JsonError> {
        if depth > MAX_DEPTH {
            return Err(JsonError::TooDeep);
        }
        self.ws();
        match self.peek().ok_or(JsonError::Truncated)? {
            open @ (b'{' | b'[') => {
                let array = open == b'[';
                let close = if array { b']' } else { b'}' };
                sink.open(self.here(depth), array);
                self.at += 1;
                self.ws();
                let mut empty = self.peek() == Some(close);
                while !empty {
                    if array {
                        self.value(depth + 1, sink, tmp)?;
                    } else {
                        self.member(depth, sink, tmp)?;
                    }
                    self.ws();
                    match self.peek().ok_or(JsonError::Truncated)? {
                        b',' => self.at += 1,
                        c if c == close => empty = true,
                        _ => return Err(JsonError::Syntax),
                    }
                }
                self.at += 1;
                sink.close(depth);
                Ok(())
            }
            b'"' => {
                let r = self.string_into(tmp);
                // A string cut by the body's end is told as far as it
                // went: what was sent before the cut is inspected.
                if r.is_ok() || (r == Err(JsonError::Truncated) && !tmp.is_empty()) {
                    sink.string(self.here(depth), tmp);
                }
                r
            }
            b't' => self.word(b"true", depth, sink),
            b'f' => self.word(b"false", depth, sink),
            b'n' => self.word(b"null", depth, sink),
            b'-' | b'0'..=b'9' => {
                let start = self.at;
                while matches!(
                    self.peek(),
                    Some(b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
                ) {
                    self.at += 1;
                }
                if self.at == self.b.len() {
                    // A number may go on past the cut.
                    return Err(JsonError::Truncated);
                }
                sink.scalar(self.here(depth), &self.b[start..self.at]);
                Ok(())
            }
            _ => Err(JsonError::Syntax),
        }
    }

    /// One `"key": value` of an object at `depth`.
    fn member(
        &mut self,
        depth: usize,
        sink: &mut impl Sink,
        tmp: &mut Vec<u8>,
    ) -> Result<(), JsonError> {
        self.ws();
        let k = self.raw_string()?;
        self.ws();
        if self.peek().ok_or(JsonError::Truncated)? != b':' {
            return Err(JsonError::Syntax);
        }
        self.at += 1;
        let saved = (self.top, self.key, self.parent);
        if depth == 0 {
            self.top = k;
        }
        self.parent = self.key;
        self.key = k;
        let r = self.value(depth + 1, sink, tmp);
        (self.top, self.key, self.parent) = saved;
        r
    }

    fn word(&mut self, w: &[u8], depth: usize, sink: &mut impl Sink) -> Result<(), JsonError> {
        let end = self.at + w.len();
        match self.b.get(self.at..end) {
            Some(s) if s == w => {
                self.at = end;
                sink.scalar(self.here(depth), w);
                Ok(())
            }
            Some(_) => Err(JsonError::Syntax),
            None if w.starts_with(&self.b[self.at..]) => Err(JsonError::Truncated),
            None => Err(JsonError::Syntax),
        }
    }

    /// A key's raw span (compared as written).
    fn raw_string(&mut self) -> Result<(usize, usize), JsonError> {
        if self.peek().ok_or(JsonError::Truncated)? != b'"' {
            return Err(JsonError::Syntax);
        }
        self.at += 1;
        let start = self.at;
        loop {
            match self.peek().ok_or(JsonError::Truncated)? {
                b'"' => {
                    self.at += 1;
                    return Ok((start, self.at - 1));
                }
                b'\\' => self.at += 2,
                _ => self.at += 1,
            }
        }
    }

    /// A string value, decoded into `out` (cleared).
    fn string_into(&mut self, out: &mut Vec<u8>) -> Result<(), JsonError> {
        out.clear();
        self.at += 1;
        loop {
            let rest = self.b.get(self.at..).unwrap_or_default();
            // Plain bytes in one go.
            let Some(n) = rest.iter().position(|&c| c == b'"' || c == b'\\') else {
                out.extend_from_slice(rest);
                self.at = self.b.len();
                return Err(JsonError::Truncated);
            };
            out.extend_from_slice(&rest[..n]);
            self.at += n + 1;
            if rest[n] == b'"' {
                return Ok(());
            }
            let e = self.peek().ok_or(JsonError::Truncated)?;
            self.at += 1;
            match e {
                b'n' => out.push(b'\n'),
                b't' => out.push(b'\t'),
                b'r' => out.push(b'\r'),
                b'b' => out.push(8),
                b'f' => out.push(12),
                b'/' | b'\\' | b'"' => out.push(e),
                b'u' => {
                    let hi = self.hex4()?;
                    let ch = if (0xd800..0xdc00).contains(&hi)
                        && self.b.get(self.at..self.at + 2) == Some(b"\\u")
                    {
                        self.at += 2;
                        let lo = self.hex4()?;
                        if (0xdc00..0xe000).contains(&lo) {
                            char::from_u32(0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00))
                        } else {
                            None
                        }
                    } else {
                        char::from_u32(hi)
                    };
                    let mut b = [0u8; 4];
                    out.extend_from_slice(ch.unwrap_or('\u{fffd}').encode_utf8(&mut b).as_bytes());
                }
                _ => return Err(JsonError::Syntax),
            }
        }
    }

    fn hex4(&mut self) -> Result<u32, JsonError> {
        let h = self
            .b
            .get(self.at..self.at + 4)
            .ok_or(JsonError::Truncated)?;
        let mut v = 0u32;
        for &c in h {
            let d = (c as char).to_digit(16).ok_or(JsonError::Syntax)?;
            v = v << 4 | d;
        }
        self.at += 4;
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Log(Vec<String>);

    impl Sink for Log {
        fn string(&mut self, at: At<'_>, s: &[u8]) {
            self.0.push(format!(
                "{} {}/{}/{} {}",
                at.depth,
                String::from_utf8_lossy(at.top),
                String::from_utf8_lossy(at.parent),
                String::from_utf8_lossy(at.key),
                String::from_utf8_lossy(s)
            ));
        }
        fn scalar(&mut self, at: At<'_>, raw: &[u8]) {
            self.0.push(format!(
                "{} {} ={}",
                at.depth,
                String::from_utf8_lossy(at.key),
                String::from_utf8_lossy(raw)
            ));
        }
    }

    #[test]
    fn strings_are_decoded_and_placed() {
        let mut l = Log::default();
        let mut tmp = Vec::new();
        walk_whole(
            br#"{"a":{"b":["x\u0069\n", "\ud83d\ude00\ud800"]},"n":-1.5e3,"t":true} "#,
            &mut l,
            &mut tmp,
        )
        .unwrap();
        assert_eq!(
            l.0,
            vec![
                "3 a/a/b xi\n",
                "3 a/a/b \u{1f600}\u{fffd}",
                "1 n =-1.5e3",
                "1 t =true"
            ]
        );
    }

    #[test]
    fn errors_say_why_and_every_cut_is_safe() {
        let mut l = Log::default();
        let mut tmp = Vec::new();
        assert_eq!(walk_whole(b"[1]", &mut l, &mut tmp), Err(JsonError::Syntax));
        assert_eq!(
            walk_whole(b"{} x", &mut l, &mut tmp),
            Err(JsonError::Syntax)
        );
        assert_eq!(
            walk_whole(b"{\"a\":tru", &mut l, &mut tmp),
            Err(JsonError::Truncated)
        );
        assert_eq!(
            walk_whole(b"{\"a\":trux}", &mut l, &mut tmp),
            Err(JsonError::Syntax)
        );
        let deep = format!("{{\"a\":{}", "[".repeat(100));
        assert_eq!(
            walk_whole(deep.as_bytes(), &mut l, &mut tmp),
            Err(JsonError::TooDeep)
        );
        let whole = br#"{"k":["a\"b",{"c":12,"d":null}],"e":"\u00e9"}"#;
        assert!(walk_whole(whole, &mut l, &mut tmp).is_ok());
        for n in 0..whole.len() {
            assert_eq!(
                walk_whole(&whole[..n], &mut l, &mut tmp),
                Err(if n == 0 {
                    JsonError::Syntax
                } else {
                    JsonError::Truncated
                }),
                "cut at {n}"
            );
        }
    }
}
