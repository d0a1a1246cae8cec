//! Content matching with Suricata's positional semantics. A content without
//! distance/within is absolute: it may match anywhere its offset and depth
//! allow. A content with distance or within is relative to the end of the
//! previous content's match. When a later relative content fails, earlier
//! contents are retried at their next occurrence (Suricata backtracks too).
//! A negated content must not occur in its window.

use super::bytes::ByteCheck;
use super::pcre::PcreCheck;
use pcre2::bytes::Regex;

/// A condition in the content chain other than a content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    Bytes(ByteCheck),
    Pcre(PcreCheck),
}

impl Check {
    fn relative(&self) -> bool {
        match self {
            Check::Bytes(b) => b.relative(),
            Check::Pcre(p) => p.relative,
        }
    }

    fn apply(&self, rx: &[Regex], buf: &[u8], prev_end: usize) -> Option<usize> {
        match self {
            Check::Bytes(b) => b.apply(buf, prev_end),
            Check::Pcre(p) => p.apply(rx, buf, prev_end),
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
        }
    }

    pub fn relative(&self) -> bool {
        self.distance.is_some() || self.within.is_some()
    }

    /// The window `[lo, hi)` a match must lie in, given where the previous
    /// content's match ended. `base` is where the buffer starts in its
    /// stream (0 for a packet): absolute offsets and depths count from the
    /// stream's start.
    fn window(&self, buf_len: usize, prev_end: usize, base: usize) -> Option<(usize, usize)> {
        let (mut lo, mut hi) = (0usize, buf_len);
        if self.relative() {
            let d = i64::from(self.distance.unwrap_or(0));
            lo = (prev_end as i64 + d).max(0) as usize;
            if let Some(w) = self.within {
                hi = hi.min(prev_end.saturating_add(w as usize));
            }
            if let Some(o) = self.offset {
                lo = lo.max(o as usize);
            }
        } else if let Some(o) = self.offset {
            lo = lo.max((o as usize).saturating_sub(base));
        }
        if let Some(d) = self.depth {
            let start = if self.relative() {
                lo
            } else {
                let abs_end = (self.offset.unwrap_or(0) as usize).saturating_add(d as usize);
                if abs_end <= base {
                    return None;
                }
                hi = hi.min(abs_end - base);
                lo
            };
            if self.relative() {
                hi = hi.min(start.saturating_add(d as usize));
            }
        }
        if self.startswith {
            hi = hi.min(lo + self.bytes.len());
        }
        let hi = hi.min(buf_len);
        (lo <= hi).then_some((lo, hi))
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

    /// Start positions of this pattern wholly inside `[lo, hi)`, first first.
    fn occurrences<'b>(
        &'b self,
        buf: &'b [u8],
        lo: usize,
        hi: usize,
    ) -> impl Iterator<Item = usize> + 'b {
        let n = self.bytes.len();
        let end = (hi + 1).saturating_sub(n);
        (lo..end.max(lo))
            .filter(move |&at| self.eq_at(buf, at) && (!self.endswith || at + n == buf.len()))
    }
}

/// Whether all `contents` hold on `buf`.
pub fn matches(contents: &[ContentMatch], buf: &[u8]) -> bool {
    matches_with(contents, &[], &[], buf)
}

/// Whether all `contents` and `checks` hold on `buf`. A check `(k, c)`
/// runs once the first `k` contents have matched, from where the k-th left
/// the pointer. `rx` are the worker's compiled pcre expressions.
pub fn matches_with(
    contents: &[ContentMatch],
    checks: &[(usize, Check)],
    rx: &[Regex],
    buf: &[u8],
) -> bool {
    matches_at(contents, checks, rx, buf, 0)
}

/// `matches_with` on a window of a stream that starts at stream offset
/// `base`: absolute offsets and depths count from the stream's start.
pub fn matches_at(
    contents: &[ContentMatch],
    checks: &[(usize, Check)],
    rx: &[Regex],
    buf: &[u8],
    base: u64,
) -> bool {
    let chain = Chain {
        contents,
        checks,
        rx,
        buf,
        base: usize::try_from(base).unwrap_or(usize::MAX),
    };
    chain.step(0, 0)
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
    if checks
        .iter()
        .any(|(_, c)| matches!(c, Check::Bytes(b) if !b.relative()))
    {
        r = Some(u64::MAX);
    }
    r.map_or(Reach::Anywhere, Reach::Before)
}

struct Chain<'a> {
    contents: &'a [ContentMatch],
    checks: &'a [(usize, Check)],
    rx: &'a [Regex],
    buf: &'a [u8],
    base: usize,
}

impl Chain<'_> {
    fn step(&self, i: usize, prev_end: usize) -> bool {
        step(self, i, prev_end)
    }
}

fn step(ch: &Chain<'_>, i: usize, mut prev_end: usize) -> bool {
    let (contents, checks, buf) = (ch.contents, ch.checks, ch.buf);
    for (_, c) in checks.iter().filter(|(k, _)| *k == i) {
        match c.apply(ch.rx, buf, prev_end) {
            Some(p) => prev_end = p,
            None => return false,
        }
    }
    let Some(c) = contents.get(i) else {
        return true;
    };
    let Some((lo, hi)) = c.window(buf.len(), prev_end, ch.base) else {
        // No room at all: a negated content holds, a positive one fails.
        return c.negated && ch.step(i + 1, prev_end);
    };
    if c.negated {
        return c.occurrences(buf, lo, hi).next().is_none() && ch.step(i + 1, prev_end);
    }
    // Only a later relative content or check can care where this matched.
    let later_relative = contents[i + 1..].iter().any(ContentMatch::relative)
        || checks.iter().any(|(k, c)| *k > i && c.relative());
    for at in c.occurrences(buf, lo, hi) {
        if ch.step(i + 1, at + c.bytes.len()) {
            return true;
        }
        if !later_relative {
            return false;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &[u8]) -> ContentMatch {
        ContentMatch::new(s.to_vec(), false)
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
        let mut b = c(b"/v1");
        b.distance = Some(1);
        b.within = Some(4);
        // The first GET is followed too far away; the second one fits.
        assert!(matches(&[a.clone(), b.clone()], b"GET xxxxxx/v1 GET /v1"));
        assert!(!matches(&[a.clone(), b.clone()], b"GET xxxxxx/v1"));
        let mut neg = c(b"admin");
        neg.negated = true;
        neg.distance = Some(0);
        assert!(matches(&[a.clone(), neg.clone()], b"GET /v1/chat"));
        assert!(!matches(&[a, neg], b"GET /admin"));
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
        assert!(!matches(&[e], b"model.pt.bak"));
    }

    #[test]
    fn byte_checks_sit_in_the_chain_and_are_retried_on_backtrack() {
        // A length byte after "LEN" says how far "END" starts.
        let mut end = c(b"END");
        end.distance = Some(0);
        end.within = Some(3);
        let contents = [c(b"LEN"), end];
        let checks = [(
            1,
            Check::Bytes(ByteCheck::parse("byte_jump", "1,0,relative").unwrap()),
        )];
        assert!(matches_with(&contents, &checks, &[], b"LEN\x02xxEND"));
        assert!(
            !matches_with(&contents, &checks, &[], b"LEN\x01xxEND"),
            "one off"
        );
        // The first LEN jumps past the end; the second one lands on END.
        assert!(matches_with(&contents, &checks, &[], b"LEN\x05LEN\x00END"));
        let gone = [(
            1,
            Check::Bytes(ByteCheck::parse("isdataat", "!1,relative").unwrap()),
        )];
        assert!(matches_with(&contents[..1], &gone, &[], b"xxLEN"));
        assert!(!matches_with(&contents[..1], &gone, &[], b"xxLEN!"));
    }

    #[test]
    fn stream_windows_count_positions_from_the_stream_start() {
        let mut a = c(b"abc");
        a.offset = Some(100);
        a.depth = Some(10);
        // The window starts at stream offset 95: "abc" at 100 is at 5.
        assert!(matches_at(&[a.clone()], &[], &[], b"xxxxxabcxx", 95));
        assert!(
            !matches_at(&[a.clone()], &[], &[], b"abcxxxxxxx", 95),
            "at 95"
        );
        assert!(
            !matches_at(&[a.clone()], &[], &[], b"xxxxxabc", 200),
            "past depth"
        );
        assert_eq!(reach(&[a.clone()], &[]), Reach::Before(110));
        let mut o = c(b"abc");
        o.offset = Some(100);
        assert!(
            matches_at(&[o.clone()], &[], &[], b"abc", 500),
            "offset only"
        );
        assert_eq!(reach(&[o, c(b"x")], &[]), Reach::Anywhere);
        let at0 = [(0, Check::Bytes(ByteCheck::parse("isdataat", "3").unwrap()))];
        assert_eq!(reach(&[], &at0), Reach::Before(u64::MAX));
    }

    #[test]
    fn windows_past_the_buffer_never_panic() {
        let mut a = c(b"abc");
        a.offset = Some(100);
        assert!(!matches(&[a.clone()], b"abc"));
        a.negated = true;
        assert!(matches(&[a], b"abc"));
        let mut r = c(b"zz");
        r.distance = Some(-50);
        assert!(matches(&[c(b"a"), r], b"azz"));
        assert!(!matches(&[c(b"abcdef")], b"abc"));
        assert!(matches(&[], b""));
    }
}
