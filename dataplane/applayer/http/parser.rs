//! HTTP/1.x message heads: the start line and the header fields, read the
//! way libhtp reads them (a bare LF ends a line as CRLF does, folded lines
//! join their field, leading blank lines are skipped), with each oddity
//! reported by name; and URI normalisation as libhtp's defaults do it.

use super::HttpAnomaly;

/// A part of a head: `start..end` in its bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Span {
    pub start: u32,
    pub end: u32,
}

impl Span {
    fn new(start: usize, end: usize) -> Span {
        Span {
            start: start as u32,
            end: end as u32,
        }
    }

    pub fn of<'a>(&self, b: &'a [u8]) -> &'a [u8] {
        b.get(self.start as usize..self.end as usize).unwrap_or(&[])
    }

    pub fn is_empty(&self) -> bool {
        self.end <= self.start
    }
}

/// One header field: its name in the head, its value (folded lines
/// joined by a space) in the index's `values`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Field {
    pub name: Span,
    pub value: Span,
}

/// Most header fields kept per head; more are counted and ignored.
pub const MAX_FIELDS: usize = 128;

/// A parsed head, kept by the worker and reused: spans into the head's
/// bytes, values in `values`.
#[derive(Debug, Default)]
pub struct HeadIndex {
    /// The start line (without its line end).
    pub line: Span,
    /// Request: method, URI, protocol. Response: protocol, status,
    /// message.
    pub parts: [Span; 3],
    pub fields: Vec<Field>,
    pub values: Vec<u8>,
    /// Oddities found, a bit per `HttpAnomaly`.
    pub anomalies: u32,
}

impl HeadIndex {
    pub fn with_capacity(values: usize) -> HeadIndex {
        HeadIndex {
            fields: Vec::with_capacity(MAX_FIELDS),
            values: Vec::with_capacity(values),
            ..HeadIndex::default()
        }
    }

    fn clear(&mut self) {
        self.line = Span::default();
        self.parts = [Span::default(); 3];
        self.fields.clear();
        self.values.clear();
        self.anomalies = 0;
    }

    fn note(&mut self, a: HttpAnomaly) {
        self.anomalies |= 1 << a as u32;
    }

    pub fn has(&self, a: HttpAnomaly) -> bool {
        self.anomalies & (1 << a as u32) != 0
    }

    /// The value of header `name` (any case): duplicates joined by ", ",
    /// as libhtp joins them, into `out`. False if there is none.
    pub fn get_into(&self, head: &[u8], name: &[u8], out: &mut Vec<u8>) -> bool {
        out.clear();
        let mut found = false;
        for f in &self.fields {
            if f.name.of(head).eq_ignore_ascii_case(name) {
                if found {
                    out.extend_from_slice(b", ");
                }
                out.extend_from_slice(f.value.of(&self.values));
                found = true;
            }
        }
        found
    }

    /// The first value of header `name`.
    pub fn first<'a>(&'a self, head: &[u8], name: &[u8]) -> Option<&'a [u8]> {
        self.fields
            .iter()
            .find(|f| f.name.of(head).eq_ignore_ascii_case(name))
            .map(|f| f.value.of(&self.values))
    }

    /// Reads a head (`head` is everything up to and including its blank
    /// line). `request`: a request head, else a response head.
    pub fn parse(&mut self, head: &[u8], request: bool) {
        self.clear();
        let mut lines = Lines { b: head, at: 0 };
        // Blank lines before the start line (left over after a body).
        let mut first = None;
        for (s, e) in lines.by_ref() {
            if e > s {
                first = Some((s, e));
                break;
            }
        }
        let Some((s, e)) = first else {
            return;
        };
        self.line = Span::new(s, e);
        self.start_line(head, s, e, request);
        let mut last: Option<usize> = None;
        for (s, e) in lines {
            if e == s {
                break;
            }
            let line = &head[s..e];
            if matches!(line[0], b' ' | b'\t') {
                // A folded line continues the field before it.
                match last {
                    Some(i) if self.fields.len() == i + 1 => {
                        let v = trim(line);
                        if !v.is_empty() {
                            self.values.push(b' ');
                            self.values.extend_from_slice(v);
                            self.fields[i].value.end = self.values.len() as u32;
                        }
                    }
                    _ => self.note(HttpAnomaly::InvalidFolding),
                }
                continue;
            }
            let Some(colon) = line.iter().position(|&c| c == b':') else {
                self.note(HttpAnomaly::HeaderWithoutColon);
                continue;
            };
            let name = &line[..colon];
            let name_end = s + name
                .iter()
                .rposition(|c| !c.is_ascii_whitespace())
                .map_or(0, |i| i + 1);
            if name_end - s != colon || name.is_empty() {
                self.note(HttpAnomaly::InvalidHeaderName);
            }
            if self.fields.len() == MAX_FIELDS {
                self.note(HttpAnomaly::TooManyHeaders);
                continue;
            }
            let v = trim(&line[colon + 1..]);
            let vs = self.values.len();
            self.values.extend_from_slice(v);
            self.fields.push(Field {
                name: Span::new(s, name_end),
                value: Span::new(vs, self.values.len()),
            });
            last = Some(self.fields.len() - 1);
        }
    }

    fn start_line(&mut self, head: &[u8], s: usize, e: usize, request: bool) {
        // Words split by runs of spaces and tabs; the third part runs to
        // the end of the line (a status message has spaces).
        let mut i = s;
        let ws = |c: u8| c == b' ' || c == b'\t';
        for k in 0..3 {
            while i < e && ws(head[i]) {
                i += 1;
            }
            let st = i;
            if k == 2 {
                let mut end = e;
                while end > st && ws(head[end - 1]) {
                    end -= 1;
                }
                self.parts[k] = Span::new(st, end);
                break;
            }
            while i < e && !ws(head[i]) {
                i += 1;
            }
            self.parts[k] = Span::new(st, i);
        }
        if request {
            // A request line's protocol is one word.
            let p = self.parts[2];
            if p.of(head).iter().any(|&c| ws(c)) {
                self.note(HttpAnomaly::InvalidRequestLine);
            }
            if self.parts[1].is_empty() {
                self.note(HttpAnomaly::InvalidRequestLine);
            }
        } else {
            let proto = self.parts[0].of(head);
            if !proto.starts_with(b"HTTP/") {
                self.note(HttpAnomaly::InvalidResponseLine);
            }
            if status_code(self.parts[1].of(head)).is_none() {
                self.note(HttpAnomaly::InvalidStatus);
            }
        }
    }
}

/// A three-digit status code.
pub fn status_code(b: &[u8]) -> Option<u16> {
    if b.len() != 3 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(b.iter().fold(0u16, |a, &d| a * 10 + u16::from(d - b'0')))
}

/// `b` without the ASCII whitespace at either end.
pub fn trim(b: &[u8]) -> &[u8] {
    let s = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let e = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(s, |i| i + 1);
    &b[s..e.max(s)]
}

/// Lines of a head: (start, end) without the line end (LF or CRLF).
struct Lines<'a> {
    b: &'a [u8],
    at: usize,
}

impl Iterator for Lines<'_> {
    type Item = (usize, usize);
    fn next(&mut self) -> Option<(usize, usize)> {
        if self.at >= self.b.len() {
            return None;
        }
        let s = self.at;
        let nl = self.b[s..].iter().position(|&c| c == b'\n');
        let (mut e, next) = match nl {
            Some(i) => (s + i, s + i + 1),
            None => (self.b.len(), self.b.len()),
        };
        if e > s && self.b[e - 1] == b'\r' {
            e -= 1;
        }
        self.at = next;
        Some((s, e))
    }
}

/// Whether `b` opens with a request method this parser takes: a token of
/// upper-case letters (and `-`, `_`) followed by a space. A method not
/// in this list still parses once the direction is HTTP.
pub fn looks_like_request(b: &[u8]) -> Probe {
    const METHODS: [&[u8]; 16] = [
        b"GET",
        b"POST",
        b"PUT",
        b"HEAD",
        b"DELETE",
        b"OPTIONS",
        b"PATCH",
        b"CONNECT",
        b"TRACE",
        b"PROPFIND",
        b"PROPPATCH",
        b"MKCOL",
        b"COPY",
        b"MOVE",
        b"LOCK",
        b"UNLOCK",
    ];
    // Case does not matter, as Suricata's detection patterns ignore it (a
    // client that sends `post` is still speaking HTTP).
    let word_end = b.iter().position(|&c| c == b' ' || c == b'\t');
    match word_end {
        Some(n) if METHODS.iter().any(|m| m.eq_ignore_ascii_case(&b[..n])) => Probe::Yes,
        Some(_) => Probe::No,
        None if b.len() < 8
            && METHODS
                .iter()
                .any(|m| m.len() >= b.len() && m[..b.len()].eq_ignore_ascii_case(b)) =>
        {
            Probe::More
        }
        None => Probe::No,
    }
}

/// Whether `b` opens with a status line.
pub fn looks_like_response(b: &[u8]) -> Probe {
    const P: &[u8] = b"HTTP/";
    if b.len() < P.len() {
        return if P.starts_with(b) {
            Probe::More
        } else {
            Probe::No
        };
    }
    if b.starts_with(P) {
        Probe::Yes
    } else {
        Probe::No
    }
}

/// What a probe on a direction's first bytes says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    Yes,
    No,
    /// Too few bytes to say.
    More,
}

/// Normalises a request URI's path and query as libhtp's defaults do:
/// `%XX` and `%uXXXX` decoded (a `%u` code point past one byte keeps its
/// low byte, as libhtp's best-fit map does for ASCII), runs of `/`
/// collapsed, `.` and `..` segments removed; an absolute URI
/// (`http://host/path`) keeps only its path and query. Writes to `out`;
/// `tmp` is working room.
pub fn normalize_uri(raw: &[u8], out: &mut Vec<u8>, tmp: &mut Vec<u8>) {
    out.clear();
    tmp.clear();
    let mut uri = raw;
    // Absolute form: scheme://authority/path → /path.
    if let Some(i) = find(uri, b"://") {
        if i > 0
            && uri[..i]
                .iter()
                .all(|c| c.is_ascii_alphanumeric() || b"+-.".contains(c))
        {
            let rest = &uri[i + 3..];
            uri = match rest.iter().position(|&c| c == b'/' || c == b'?') {
                Some(p) => &rest[p..],
                None => b"/",
            };
        }
    }
    let (path, query) = match uri.iter().position(|&c| c == b'?') {
        Some(q) => (&uri[..q], Some(&uri[q..])),
        None => (uri, None),
    };
    // Decode the path first, then remove dot segments on the decoded
    // path (an encoded `%2e%2e` climbs as `..` does).
    percent_decode(path, tmp);
    remove_dots(tmp, out);
    if let Some(q) = query {
        percent_decode(q, out);
    }
}

fn find(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).position(|w| w == n)
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// `%XX` and `%uXXXX` decoded; an invalid escape is kept as written.
pub fn percent_decode(b: &[u8], out: &mut Vec<u8>) {
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'%' {
            if let (Some(&u), Some(h)) = (b.get(i + 1), b.get(i + 2..i + 6)) {
                if (u == b'u' || u == b'U') && h.iter().all(u8::is_ascii_hexdigit) {
                    let lo = hex(h[2]).unwrap_or(0) << 4 | hex(h[3]).unwrap_or(0);
                    let hi = hex(h[0]).unwrap_or(0) << 4 | hex(h[1]).unwrap_or(0);
                    // libhtp's best fit: U+FFxx full-width ASCII maps down.
                    out.push(if hi == 0 || hi == 0xff { lo } else { b'?' });
                    i += 6;
                    continue;
                }
            }
            if let (Some(h), Some(l)) = (
                b.get(i + 1).and_then(|&x| hex(x)),
                b.get(i + 2).and_then(|&x| hex(x)),
            ) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
}

/// RFC 3986's remove_dot_segments, with runs of `/` collapsed first.
fn remove_dots(path: &[u8], out: &mut Vec<u8>) {
    let base = out.len();
    let absolute = path.first() == Some(&b'/');
    for seg in path.split(|&c| c == b'/') {
        match seg {
            b"" | b"." => continue,
            b".." => {
                let keep = out[base..].iter().rposition(|&c| c == b'/').unwrap_or(0);
                out.truncate(base + keep);
            }
            s => {
                if out.len() > base || absolute {
                    out.push(b'/');
                }
                out.extend_from_slice(s);
            }
        }
    }
    let trailing =
        path.len() > 1 && (path.ends_with(b"/") || path.ends_with(b"/.") || path.ends_with(b"/.."));
    if (out.len() == base && absolute) || (out.len() > base && trailing) {
        out.push(b'/');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_head_with_folding_and_bare_lf() {
        let head = b"\r\nGET /a%20b HTTP/1.1\r\nHost: Example.COM:8080\r\nX-Long: one\r\n  two\nUser-Agent:  curl/8 \r\nCookie: a=1\r\ncookie: b=2\r\n\r\n";
        let mut h = HeadIndex::with_capacity(256);
        h.parse(head, true);
        assert_eq!(h.line.of(head), b"GET /a%20b HTTP/1.1");
        assert_eq!(h.parts[0].of(head), b"GET");
        assert_eq!(h.parts[1].of(head), b"/a%20b");
        assert_eq!(h.parts[2].of(head), b"HTTP/1.1");
        assert_eq!(h.first(head, b"x-long"), Some(&b"one two"[..]));
        assert_eq!(h.first(head, b"user-agent"), Some(&b"curl/8"[..]));
        let mut out = Vec::new();
        assert!(h.get_into(head, b"Cookie", &mut out));
        assert_eq!(out, b"a=1, b=2");
        assert_eq!(h.anomalies, 0);
    }

    #[test]
    fn oddities_are_named() {
        let head = b"HTTP/1.1 2x0 OK\r\nNo colon here\r\nBad Name : v\r\n\r\n";
        let mut h = HeadIndex::with_capacity(64);
        h.parse(head, false);
        assert!(h.has(HttpAnomaly::InvalidStatus));
        assert!(h.has(HttpAnomaly::HeaderWithoutColon));
        assert!(h.has(HttpAnomaly::InvalidHeaderName));
        assert_eq!(h.first(head, b"bad name"), Some(&b"v"[..]));
    }

    #[test]
    fn uris_normalise_as_libhtp_does() {
        let (mut out, mut tmp) = (Vec::new(), Vec::new());
        let cases: [(&[u8], &[u8]); 8] = [
            (b"/a%20b", b"/a b"),
            (b"/a//b/./c/../d", b"/a/b/d"),
            (b"/%2e%2e/etc/passwd", b"/etc/passwd"),
            (b"/x/%u0041", b"/x/A"),
            (b"http://h.example/p?q=%41", b"/p?q=A"),
            (b"/dir/", b"/dir/"),
            (b"/", b"/"),
            (b"/a?b=../c", b"/a?b=../c"),
        ];
        for (raw, want) in cases {
            normalize_uri(raw, &mut out, &mut tmp);
            assert_eq!(out, want, "{}", String::from_utf8_lossy(raw));
        }
    }

    #[test]
    fn probes() {
        assert_eq!(looks_like_request(b"GET / HTTP/1.1"), Probe::Yes);
        assert_eq!(looks_like_request(b"PO"), Probe::More);
        // Any case, as Suricata detects it (recorded clients send `post`).
        assert_eq!(looks_like_request(b"post /v1 HTTP/1.1"), Probe::Yes);
        assert_eq!(looks_like_request(b"po"), Probe::More);
        assert_eq!(looks_like_request(b"\x16\x03\x01"), Probe::No);
        assert_eq!(looks_like_response(b"HTTP/1.0 200"), Probe::Yes);
        assert_eq!(looks_like_response(b"HT"), Probe::More);
    }
}
