//! DNS messages (RFC 1035 and the record types a SOC reads), parsed into
//! a `Message` the caller keeps and reuses: names are decompressed into
//! one arena, so parsing allocates nothing once the arena has grown to a
//! message's worth. Compression pointers may only point backwards and at
//! most `MAX_HOPS` of them are followed per name, so a loop or a chain
//! cannot hold a worker; every malformed message is an error by reason.
//! Over TCP, messages are length-prefixed (`TcpFramer`).

/// Pointer hops followed in one name at most.
pub const MAX_HOPS: usize = 32;
/// A name's longest presentation (RFC 1035: 255 octets on the wire).
pub const MAX_NAME: usize = 255;
/// Records of each section kept (more are counted, not kept).
pub const MAX_RECORDS: usize = 64;

/// Why a message was not parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DnsError {
    /// Shorter than its header or its sections say.
    Truncated,
    /// A compression pointer that points forward, or past `MAX_HOPS`.
    PointerLoop,
    /// A name longer than 255 octets.
    NameTooLong,
    /// A label type that is neither a length nor a pointer.
    BadLabel,
}

impl DnsError {
    pub const ALL: [DnsError; 4] = [
        DnsError::Truncated,
        DnsError::PointerLoop,
        DnsError::NameTooLong,
        DnsError::BadLabel,
    ];

    /// The counter name (`app_layer.dns.errors.NAME`).
    pub fn name(self) -> &'static str {
        match self {
            DnsError::Truncated => "truncated",
            DnsError::PointerLoop => "pointer_loop",
            DnsError::NameTooLong => "name_too_long",
            DnsError::BadLabel => "bad_label",
        }
    }
}

/// A name in the message's arena.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Name {
    pub start: u32,
    pub len: u16,
}

/// What a record's data says, for the types a SOC reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rdata {
    A([u8; 4]),
    Aaaa([u8; 16]),
    /// CNAME, NS, PTR, and the target of MX, SRV, HTTPS and SVCB.
    Name(Name),
    /// TXT: its strings joined (in the arena), as Suricata logs them.
    Text(Name),
    Soa {
        mname: Name,
        rname: Name,
        serial: u32,
    },
    /// Any other type (OPT among them): its length.
    Other(u16),
}

/// One resource record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record {
    pub name: Name,
    pub rrtype: u16,
    pub class: u16,
    pub ttl: u32,
    pub data: Rdata,
}

/// One question.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Question {
    pub name: Name,
    pub rrtype: u16,
    pub class: u16,
}

/// A parsed message; kept by its caller and reused.
#[derive(Debug, Default)]
pub struct Message {
    pub id: u16,
    pub flags: u16,
    pub questions: Vec<Question>,
    pub answers: Vec<Record>,
    pub authorities: Vec<Record>,
    pub additionals: Vec<Record>,
    /// Records past `MAX_RECORDS` per section, counted.
    pub dropped: u32,
    names: Vec<u8>,
    /// Where the last message parsed ended.
    end: usize,
}

impl Message {
    /// Room for a message of `names` bytes of names without growing.
    pub fn with_capacity(names: usize) -> Message {
        Message {
            questions: Vec::with_capacity(MAX_RECORDS),
            answers: Vec::with_capacity(MAX_RECORDS),
            authorities: Vec::with_capacity(MAX_RECORDS),
            additionals: Vec::with_capacity(MAX_RECORDS),
            names: Vec::with_capacity(names),
            ..Message::default()
        }
    }

    /// A name (or TXT text) as bytes: labels joined with dots, lower case
    /// kept as sent.
    pub fn name(&self, n: Name) -> &[u8] {
        let s = n.start as usize;
        self.names.get(s..s + usize::from(n.len)).unwrap_or(&[])
    }

    pub fn is_response(&self) -> bool {
        self.flags & 0x8000 != 0
    }

    pub fn opcode(&self) -> u8 {
        ((self.flags >> 11) & 0x0f) as u8
    }

    pub fn rcode(&self) -> u8 {
        (self.flags & 0x0f) as u8
    }

    /// Parses `buf` (one message, without a TCP length prefix) into self.
    pub fn parse(&mut self, buf: &[u8]) -> Result<(), DnsError> {
        self.questions.clear();
        self.answers.clear();
        self.authorities.clear();
        self.additionals.clear();
        self.names.clear();
        self.dropped = 0;
        let h = buf.get(..12).ok_or(DnsError::Truncated)?;
        let be16 = |b: &[u8]| u16::from_be_bytes([b[0], b[1]]);
        self.id = be16(&h[0..2]);
        self.flags = be16(&h[2..4]);
        let counts = [
            be16(&h[4..6]),
            be16(&h[6..8]),
            be16(&h[8..10]),
            be16(&h[10..12]),
        ];
        let mut at = 12;
        for _ in 0..counts[0] {
            let name = self.read_name(buf, &mut at)?;
            let t = buf.get(at..at + 4).ok_or(DnsError::Truncated)?;
            at += 4;
            let q = Question {
                name,
                rrtype: be16(&t[0..2]),
                class: be16(&t[2..4]),
            };
            if self.questions.len() < MAX_RECORDS {
                self.questions.push(q);
            } else {
                self.dropped += 1;
            }
        }
        for (section, &n) in counts[1..].iter().enumerate() {
            for _ in 0..n {
                let r = self.read_record(buf, &mut at)?;
                let list = match section {
                    0 => &mut self.answers,
                    1 => &mut self.authorities,
                    _ => &mut self.additionals,
                };
                if list.len() < MAX_RECORDS {
                    list.push(r);
                } else {
                    self.dropped += 1;
                }
            }
        }
        self.end = at;
        Ok(())
    }

    /// Whether `buf` parses as one message with nothing after it.
    pub fn parse_exact(&mut self, buf: &[u8]) -> bool {
        self.parse(buf).is_ok() && self.end == buf.len()
    }

    fn read_record(&mut self, buf: &[u8], at: &mut usize) -> Result<Record, DnsError> {
        let be16 = |b: &[u8]| u16::from_be_bytes([b[0], b[1]]);
        let name = self.read_name(buf, at)?;
        let f = buf.get(*at..*at + 10).ok_or(DnsError::Truncated)?;
        let (rrtype, class) = (be16(&f[0..2]), be16(&f[2..4]));
        let ttl = u32::from_be_bytes([f[4], f[5], f[6], f[7]]);
        let len = usize::from(be16(&f[8..10]));
        let start = *at + 10;
        let rd = buf.get(start..start + len).ok_or(DnsError::Truncated)?;
        *at = start + len;
        // A name inside the data may point anywhere before it.
        let mut p = start;
        let data = match rrtype {
            1 if len == 4 => Rdata::A([rd[0], rd[1], rd[2], rd[3]]),
            28 if len == 16 => {
                let mut a = [0u8; 16];
                a.copy_from_slice(rd);
                Rdata::Aaaa(a)
            }
            2 | 5 | 12 => Rdata::Name(self.read_name(buf, &mut p)?),
            15 if len >= 3 => {
                p += 2;
                Rdata::Name(self.read_name(buf, &mut p)?)
            }
            33 if len >= 7 => {
                p += 6;
                Rdata::Name(self.read_name(buf, &mut p)?)
            }
            // HTTPS and SVCB: priority, then the target (never compressed).
            64 | 65 if len >= 3 => {
                p += 2;
                Rdata::Name(self.read_name(buf, &mut p)?)
            }
            6 => {
                let mname = self.read_name(buf, &mut p)?;
                let rname = self.read_name(buf, &mut p)?;
                let s = buf.get(p..p + 4).ok_or(DnsError::Truncated)?;
                Rdata::Soa {
                    mname,
                    rname,
                    serial: u32::from_be_bytes([s[0], s[1], s[2], s[3]]),
                }
            }
            16 => {
                let begin = self.names.len();
                let mut i = 0;
                while i < rd.len() {
                    let n = usize::from(rd[i]);
                    let s = rd.get(i + 1..i + 1 + n).ok_or(DnsError::Truncated)?;
                    self.names.extend_from_slice(s);
                    i += 1 + n;
                }
                Rdata::Text(Name {
                    start: begin as u32,
                    len: u16::try_from(self.names.len() - begin).unwrap_or(u16::MAX),
                })
            }
            _ => Rdata::Other(len as u16),
        };
        if p > start + len {
            // A name inside the data ran past the data.
            return Err(DnsError::Truncated);
        }
        Ok(Record {
            name,
            rrtype,
            class,
            ttl,
            data,
        })
    }

    /// Reads the name at `*at` (moving `*at` past it, not past what its
    /// pointers point at) into the arena.
    fn read_name(&mut self, buf: &[u8], at: &mut usize) -> Result<Name, DnsError> {
        let begin = self.names.len();
        let mut p = *at;
        let mut jumped = false;
        let mut hops = 0;
        // A pointer must point before the place it is read at, so a chain
        // of them always ends.
        let mut limit = p;
        loop {
            let len = *buf.get(p).ok_or(DnsError::Truncated)?;
            match len >> 6 {
                0 if len == 0 => {
                    if !jumped {
                        *at = p + 1;
                    }
                    break;
                }
                0 => {
                    let l = usize::from(len);
                    let label = buf.get(p + 1..p + 1 + l).ok_or(DnsError::Truncated)?;
                    if self.names.len() > begin {
                        self.names.push(b'.');
                    }
                    self.names.extend_from_slice(label);
                    if self.names.len() - begin > MAX_NAME {
                        return Err(DnsError::NameTooLong);
                    }
                    p += 1 + l;
                }
                3 => {
                    let lo = *buf.get(p + 1).ok_or(DnsError::Truncated)?;
                    let target = usize::from(u16::from_be_bytes([len & 0x3f, lo]));
                    hops += 1;
                    if target >= limit || hops > MAX_HOPS {
                        return Err(DnsError::PointerLoop);
                    }
                    if !jumped {
                        *at = p + 2;
                        jumped = true;
                    }
                    limit = target;
                    p = target;
                }
                _ => return Err(DnsError::BadLabel),
            }
        }
        Ok(Name {
            start: begin as u32,
            len: (self.names.len() - begin) as u16,
        })
    }
}

/// DNS over TCP: each message after a two-byte length. Feeds bytes in
/// order and hands out whole messages, holding at most one partial one
/// (up to its 65,535 bytes).
#[derive(Debug, Default)]
pub struct TcpFramer {
    partial: Vec<u8>,
}

impl TcpFramer {
    /// Calls `f` with each whole message `data` completes, in order.
    pub fn feed(&mut self, mut data: &[u8], mut f: impl FnMut(&[u8])) {
        while !data.is_empty() {
            if self.partial.is_empty() {
                // Whole messages straight from the delivery.
                if data.len() >= 2 {
                    let n = usize::from(u16::from_be_bytes([data[0], data[1]]));
                    if data.len() >= 2 + n {
                        f(&data[2..2 + n]);
                        data = &data[2 + n..];
                        continue;
                    }
                }
                self.partial.extend_from_slice(data);
                return;
            }
            if self.partial.len() < 2 {
                let take = (2 - self.partial.len()).min(data.len());
                self.partial.extend_from_slice(&data[..take]);
                data = &data[take..];
                continue;
            }
            let n = usize::from(u16::from_be_bytes([self.partial[0], self.partial[1]]));
            let need = 2 + n - self.partial.len();
            let take = need.min(data.len());
            self.partial.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.partial.len() == 2 + n {
                f(&self.partial[2..]);
                self.partial.clear();
            }
        }
    }

    /// Bytes were lost: the partial message goes, and what follows is
    /// taken as starting a message.
    pub fn gap(&mut self) {
        self.partial.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A query for `name` (type A), id 0x1234.
    fn query(name: &str) -> Vec<u8> {
        let mut m = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        for l in name.split('.') {
            m.push(l.len() as u8);
            m.extend_from_slice(l.as_bytes());
        }
        m.extend_from_slice(&[0, 0, 1, 0, 1]);
        m
    }

    /// The response to `query(name)`: a CNAME to `cdn.` + name and an A
    /// record for it, both by compression pointers, and a TXT.
    fn response(name: &str) -> Vec<u8> {
        let mut m = query(name);
        m[2] = 0x81;
        m[3] = 0x80;
        m[7] = 3; // answers
                  // CNAME: name -> "cdn" + pointer to the question's name (12).
        m.extend_from_slice(&[
            0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 60, 0, 6, 3, b'c', b'd', b'n', 0xc0, 12,
        ]);
        let cname_at = m.len() - 6;
        // A for the CNAME target, by a pointer to it.
        m.extend_from_slice(&[
            0xc0,
            cname_at as u8,
            0,
            1,
            0,
            1,
            0,
            0,
            1,
            0,
            0,
            4,
            104,
            18,
            32,
            7,
        ]);
        // TXT with two strings.
        m.extend_from_slice(&[
            0xc0, 12, 0, 16, 0, 1, 0, 0, 0, 5, 0, 8, 3, b'a', b'b', b'c', 3, b'd', b'e', b'f',
        ]);
        m
    }

    #[test]
    fn a_query_and_its_compressed_response() {
        let mut m = Message::with_capacity(512);
        m.parse(&query("api.openai.com")).unwrap();
        assert!(!m.is_response());
        assert_eq!(m.questions.len(), 1);
        assert_eq!(m.name(m.questions[0].name), b"api.openai.com");
        assert_eq!(m.questions[0].rrtype, 1);
        m.parse(&response("api.openai.com")).unwrap();
        assert!(m.is_response());
        assert_eq!((m.rcode(), m.opcode()), (0, 0));
        assert_eq!(m.answers.len(), 3);
        let Rdata::Name(t) = m.answers[0].data else {
            panic!()
        };
        assert_eq!(m.name(t), b"cdn.api.openai.com");
        assert_eq!(m.name(m.answers[1].name), b"cdn.api.openai.com");
        assert_eq!(m.answers[1].data, Rdata::A([104, 18, 32, 7]));
        assert_eq!(m.answers[1].ttl, 256);
        let Rdata::Text(t) = m.answers[2].data else {
            panic!()
        };
        assert_eq!(m.name(t), b"abcdef");
    }

    #[test]
    fn loops_chains_and_cuts_are_errors_by_reason() {
        let mut m = Message::with_capacity(512);
        // A pointer to itself, and one pointing forward.
        let mut q = query("a.b");
        let at = q.len() - 5;
        q.truncate(at);
        q.extend_from_slice(&[0xc0, at as u8, 0, 1, 0, 1]);
        assert_eq!(m.parse(&q), Err(DnsError::PointerLoop));
        let mut q = query("a.b");
        q.truncate(12);
        q.extend_from_slice(&[0xc0, 40, 0, 1, 0, 1]);
        assert_eq!(m.parse(&q), Err(DnsError::PointerLoop));
        // Two pointers pointing at each other, behind the question.
        let mut q = vec![0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        q.extend_from_slice(&[0xc0, 14, 0xc0, 12, 0, 1, 0, 1]);
        q.truncate(12);
        q.extend_from_slice(&[1, b'x', 0xc0, 12, 0, 1, 0, 1]);
        assert_eq!(m.parse(&q), Err(DnsError::PointerLoop));
        // A name past 255 octets.
        let long = ["abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz0"; 5].join(".");
        assert_eq!(m.parse(&query(&long)), Err(DnsError::NameTooLong));
        // Label types 01 and 10.
        let mut q = query("a.b");
        q[12] = 0x41;
        assert_eq!(m.parse(&q), Err(DnsError::BadLabel));
        // Every cut of a good response: an error, never a panic.
        let r = response("api.openai.com");
        for n in 0..r.len() {
            assert!(m.parse(&r[..n]).is_err(), "{n}");
        }
        assert!(m.parse(&r).is_ok());
    }

    #[test]
    fn tcp_messages_whole_several_and_split() {
        let (a, b) = (query("one.example"), response("two.example"));
        let mut stream = Vec::new();
        for m in [&a, &b] {
            stream.extend_from_slice(&(m.len() as u16).to_be_bytes());
            stream.extend_from_slice(m);
        }
        // Two in one segment.
        let mut got = Vec::new();
        TcpFramer::default().feed(&stream, |m| got.push(m.to_vec()));
        assert_eq!(got, [a.clone(), b.clone()]);
        // Cut at every place, and byte by byte.
        for cut in 0..stream.len() {
            let mut f = TcpFramer::default();
            let mut got = Vec::new();
            f.feed(&stream[..cut], |m| got.push(m.to_vec()));
            f.feed(&stream[cut..], |m| got.push(m.to_vec()));
            assert_eq!(got, [a.clone(), b.clone()], "cut at {cut}");
        }
        let mut f = TcpFramer::default();
        let mut got = Vec::new();
        for byte in &stream {
            f.feed(std::slice::from_ref(byte), |m| got.push(m.to_vec()));
        }
        assert_eq!(got.len(), 2);
        // A gap drops the partial message; the next one stands.
        let mut f = TcpFramer::default();
        let mut got = Vec::new();
        f.feed(&stream[..10], |m| got.push(m.to_vec()));
        f.gap();
        f.feed(&stream[2 + a.len()..], |m| got.push(m.to_vec()));
        assert_eq!(got, [b]);
    }
}
