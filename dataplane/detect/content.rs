//! Content matching with Suricata's positional semantics, evaluated the way
//! Suricata's `DetectEngineContentInspection` walks a rule's keywords.
//!
//! A content without distance/within is absolute: it may match anywhere its
//! offset and depth allow. A content with distance or within is relative to
//! where the previous keyword left the pointer: its window starts at
//! `prev + distance` and, with `within`, ends at `prev + distance + within`.
//! A negated content must not occur in its window.
//!
//! When a later keyword fails, an earlier match is re-searched at its next
//! occurrence only where that could change the outcome, as Suricata does: a
//! content is retried when the next content after it has a `within` bound
//! (a later start can bring that window over a match), a pcre when a
//! relative keyword follows it. Anything else would only move later
//! windows further right and is not tried, so most chains run in linear
//! time. What remains (chains of `within`s over repetitive data) is
//! bounded by a per-evaluation step budget, Suricata's
//! `detect.inspection-recursion-limit`: past it the rule does not match
//! and the hit is counted.

use super::bytes::{ByteCheck, ByteVars, MAX_VARS};
use super::pcre::{PcreCheck, PcreFound};
use pcre2::bytes::Regex;

/// A condition in the content chain other than a content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    Bytes(ByteCheck),
    Pcre(PcreCheck),
    Asn1(super::asn1::Asn1Check),
    /// `base64_decode`: decodes from here into the rule's `base64_data`
    /// buffer, whose chain then decides (Suricata: a terminal list).
    Base64(Base64Decode),
}

/// `base64_decode:[bytes N][, offset N][, relative]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Base64Decode {
    /// Input bytes to decode at most (None: the rest of the buffer).
    pub bytes: Option<u32>,
    pub offset: u32,
    pub relative: bool,
}

impl Base64Decode {
    pub fn parse(v: &str) -> Result<Base64Decode, String> {
        let mut d = Base64Decode {
            bytes: None,
            offset: 0,
            relative: false,
        };
        for item in v.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (word, arg) = item
                .split_once(char::is_whitespace)
                .map_or((item, None), |(a, b)| (a, Some(b.trim())));
            let n = || {
                arg.and_then(|a| a.parse::<u32>().ok())
                    .ok_or_else(|| format!("base64_decode: `{item}`"))
            };
            match word {
                "bytes" => d.bytes = Some(n()?).filter(|&b| b > 0),
                "offset" => d.offset = n()?,
                "relative" => d.relative = true,
                _ => return Err(format!("base64_decode: `{item}`")),
            }
        }
        Ok(d)
    }

    /// Decodes what it names of `buf` (the pointer at `prev_end`) into
    /// `out`, as RFC 4648 base64: up to the first byte outside the
    /// alphabet or padding, a last partial group giving what it can.
    fn decode(&self, buf: &[u8], prev_end: usize, out: &mut Vec<u8>) {
        out.clear();
        let from = if self.relative { prev_end } else { 0 }.saturating_add(self.offset as usize);
        let Some(mut src) = buf.get(from..).filter(|s| !s.is_empty()) else {
            return;
        };
        if let Some(b) = self.bytes {
            src = &src[..src.len().min(b as usize)];
        }
        let max = out.capacity();
        base64_into(src, false, max, out);
    }
}

/// Standard base64 with padding.
pub fn base64_encode(b: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(b.len().div_ceil(3) * 4);
    for chunk in b.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// RFC 4648 base64 of `src` appended to `out`, at most `max` bytes in
/// all: up to the first byte outside the alphabet (padding ends it), or,
/// with `skip_invalid` (RFC 2045), past such bytes; a last partial group
/// gives what it can.
pub fn base64_into(src: &[u8], skip_invalid: bool, max: usize, out: &mut Vec<u8>) {
    let val = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let (mut acc, mut n) = (0u32, 0);
    for &c in src {
        let Some(v) = val(c) else {
            if skip_invalid && c != b'=' {
                continue;
            }
            break;
        };
        if out.len() + 3 > max {
            break;
        }
        acc = (acc << 6) | u32::from(v);
        n += 1;
        if n == 4 {
            out.extend_from_slice(&acc.to_be_bytes()[1..]);
            (acc, n) = (0, 0);
        }
    }
    match n {
        2 => out.push((acc >> 4) as u8),
        3 => out.extend_from_slice(&((acc >> 2) as u16).to_be_bytes()),
        _ => {}
    }
}

/// A rule's `base64_data` chain.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Base64Chain {
    pub contents: Vec<ContentMatch>,
    pub checks: Vec<(usize, Check)>,
}

/// Room for what one `base64_decode` decodes (Suricata bounds it too).
pub const BASE64_MAX: usize = 64 * 1024;

impl Check {
    fn relative(&self) -> bool {
        match self {
            Check::Bytes(b) => b.relative(),
            Check::Pcre(p) => p.relative,
            Check::Asn1(a) => a.relative(),
            Check::Base64(b) => b.relative,
        }
    }
}

/// One content condition of a rule, already decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentMatch {
    pub bytes: Vec<u8>,
    pub nocase: bool,
    pub negated: bool,
    pub offset: Option<u32>,
    pub depth: Option<u32>,
    pub distance: Option<i32>,
    pub within: Option<u32>,
    pub startswith: bool,
    pub endswith: bool,
    /// The next content or pcre after this one is a content with `within`:
    /// a failure further on retries this content at its next occurrence
    /// (Suricata's `CONTENT_WITHIN_NEXT`). Set by `link`.
    pub within_next: bool,
    /// Offset, depth, distance and within from the rule's variables
    /// (`byte_extract`, `byte_math`) instead of the numbers above.
    pub vars: PositionVars,
}

/// Which of a content's positions come from variables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PositionVars {
    pub offset: Option<u8>,
    pub depth: Option<u8>,
    pub distance: Option<u8>,
    pub within: Option<u8>,
}

impl ContentMatch {
    pub fn new(bytes: Vec<u8>, negated: bool) -> Self {
        ContentMatch {
            bytes,
            nocase: false,
            negated,
            offset: None,
            depth: None,
            distance: None,
            within: None,
            startswith: false,
            endswith: false,
            within_next: false,
            vars: PositionVars::default(),
        }
    }

    pub fn relative(&self) -> bool {
        self.distance.is_some()
            || self.within.is_some()
            || self.vars.distance.is_some()
            || self.vars.within.is_some()
    }

    /// The window `[lo, hi)` a match must lie in, given where the previous
    /// keyword left the pointer. `base` is where the buffer starts in its
    /// stream (0 for a packet): absolute offsets and depths count from the
    /// stream's start. None: no room at all.
    fn window(
        &self,
        buf_len: usize,
        prev_end: usize,
        base: usize,
        vars: &ByteVars,
    ) -> Option<(usize, usize)> {
        let var = |v: Option<u8>| v.map(|i| i64::from(vars[usize::from(i)] as i32));
        let offset = var(self.vars.offset).or(self.offset.map(i64::from));
        let depth = var(self.vars.depth).or(self.depth.map(i64::from));
        let distance = var(self.vars.distance).or(self.distance.map(i64::from));
        let within = var(self.vars.within).or(self.within.map(i64::from));
        let (mut lo, mut hi): (i64, i64) = (0, buf_len as i64);
        if self.relative() {
            let prev = prev_end as i64;
            let d = distance.unwrap_or(0);
            lo = (prev + d).max(0);
            if let Some(w) = within {
                // Within counts from where distance put the window's start.
                hi = hi.min(prev + d + w);
            }
            if let Some(dep) = depth {
                hi = hi.min(prev + dep);
            }
            if let Some(o) = offset {
                lo = lo.max(o);
            }
        } else {
            let base = base as i64;
            if let Some(o) = offset {
                lo = lo.max(o - base);
            }
            if let Some(d) = depth {
                let abs_end = offset.unwrap_or(0) + d;
                hi = hi.min(abs_end - base);
            }
        }
        if self.startswith {
            hi = hi.min(lo + self.bytes.len() as i64);
        }
        let hi = hi.min(buf_len as i64);
        (lo <= hi && hi > 0).then_some((lo as usize, hi as usize))
    }

    fn eq_at(&self, buf: &[u8], at: usize) -> bool {
        let n = self.bytes.len();
        buf.get(at..at + n).is_some_and(|w| {
            if self.nocase {
                w.eq_ignore_ascii_case(&self.bytes)
            } else {
                w == self.bytes.as_slice()
            }
        })
    }

    /// The first start position of this pattern wholly inside `[lo, hi)`.
    fn find(&self, buf: &[u8], lo: usize, hi: usize) -> Option<usize> {
        let n = self.bytes.len();
        let end = (hi + 1).checked_sub(n)?;
        if n == 0 {
            return (lo <= hi).then_some(lo);
        }
        let first = self.bytes[0];
        let mut at = lo;
        while at < end {
            // Skip to the next place the first byte matches.
            let rest = &buf[at..end];
            let step = if self.nocase {
                rest.iter().position(|b| b.eq_ignore_ascii_case(&first))
            } else {
                rest.iter().position(|&b| b == first)
            }?;
            at += step;
            if self.eq_at(buf, at) {
                return Some(at);
            }
            at += 1;
        }
        None
    }
}

/// Sets the flags that say which keywords a later failure may retry
/// (Suricata's `WITHIN_NEXT` and `RELATIVE_NEXT`); call once a rule's
/// chain is complete.
pub fn link(contents: &mut [ContentMatch], checks: &mut [(usize, Check)]) {
    // The chain in keyword order: `checks` with k sit before content k.
    #[derive(Clone, Copy)]
    enum Kw {
        Content(usize),
        Check(usize),
    }
    let mut order = Vec::with_capacity(contents.len() + checks.len());
    let mut j = 0;
    for i in 0..=contents.len() {
        while j < checks.len() && checks[j].0 <= i {
            order.push(Kw::Check(j));
            j += 1;
        }
        if i < contents.len() {
            order.push(Kw::Content(i));
        }
    }
    for c in contents.iter_mut() {
        c.within_next = false;
    }
    for (pos, kw) in order.iter().enumerate() {
        let later = &order[pos + 1..];
        match *kw {
            Kw::Content(i) => {
                // The next content or pcre.
                let next = later.iter().find(|k| match **k {
                    Kw::Content(_) => true,
                    Kw::Check(c) => matches!(checks[c].1, Check::Pcre(_)),
                });
                contents[i].within_next = matches!(next, Some(Kw::Content(n))
                        if contents[*n].within.is_some() || contents[*n].vars.within.is_some());
            }
            Kw::Check(c) => {
                if !matches!(checks[c].1, Check::Pcre(_)) {
                    continue;
                }
                // Any relative keyword up to and including the next
                // content or pcre depends on where this pcre matched.
                let mut dep = false;
                for k in later {
                    let (relative, stop) = match *k {
                        Kw::Content(n) => (contents[n].relative(), true),
                        Kw::Check(o) => (
                            checks[o].1.relative(),
                            matches!(checks[o].1, Check::Pcre(_)),
                        ),
                    };
                    dep |= relative;
                    if stop {
                        break;
                    }
                }
                if let Check::Pcre(p) = &mut checks[c].1 {
                    p.relative_next = dep;
                }
            }
        }
    }
}

/// Suricata's `detect.inspection-recursion-limit` default.
pub const RECURSION_LIMIT: u32 = 3000;

/// What content inspection counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InspectionCounters {
    /// Rule evaluations stopped by the step budget (no match).
    pub recursion_limit: u64,
    /// pcre searches stopped by PCRE2's match or depth limit (no match).
    pub pcre_limit: u64,
}

impl InspectionCounters {
    pub fn add(&mut self, o: &InspectionCounters) {
        self.recursion_limit += o.recursion_limit;
        self.pcre_limit += o.pcre_limit;
    }
}

/// One worker's means to evaluate content chains: its own copies of the
/// pcre expressions, the step budget and what ran into limits.
#[derive(Debug, Clone)]
pub struct Inspection {
    pub regexes: Vec<Regex>,
    /// Keyword evaluations one rule may take on one buffer.
    pub recursion_limit: u32,
    pub counters: InspectionCounters,
    /// Where `base64_decode` decodes to (allocated once, `BASE64_MAX`).
    base64: Vec<u8>,
}

impl Inspection {
    pub fn new(regexes: Vec<Regex>, recursion_limit: u32) -> Self {
        Inspection {
            regexes,
            recursion_limit: recursion_limit.max(1),
            counters: InspectionCounters::default(),
            base64: Vec::with_capacity(BASE64_MAX),
        }
    }
}

impl Default for Inspection {
    fn default() -> Self {
        Inspection::new(Vec::new(), RECURSION_LIMIT)
    }
}

/// Whether all `contents` hold on `buf` (tests and tools).
pub fn matches(contents: &[ContentMatch], buf: &[u8]) -> bool {
    let mut contents = contents.to_vec();
    link(&mut contents, &mut []);
    matches_at(&contents, &[], &mut Inspection::default(), buf, 0)
}

/// Whether all `contents` and `checks` hold on `buf`. A check `(k, c)`
/// runs once the first `k` contents have matched, from where the k-th left
/// the pointer. The chain must have been through `link`.
pub fn matches_with(
    contents: &[ContentMatch],
    checks: &[(usize, Check)],
    cx: &mut Inspection,
    buf: &[u8],
) -> bool {
    matches_at(contents, checks, cx, buf, 0)
}

/// `matches_with` on a window of a stream that starts at stream offset
/// `base`: absolute offsets and depths count from the stream's start.
pub fn matches_at(
    contents: &[ContentMatch],
    checks: &[(usize, Check)],
    cx: &mut Inspection,
    buf: &[u8],
    base: u64,
) -> bool {
    matches_rule(contents, checks, None, cx, buf, base)
}

/// `matches_at` for a chain that may hand over to a `base64_data` chain.
pub fn matches_rule(
    contents: &[ContentMatch],
    checks: &[(usize, Check)],
    b64: Option<&Base64Chain>,
    cx: &mut Inspection,
    buf: &[u8],
    base: u64,
) -> bool {
    let mut chain = Chain {
        contents,
        checks,
        rx: &cx.regexes,
        buf,
        base: usize::try_from(base).unwrap_or(usize::MAX),
        steps: 0,
        limit: cx.recursion_limit,
        pcre_limit: 0,
        vars: [0; MAX_VARS],
        b64,
        scratch: &mut cx.base64,
    };
    let r = chain.inspect(0, 0, 0);
    cx.counters.pcre_limit += chain.pcre_limit;
    if chain.steps >= chain.limit {
        cx.counters.recursion_limit += 1;
    }
    r == Outcome::Match
}

/// How far into a stream a rule's absolute conditions reach: where they
/// can be confirmed from a window that no longer starts at the stream's
/// first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// No absolute limit: any window will do.
    Anywhere,
    /// Every absolute condition lies before this stream offset (u64::MAX:
    /// they count from the buffer's start, so only the stream's first
    /// window can confirm them).
    Before(u64),
}

/// The reach of a chain of `contents` and `checks`.
pub fn reach(contents: &[ContentMatch], checks: &[(usize, Check)]) -> Reach {
    let mut r: Option<u64> = None;
    // Positions from variables are known only on the buffer itself.
    if contents
        .iter()
        .any(|c| !c.relative() && (c.vars.offset.is_some() || c.vars.depth.is_some()))
    {
        return Reach::Before(u64::MAX);
    }
    for c in contents.iter().filter(|c| !c.relative()) {
        let end = match (c.depth, c.startswith) {
            (Some(d), _) => Some(u64::from(c.offset.unwrap_or(0)) + u64::from(d)),
            (None, true) => Some(u64::from(c.offset.unwrap_or(0)) + c.bytes.len() as u64),
            (None, false) => None,
        };
        if let Some(e) = end {
            r = Some(r.map_or(e, |x| x.max(e)));
        }
    }
    if checks.iter().any(|(_, c)| match c {
        Check::Bytes(b) => !b.relative(),
        Check::Asn1(a) => !a.relative(),
        Check::Base64(b) => !b.relative,
        Check::Pcre(_) => false,
    }) {
        r = Some(u64::MAX);
    }
    r.map_or(Reach::Anywhere, Reach::Before)
}

/// What evaluating the chain from one keyword on found (Suricata's 1, 0
/// and -1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Match,
    /// No match from here; an earlier keyword may retry.
    NoMatch,
    /// No match, and no earlier retry can change that.
    Discontinue,
}

struct Chain<'a> {
    contents: &'a [ContentMatch],
    checks: &'a [(usize, Check)],
    rx: &'a [Regex],
    buf: &'a [u8],
    base: usize,
    /// Keyword evaluations so far, and the budget.
    steps: u32,
    limit: u32,
    pcre_limit: u64,
    /// The rule's byte variables, as the keywords evaluated so far set them.
    vars: ByteVars,
    /// The rule's base64_data chain, and room to decode into.
    b64: Option<&'a Base64Chain>,
    scratch: &'a mut Vec<u8>,
}

impl<'a> Chain<'a> {
    /// Evaluates the chain from content `i` and check `j` (checks with
    /// `k <= i` come before content `i`), the pointer at `prev_end`.
    fn inspect(&mut self, i: usize, j: usize, prev_end: usize) -> Outcome {
        self.steps += 1;
        if self.steps >= self.limit {
            return Outcome::Discontinue;
        }
        if j < self.checks.len() && self.checks[j].0 <= i {
            return self.check(i, j, prev_end);
        }
        if i < self.contents.len() {
            return self.content(i, j, prev_end);
        }
        Outcome::Match
    }

    fn content(&mut self, i: usize, j: usize, prev_end: usize) -> Outcome {
        let c = &self.contents[i];
        let buf = self.buf;
        let last = i + 1 == self.contents.len() && j == self.checks.len();
        let mut retry_from: Option<usize> = None;
        loop {
            let window = c
                .window(buf.len(), prev_end, self.base, &self.vars)
                .and_then(|(lo, hi)| {
                    let lo = retry_from.map_or(lo, |r| r.max(lo));
                    (lo <= hi).then_some((lo, hi))
                });
            let found = match window {
                // An endswith content must reach the end of the buffer.
                Some((lo, hi)) if !(c.endswith && hi < buf.len()) => c.find(buf, lo, hi),
                _ => None,
            };
            let Some(at) = found else {
                if c.negated {
                    return self.inspect(i + 1, j, prev_end);
                }
                // An absolute content that is not there stays not there.
                return if c.relative() {
                    Outcome::NoMatch
                } else {
                    Outcome::Discontinue
                };
            };
            let end = at + c.bytes.len();
            if c.negated {
                if c.endswith && end != buf.len() {
                    return self.inspect(i + 1, j, prev_end);
                }
                return if c.relative() {
                    Outcome::NoMatch
                } else {
                    Outcome::Discontinue
                };
            }
            if !c.endswith || end == buf.len() {
                if last {
                    return Outcome::Match;
                }
                match self.inspect(i + 1, j, end) {
                    Outcome::NoMatch => {}
                    done => return done,
                }
                // Only a within bound on the next content can be helped by
                // a later occurrence of this one.
                if !c.within_next {
                    return Outcome::Discontinue;
                }
            }
            retry_from = Some(at + 1);
        }
    }

    fn check(&mut self, i: usize, j: usize, prev_end: usize) -> Outcome {
        let buf = self.buf;
        match self.checks[j].1 {
            Check::Bytes(ByteCheck::IsDataAt {
                n,
                relative,
                negated,
            }) => {
                let n = n.get(&self.vars);
                let present = if relative {
                    prev_end as i64 + n <= buf.len() as i64
                } else {
                    n < buf.len() as i64
                };
                match (present, negated, relative) {
                    (true, false, _) | (false, true, _) => self.inspect(i, j + 1, prev_end),
                    // Relative and present but negated: a later pointer
                    // may leave less data after it.
                    (true, true, true) => Outcome::NoMatch,
                    _ => Outcome::Discontinue,
                }
            }
            Check::Base64(d) => {
                d.decode(buf, prev_end, self.scratch);
                if self.scratch.is_empty() {
                    return Outcome::NoMatch;
                }
                let Some(b64) = self.b64 else {
                    return self.inspect(i, j + 1, prev_end);
                };
                // The decoded bytes are a buffer of their own; their chain
                // decides the rule, on the same step budget.
                let decoded = std::mem::take(self.scratch);
                let mut spare = Vec::new();
                let mut sub = Chain {
                    contents: &b64.contents,
                    checks: &b64.checks,
                    rx: self.rx,
                    buf: &decoded,
                    base: 0,
                    steps: self.steps,
                    limit: self.limit,
                    pcre_limit: 0,
                    vars: self.vars,
                    b64: None,
                    scratch: &mut spare,
                };
                let r = sub.inspect(0, 0, 0);
                self.steps = sub.steps;
                self.pcre_limit += sub.pcre_limit;
                *self.scratch = decoded;
                match r {
                    Outcome::Match => Outcome::Match,
                    Outcome::Discontinue if self.steps >= self.limit => Outcome::Discontinue,
                    _ => Outcome::NoMatch,
                }
            }
            Check::Asn1(a) => {
                if a.matches(buf, prev_end) {
                    self.inspect(i, j + 1, prev_end)
                } else if a.relative() {
                    Outcome::NoMatch
                } else {
                    Outcome::Discontinue
                }
            }
            Check::Bytes(b) => match b.apply(buf, prev_end, &mut self.vars) {
                Some(p) => self.inspect(i, j + 1, p),
                None => Outcome::NoMatch,
            },
            Check::Pcre(p) => {
                let mut from = 0;
                loop {
                    match p.search(self.rx, buf, prev_end, from) {
                        PcreFound::Limit => {
                            self.pcre_limit += 1;
                            return Outcome::NoMatch;
                        }
                        PcreFound::None if p.negated => {
                            return self.inspect(i, j + 1, prev_end);
                        }
                        PcreFound::None => return Outcome::NoMatch,
                        PcreFound::At(..) if p.negated => return Outcome::NoMatch,
                        PcreFound::At(start, end) => {
                            if !p.relative_next {
                                return self.inspect(i, j + 1, end);
                            }
                            match self.inspect(i, j + 1, end) {
                                Outcome::NoMatch => from = start + 1,
                                done => return done,
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &[u8]) -> ContentMatch {
        ContentMatch::new(s.to_vec(), false)
    }

    /// A content relative to the previous keyword.
    fn rel(s: &[u8], distance: Option<i32>, within: Option<u32>) -> ContentMatch {
        let mut m = c(s);
        m.distance = distance.or(Some(0));
        m.within = within;
        m
    }

    /// Links a copy of the chain and evaluates it with a budget of `limit`.
    fn eval_with(
        contents: &[ContentMatch],
        checks: &[(usize, Check)],
        rx: Vec<Regex>,
        buf: &[u8],
        limit: u32,
    ) -> (bool, InspectionCounters) {
        let (mut contents, mut checks) = (contents.to_vec(), checks.to_vec());
        link(&mut contents, &mut checks);
        let mut cx = Inspection::new(rx, limit);
        let m = matches_with(&contents, &checks, &mut cx, buf);
        (m, cx.counters)
    }

    fn eval(contents: &[ContentMatch], checks: &[(usize, Check)], buf: &[u8]) -> bool {
        eval_with(contents, checks, Vec::new(), buf, RECURSION_LIMIT).0
    }

    #[test]
    fn base64_decoding_is_rfc4648_and_bounded() {
        let d = |v: &str, buf: &[u8], prev: usize| {
            let mut out = Vec::with_capacity(BASE64_MAX);
            Base64Decode::parse(v).unwrap().decode(buf, prev, &mut out);
            out
        };
        assert_eq!(d("", b"aGVsbG8=", 0), b"hello");
        assert_eq!(d("relative", b"x=aGVsbG8", 2), b"hello", "partial group");
        assert_eq!(d("offset 2", b"x=aGVs bG8", 0), b"hel", "stops at a space");
        assert_eq!(d("bytes 4, relative", b"x=aGVsbG8", 2), b"hel");
        assert!(d("relative", b"x=", 2).is_empty());
        assert!(Base64Decode::parse("bytes x").is_err());
    }

    #[test]
    fn absolute_with_offset_and_depth() {
        let mut a = c(b"abc");
        a.offset = Some(2);
        a.depth = Some(4);
        assert!(matches(&[a.clone()], b"xxabcx"));
        assert!(!matches(&[a.clone()], b"xabcxx"), "before the offset");
        assert!(!matches(&[a], b"xxxxabc"), "past offset + depth");
    }

    #[test]
    fn relative_distance_and_within_with_backtracking() {
        let a = c(b"GET");
        let b = rel(b"/v1", Some(1), Some(4));
        // The first GET is followed too far away; the second one fits.
        assert!(matches(&[a.clone(), b.clone()], b"GET xxxxxx/v1 GET /v1"));
        assert!(!matches(&[a.clone(), b.clone()], b"GET xxxxxx/v1"));
        let mut neg = rel(b"admin", Some(0), None);
        neg.negated = true;
        assert!(matches(&[a.clone(), neg.clone()], b"GET /v1/chat"));
        assert!(!matches(&[a, neg], b"GET /admin"));
    }

    #[test]
    fn within_counts_from_where_distance_puts_the_window() {
        // Suricata: the window is [prev + distance, prev + distance + within).
        let a = c(b"ab");
        let b = rel(b"XY", Some(8), Some(2));
        assert!(matches(&[a.clone(), b.clone()], b"ab01234567XY"));
        assert!(
            !matches(&[a.clone(), b.clone()], b"ab0123456XY"),
            "one early"
        );
        assert!(!matches(&[a.clone(), b], b"ab012345678XY"), "one late");
        // A negative distance reaches back over the previous match.
        let back = rel(b"ab", Some(-4), Some(4));
        assert!(matches(&[c(b"cd"), back.clone()], b"abcd"));
        assert!(!matches(&[c(b"cd"), back], b"ab_cd"));
    }

    #[test]
    fn nocase_startswith_endswith() {
        let mut a = c(b"sk-");
        a.nocase = true;
        a.startswith = true;
        assert!(matches(&[a.clone()], b"SK-abc"));
        assert!(!matches(&[a], b"x sk-abc"));
        let mut e = c(b".pt");
        e.endswith = true;
        assert!(matches(&[e.clone()], b"model.pt"));
        assert!(matches(&[e.clone()], b"a.pt.pt"), "a later occurrence");
        assert!(!matches(&[e], b"model.pt.bak"));
    }

    #[test]
    fn byte_checks_sit_in_the_chain_and_are_retried_on_backtrack() {
        // A length byte after "LEN" says how far "END" starts.
        let end = rel(b"END", Some(0), Some(3));
        let contents = [c(b"LEN"), end];
        let checks = [(
            1,
            Check::Bytes(
                ByteCheck::parse("byte_jump", "1,0,relative", &mut Default::default()).unwrap(),
            ),
        )];
        assert!(eval(&contents, &checks, b"LEN\x02xxEND"));
        assert!(!eval(&contents, &checks, b"LEN\x01xxEND"), "one off");
        // The first LEN jumps past the end; the second one lands on END
        // (END's within makes LEN worth retrying).
        assert!(eval(&contents, &checks, b"LEN\x05LEN\x00END"));
        let gone = [(
            1,
            Check::Bytes(
                ByteCheck::parse("isdataat", "!1,relative", &mut Default::default()).unwrap(),
            ),
        )];
        assert!(eval(&contents[..1], &gone, b"xxLEN"));
        assert!(!eval(&contents[..1], &gone, b"xxLEN!"));
    }

    #[test]
    fn only_a_within_on_the_next_content_brings_a_retry() {
        // "X" 0 or more bytes after "a": a later "a" only moves its window
        // right, so one try is the answer (Suricata gives up too).
        let chain = [c(b"a"), rel(b"X", Some(0), None)];
        assert!(eval(&chain, &[], b"aaaX"));
        let mut link_a = chain.to_vec();
        link(&mut link_a, &mut []);
        assert!(!link_a[0].within_next);
        // With a within on "X", a later "a" can bring it into reach.
        let chain = [c(b"a"), rel(b"X", Some(0), Some(1))];
        assert!(eval(&chain, &[], b"a..aX"));
        let mut linked = chain.to_vec();
        link(&mut linked, &mut []);
        assert!(linked[0].within_next);
    }

    #[test]
    fn a_pathological_distance_chain_runs_in_linear_time() {
        // The outside report: ~1,400 a's then b, three relative contents
        // after the fast pattern. It ran for minutes; now it is a handful
        // of steps, far under even a tiny budget.
        let mut buf = vec![b'a'; 1400];
        buf.push(b'b');
        let chain = [
            c(b"aaaa"),
            rel(b"a", Some(0), None),
            rel(b"a", Some(0), None),
            rel(b"X", Some(0), None),
        ];
        let (m, counters) = eval_with(&chain, &[], Vec::new(), &buf, 50);
        assert!(!m);
        assert_eq!(counters, InspectionCounters::default(), "no limit hit");
        buf.push(b'X');
        assert!(eval_with(&chain, &[], Vec::new(), &buf, 50).0);
    }

    #[test]
    fn the_step_budget_stops_exponential_within_chains_and_is_counted() {
        // Each "a" within 1000 of the previous one: every combination of
        // positions is worth a retry, so without a budget this explodes.
        let mut buf = vec![b'a'; 1400];
        buf.push(b'b');
        let chain = [
            c(b"a"),
            rel(b"a", Some(0), Some(1000)),
            rel(b"a", Some(0), Some(1000)),
            rel(b"X", Some(0), Some(1000)),
        ];
        let (m, counters) = eval_with(&chain, &[], Vec::new(), &buf, RECURSION_LIMIT);
        assert!(!m);
        assert_eq!(counters.recursion_limit, 1);
        // Small inputs still get the exact answer.
        let (m, counters) = eval_with(&chain, &[], Vec::new(), b"aaaX", RECURSION_LIMIT);
        assert!(m);
        assert_eq!(counters.recursion_limit, 0);
    }

    #[test]
    fn a_pcre_is_retried_only_when_a_relative_keyword_follows() {
        use crate::detect::pcre::{compile, PcreLimits};
        let (mut p, re) = compile(r#""/k=./""#, PcreLimits::default()).unwrap();
        p.id = 0;
        // pcre then a content within 1 after it: the first k= is followed
        // by the wrong byte, the second by the right one.
        let contents = [rel(b"!", Some(0), Some(1))];
        let checks = [(0, Check::Pcre(p))];
        let (m, _) = eval_with(&contents, &checks, vec![re.clone()], b"k=1? k=2!", 100);
        assert!(m, "retried at its next match");
        let (mut l_contents, mut l_checks) = (contents.to_vec(), checks.to_vec());
        link(&mut l_contents, &mut l_checks);
        assert!(matches!(l_checks[0].1, Check::Pcre(p) if p.relative_next));
        // A pcre that runs into PCRE2's limit is no match, and counted.
        let (bad, re) = compile(r#""/(a+)+$/""#, PcreLimits::default()).unwrap();
        let mut buf = vec![b'a'; 500];
        buf.push(b'b');
        let (m, counters) = eval_with(&[], &[(0, Check::Pcre(bad))], vec![re], &buf, 100);
        assert!(!m);
        assert_eq!(counters.pcre_limit, 1);
    }

    #[test]
    fn stream_windows_count_positions_from_the_stream_start() {
        let mut a = c(b"abc");
        a.offset = Some(100);
        a.depth = Some(10);
        let at = |cs: &[ContentMatch], buf: &[u8], base: u64| {
            matches_at(cs, &[], &mut Inspection::default(), buf, base)
        };
        // The window starts at stream offset 95: "abc" at 100 is at 5.
        assert!(at(&[a.clone()], b"xxxxxabcxx", 95));
        assert!(!at(&[a.clone()], b"abcxxxxxxx", 95), "at 95");
        assert!(!at(&[a.clone()], b"xxxxxabc", 200), "past depth");
        assert_eq!(reach(&[a.clone()], &[]), Reach::Before(110));
        let mut o = c(b"abc");
        o.offset = Some(100);
        assert!(at(&[o.clone()], b"abc", 500), "offset only");
        assert_eq!(reach(&[o, c(b"x")], &[]), Reach::Anywhere);
        let at0 = [(
            0,
            Check::Bytes(ByteCheck::parse("isdataat", "3", &mut Default::default()).unwrap()),
        )];
        assert_eq!(reach(&[], &at0), Reach::Before(u64::MAX));
    }

    #[test]
    fn windows_past_the_buffer_never_panic() {
        let mut a = c(b"abc");
        a.offset = Some(100);
        assert!(!matches(&[a.clone()], b"abc"));
        a.negated = true;
        assert!(matches(&[a], b"abc"));
        let r = rel(b"zz", Some(-50), None);
        assert!(matches(&[c(b"a"), r], b"azz"));
        assert!(!matches(&[c(b"abcdef")], b"abc"));
        assert!(matches(&[], b""));
        let far = rel(b"z", Some(i32::MAX), Some(u32::MAX));
        assert!(!matches(&[c(b"a"), far], b"az"));
        let back = rel(b"z", Some(i32::MIN), Some(1));
        assert!(!matches(&[c(b"a"), back], b"za"));
    }
}
