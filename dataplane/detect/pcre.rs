//! `pcre`: a Perl-compatible regular expression in the content chain,
//! evaluated with PCRE2 itself (JIT where available), so ET's expressions —
//! back-references and look-arounds included — mean what their authors
//! wrote. Absolute, it searches the whole payload; with `R` it searches from
//! where the previous content left the pointer (`^` anchors there, as in
//! Suricata). A match moves the pointer to its end; a negated one must not
//! match and leaves the pointer alone.
//!
//! Every expression is compiled with PCRE2's inline match and depth limits
//! (`(*LIMIT_MATCH=n)(*LIMIT_DEPTH=n)`, Suricata's `pcre.match-limit` and
//! `pcre.match-limit-recursion`), JIT included, so one crafted payload
//! costs a bounded number of steps; a match that runs into them is counted
//! and is no match, whether the pcre is negated or not (as in Suricata).
//!
//! The compiled expressions live in the engine; each worker takes its own
//! clone (PCRE2 match data is per clone), so matching takes no lock.

use pcre2::bytes::{Regex, RegexBuilder};

/// PCRE2 limits every expression is compiled with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PcreLimits {
    /// Backtracking steps one match may take (`--pcre-match-limit`).
    pub match_limit: u32,
    /// How deep backtracking may nest (`--pcre-match-limit-recursion`).
    pub depth_limit: u32,
}

impl Default for PcreLimits {
    /// Suricata's defaults.
    fn default() -> Self {
        PcreLimits {
            match_limit: 3500,
            depth_limit: 1500,
        }
    }
}

/// A pcre condition in a rule's chain: which expression, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PcreCheck {
    /// Index into the engine's (and each worker's) expressions.
    pub id: u32,
    pub relative: bool,
    pub negated: bool,
    /// A later keyword depends on where this one matched (a relative one
    /// before the next content or pcre): a failure further on retries this
    /// expression at its next match, as Suricata's `PCRE_RELATIVE_NEXT`.
    pub relative_next: bool,
}

/// What one pcre search found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PcreFound {
    /// A match spanning `[start, end)` of the buffer.
    At(usize, usize),
    None,
    /// PCRE2 gave up (a limit): no match, counted.
    Limit,
}

impl PcreCheck {
    /// Searches `buf` (from `prev_end` when relative), starting no earlier
    /// than `from` (an absolute position; a retry starts one past the
    /// previous match's start).
    pub fn search(&self, rx: &[Regex], buf: &[u8], prev_end: usize, from: usize) -> PcreFound {
        let Some(re) = rx.get(self.id as usize) else {
            return PcreFound::None;
        };
        let subject_start = if self.relative { prev_end } else { 0 };
        let Some(hay) = buf.get(subject_start..) else {
            return PcreFound::None;
        };
        let start = from.saturating_sub(subject_start);
        if start > hay.len() {
            return PcreFound::None;
        }
        match re.find_at(hay, start) {
            Ok(Some(m)) => PcreFound::At(subject_start + m.start(), subject_start + m.end()),
            Ok(None) => PcreFound::None,
            Err(_) => PcreFound::Limit,
        }
    }
}

/// Reads `pcre:"/EXPR/FLAGS"` (or `!"…"`) and compiles it under `limits`:
/// the check (its `id` is the caller's to set) and the expression.
pub fn compile(v: &str, limits: PcreLimits) -> Result<(PcreCheck, Regex), String> {
    match compile_on(v, limits)? {
        (c, re, None) => Ok((c, re)),
        (_, _, Some(f)) => Err(format!("pcre: flag {f} outside an app-layer rule")),
    }
}

/// `compile`, also taking one app-layer buffer flag (`U`, `P`, `H` …):
/// returned beside the check for the caller to place it.
pub fn compile_on(v: &str, limits: PcreLimits) -> Result<(PcreCheck, Regex, Option<char>), String> {
    let v = v.trim();
    let (negated, v) = match v.strip_prefix('!') {
        Some(r) => (true, r.trim()),
        None => (false, v),
    };
    let body = v
        .strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .unwrap_or(v);
    let inner = body
        .strip_prefix('/')
        .ok_or_else(|| "pcre: expected /EXPR/FLAGS".to_string())?;
    let slash = inner
        .rfind('/')
        .ok_or_else(|| "pcre: expected /EXPR/FLAGS".to_string())?;
    let (expr, flags) = (&inner[..slash], &inner[slash + 1..]);
    if flags.contains(',') {
        return Err("pcre: captures into variables".into());
    }
    let mut b = RegexBuilder::new();
    b.jit_if_available(true);
    let mut relative = false;
    let mut buffer = None;
    let mut anchored = false;
    let mut ungreedy = false;
    for f in flags.chars() {
        match f {
            'i' => {
                b.caseless(true);
            }
            's' => {
                b.dotall(true);
            }
            'm' => {
                b.multi_line(true);
            }
            'x' => {
                b.extended(true);
            }
            'R' => relative = true,
            // rawbytes, and "don't use the configured match limits".
            'B' | 'O' => {}
            'A' => anchored = true,
            'G' => ungreedy = true,
            'U' | 'I' | 'P' | 'Q' | 'H' | 'D' | 'M' | 'C' | 'S' | 'Y' | 'V' | 'W' | 'Z' => {
                if buffer.is_some_and(|b| b != f) {
                    return Err("pcre: two app-layer buffer flags".into());
                }
                buffer = Some(f);
            }
            other => {
                return Err(format!(
                    "pcre: flag {other} (an app-layer buffer or not evaluated yet)"
                ))
            }
        }
    }
    // (\; and \" that rules escape for the rule parser are literals to
    // PCRE2 as they are.)
    // The limits go in front as PCRE2's own start-of-pattern items, which
    // hold under JIT too; an expression's own (*LIMIT_…) items, if any,
    // can only lower them.
    // `A` anchors at the start of the search; `G` inverts greediness.
    let expr = match (anchored, ungreedy) {
        (false, false) => expr.to_string(),
        (a, g) => format!(
            "{}{}(?:{expr})",
            if g { "(?U)" } else { "" },
            if a { "\\G" } else { "" }
        ),
    };
    let bounded = format!(
        "(*LIMIT_MATCH={})(*LIMIT_DEPTH={}){expr}",
        limits.match_limit.max(1),
        limits.depth_limit.max(1)
    );
    let re = b
        .build(&bounded)
        .map_err(|e| format!("pcre: PCRE2 cannot compile it ({e})"))?;
    Ok((
        PcreCheck {
            id: 0,
            relative,
            negated,
            relative_next: false,
        },
        re,
        buffer,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Where the pointer ends after the check, as the chain sees it.
    fn run(v: &str, buf: &[u8], prev_end: usize) -> Option<usize> {
        let (c, re) = compile(v, PcreLimits::default()).unwrap();
        match (c.search(&[re], buf, prev_end, 0), c.negated) {
            (PcreFound::At(_, end), false) => Some(end),
            (PcreFound::None, true) => Some(prev_end),
            _ => None,
        }
    }

    #[test]
    fn flags_relative_negation_and_the_pointer() {
        assert_eq!(run(r#""/sk-[a-z0-9]{4}/""#, b"key sk-ab12!", 0), Some(11));
        assert_eq!(
            run(r#""/sk-[a-z0-9]{4}/""#, b"key sk-ab1!", 0),
            None,
            "one short"
        );
        assert_eq!(run(r#""/SK-/i""#, b"sk-", 0), Some(3));
        assert_eq!(run(r#""/a.b/""#, b"a\nb", 0), None);
        assert_eq!(run(r#""/a.b/s""#, b"a\nb", 0), Some(3));
        assert_eq!(run(r#""/^b/m""#, b"a\nb", 0), Some(3));
        // Relative: ^ anchors where the previous content ended.
        assert_eq!(run(r#""/^ab/R""#, b"xxab", 2), Some(4));
        assert_eq!(run(r#""/^ab/R""#, b"xxab", 1), None, "one position off");
        assert_eq!(run(r#"!"/evil/""#, b"good", 2), Some(2));
        assert_eq!(run(r#"!"/evil/""#, b"evil", 0), None);
        // A back-reference, which Hyperscan cannot do.
        assert_eq!(run(r#""/(ab)x\1/""#, b"abxab", 0), Some(5));
        assert_eq!(run(r#""/(ab)x\1/""#, b"abxac", 0), None);
    }

    #[test]
    fn a_retry_starts_past_the_previous_match() {
        let (c, re) = compile(r#""/a./""#, PcreLimits::default()).unwrap();
        let rx = [re];
        assert_eq!(c.search(&rx, b"a1 a2", 0, 0), PcreFound::At(0, 2));
        assert_eq!(c.search(&rx, b"a1 a2", 0, 1), PcreFound::At(3, 5));
        assert_eq!(c.search(&rx, b"a1 a2", 0, 4), PcreFound::None);
        assert_eq!(c.search(&rx, b"a1 a2", 0, 99), PcreFound::None);
    }

    #[test]
    fn catastrophic_backtracking_hits_the_limit_and_is_no_match() {
        // (a+)+$ against a run of a's that ends in b backtracks
        // exponentially: the limit stops it, in microseconds.
        let mut buf = vec![b'a'; 1400];
        buf.push(b'b');
        for expr in [r#""/(a+)+$/""#, r#"!"/(a+)+$/""#] {
            let (c, re) = compile(expr, PcreLimits::default()).unwrap();
            assert_eq!(c.search(&[re], &buf, 0, 0), PcreFound::Limit, "{expr}");
        }
        // A generous limit lets a short subject finish (and not match).
        let (c, re) = compile(
            r#""/(a+)+$/""#,
            PcreLimits {
                match_limit: 10_000_000,
                depth_limit: 10_000_000,
            },
        )
        .unwrap();
        assert_eq!(c.search(&[re], b"aaaaab", 0, 0), PcreFound::None);
    }

    #[test]
    fn bad_expressions_and_app_layer_flags_are_named() {
        let l = PcreLimits::default();
        assert!(compile(r#""/a/U""#, l).unwrap_err().contains("flag U"));
        assert!(compile(r#""/a(/""#, l).unwrap_err().contains("PCRE2"));
        assert!(compile(r#""abc""#, l).unwrap_err().contains("/EXPR/"));
    }
}
