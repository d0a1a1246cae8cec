//! `multipart/form-data` request bodies (RFC 7578): how browsers, `curl
//! -F` and model-registry clients upload files. Each part that names a
//! `filename` is a file of the transaction (`file.data`, `file.name`, a
//! `fileinfo` event), as Suricata tracks them; parts without one are form
//! fields. Parsed from the request body as stored (after de-chunking and
//! decompression), without allocating: a part cut by the body limit or
//! the connection's end is a file that is not closed.

use memchr::memmem;

/// Longest boundary taken (RFC 2046 allows 70; some clients send more).
pub const BOUNDARY_MAX: usize = 200;

/// The `filename` of a Content-Disposition among header fields given as
/// `http.header` gives them ("Name: value\r\n" each).
pub fn disposition_filename(headers: &[u8]) -> Option<&[u8]> {
    const CD: &[u8] = b"content-disposition:";
    let line = headers
        .split(|&c| c == b'\n')
        .find(|l| l.len() > CD.len() && l[..CD.len()].eq_ignore_ascii_case(CD))?;
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let v = &line[CD.len()..];
    param(&v[v.iter().position(|&c| c == b';')?..], b"filename")
}

/// The boundary of a `multipart/form-data` Content-Type value, if it is
/// one.
pub fn boundary(content_type: &[u8]) -> Option<&[u8]> {
    let ct = content_type.trim_ascii_start();
    const MT: &[u8] = b"multipart/form-data";
    if ct.len() < MT.len() || !ct[..MT.len()].eq_ignore_ascii_case(MT) {
        return None;
    }
    let v = param(&ct[MT.len()..], b"boundary")?;
    (!v.is_empty() && v.len() <= BOUNDARY_MAX).then_some(v)
}

/// The value of parameter `name` in `; a=b; name="value"`, unquoted.
fn param<'a>(params: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    let mut rest = params;
    while !rest.is_empty() {
        // Up to the next ';' outside quotes.
        let mut quoted = false;
        let end = rest
            .iter()
            .position(|&c| {
                if c == b'"' {
                    quoted = !quoted;
                }
                c == b';' && !quoted
            })
            .unwrap_or(rest.len());
        let item = rest[..end].trim_ascii();
        rest = rest.get(end + 1..).unwrap_or(&[]);
        let Some(eq) = item.iter().position(|&c| c == b'=') else {
            continue;
        };
        if !item[..eq].trim_ascii().eq_ignore_ascii_case(name) {
            continue;
        }
        let v = item[eq + 1..].trim_ascii();
        return Some(match v.strip_prefix(b"\"") {
            Some(q) => &q[..q.iter().position(|&c| c == b'"').unwrap_or(q.len())],
            None => v,
        });
    }
    None
}

/// One part of a multipart body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Part<'a> {
    /// The form field's name and the file's name (Content-Disposition).
    pub name: Option<&'a [u8]>,
    pub filename: Option<&'a [u8]>,
    /// Its content (without the line end before the next delimiter).
    pub data: &'a [u8],
    /// Its closing delimiter was seen (else the body ended inside it).
    pub closed: bool,
}

/// The parts of `body`, in order.
pub fn parts<'a>(body: &'a [u8], boundary: &'a [u8]) -> Parts<'a> {
    Parts {
        body,
        at: first_delimiter(body, boundary),
        boundary,
    }
}

/// Where the first delimiter line starts (`--boundary` at the body's
/// start or after a line end; a preamble before it is skipped).
fn first_delimiter(body: &[u8], boundary: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = memmem::find(&body[from..], b"--").map(|i| i + from) {
        let at_line = i == 0 || body[i - 1] == b'\n';
        if at_line && body[i + 2..].starts_with(boundary) {
            return Some(i);
        }
        from = i + 1;
    }
    None
}

pub struct Parts<'a> {
    body: &'a [u8],
    /// Where the next delimiter line starts.
    at: Option<usize>,
    boundary: &'a [u8],
}

impl<'a> Iterator for Parts<'a> {
    type Item = Part<'a>;

    fn next(&mut self) -> Option<Part<'a>> {
        let body = self.body;
        let start = self.at.take()? + 2 + self.boundary.len();
        let after = &body[start..];
        if after.starts_with(b"--") {
            return None; // the close delimiter
        }
        // The rest of the delimiter line (transport padding), then the
        // part's header lines up to a blank one.
        let line_end = start + memchr::memchr(b'\n', after)? + 1;
        let mut name = None;
        let mut filename = None;
        let mut at = line_end;
        loop {
            let rest = &body[at..];
            let eol = memchr::memchr(b'\n', rest)?;
            let line = rest[..eol].strip_suffix(b"\r").unwrap_or(&rest[..eol]);
            at += eol + 1;
            if line.is_empty() {
                break;
            }
            const CD: &[u8] = b"content-disposition:";
            if line.len() > CD.len() && line[..CD.len()].eq_ignore_ascii_case(CD) {
                let v = &line[CD.len()..];
                let params = &v[v.iter().position(|&c| c == b';').unwrap_or(v.len())..];
                name = param(params, b"name");
                filename = param(params, b"filename");
            }
        }
        // The data runs to the line end before the next delimiter.
        let data_from = at;
        // (From the blank line's own line end: an empty part's delimiter
        // follows it directly.)
        let mut search = data_from - 1;
        loop {
            let Some(i) = memmem::find(&body[search..], b"\n--").map(|i| i + search) else {
                return Some(Part {
                    name,
                    filename,
                    data: &body[data_from..],
                    closed: false,
                });
            };
            if body[i + 3..].starts_with(self.boundary) {
                let end = if i > data_from && body[i - 1] == b'\r' {
                    i - 1
                } else {
                    i
                };
                self.at = Some(i + 1);
                return Some(Part {
                    name,
                    filename,
                    data: &body[data_from..end.max(data_from)],
                    closed: true,
                });
            }
            search = i + 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: &[u8] = b"------------------------DGoa8IkJzGtIQpK8j2fLTv";

    fn body() -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(b"preamble\r\n--");
        b.extend_from_slice(B);
        b.extend_from_slice(b"\r\nContent-Disposition: form-data; name=\"upload1\"; filename=\"toto.txt\"\r\nContent-Type: text/plain\r\n\r\ntoto est dans un bateau\n\r\n--");
        b.extend_from_slice(B);
        b.extend_from_slice(b"\r\ncontent-disposition: form-data; name=field\r\n\r\nvalue with\r\n--not the boundary\r\n--");
        b.extend_from_slice(B);
        b.extend_from_slice(b"\r\nContent-Disposition: form-data; name=\"upload2\"; filename=\"a;b.bin\"\r\n\r\n\x80\x02cos\nsystem\n\r\n--");
        b.extend_from_slice(B);
        b.extend_from_slice(
            b"\r\nContent-Disposition: form-data; name=\"empty\"; filename=\"e\"\r\n\r\n--",
        );
        b.extend_from_slice(B);
        b.extend_from_slice(b"--\r\nepilogue");
        b
    }

    #[test]
    fn the_boundary_is_read_from_the_content_type() {
        let ct = b"multipart/form-data; boundary=------------------------DGoa8IkJzGtIQpK8j2fLTv";
        assert_eq!(boundary(ct), Some(B));
        assert_eq!(
            boundary(b"Multipart/Form-Data;charset=x; BOUNDARY=\"a b;c\""),
            Some(&b"a b;c"[..])
        );
        assert_eq!(boundary(b"multipart/mixed; boundary=x"), None);
        assert_eq!(boundary(b"multipart/form-data"), None);
        assert_eq!(boundary(b"multipart/form-data; boundary="), None);
        assert_eq!(boundary(b"application/json"), None);
    }

    #[test]
    fn parts_with_their_names_and_data() {
        let b = body();
        let got: Vec<Part<'_>> = parts(&b, B).collect();
        assert_eq!(got.len(), 4);
        assert_eq!(got[0].name, Some(&b"upload1"[..]));
        assert_eq!(got[0].filename, Some(&b"toto.txt"[..]));
        assert_eq!(got[0].data, b"toto est dans un bateau\n");
        assert!(got[0].closed);
        assert_eq!((got[1].name, got[1].filename), (Some(&b"field"[..]), None));
        assert_eq!(got[1].data, b"value with\r\n--not the boundary");
        assert_eq!(got[2].filename, Some(&b"a;b.bin"[..]));
        assert_eq!(got[2].data, b"\x80\x02cos\nsystem\n");
        assert_eq!((got[3].filename, got[3].data), (Some(&b"e"[..]), &b""[..]));
    }

    #[test]
    fn a_body_cut_short_leaves_its_last_part_open() {
        let b = body();
        let at = memmem::find(&b, b"system").unwrap();
        let got: Vec<Part<'_>> = parts(&b[..at], B).collect();
        assert_eq!(got.len(), 3);
        assert!(!got[2].closed);
        // Cut inside a part's headers: that part is not there.
        let at = memmem::find(&b, b"filename=\"a;b").unwrap();
        assert_eq!(parts(&b[..at], B).count(), 2);
        // Nothing but garbage, or an empty body: no parts, no panic.
        assert_eq!(parts(b"--", B).count(), 0);
        assert_eq!(parts(b"", B).count(), 0);
        for n in 0..b.len() {
            let _ = parts(&b[..n], B).count();
        }
    }
}
