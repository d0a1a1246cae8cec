//! `pcre`: a Perl-compatible regular expression in the content chain,
//! evaluated with PCRE2 itself (JIT where available), so ET's expressions —
//! back-references and look-arounds included — mean what their authors
//! wrote. Absolute, it searches the whole payload; with `R` it searches from
//! where the previous content left the pointer (`^` anchors there, as in
//! Suricata). A match moves the pointer to its end; a negated one must not
//! match and leaves the pointer alone.
//!
//! The compiled expressions live in the engine; each worker takes its own
//! clone (PCRE2 match data is per clone), so matching takes no lock.

use pcre2::bytes::{Regex, RegexBuilder};

/// A pcre condition in a rule's chain: which expression, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PcreCheck {
    /// Index into the engine's (and each worker's) expressions.
    pub id: u32,
    pub relative: bool,
    pub negated: bool,
}

impl PcreCheck {
    pub fn apply(&self, rx: &[Regex], buf: &[u8], prev_end: usize) -> Option<usize> {
        let re = rx.get(self.id as usize)?;
        let from = if self.relative { prev_end } else { 0 };
        let hay = buf.get(from..)?;
        // A match-limit error counts as no match, as in Suricata.
        let found = re.find(hay).ok().flatten().map(|m| from + m.end());
        match (found, self.negated) {
            (Some(end), false) => Some(end),
            (None, true) => Some(prev_end),
            _ => None,
        }
    }
}

/// Reads `pcre:"/EXPR/FLAGS"` (or `!"…"`) and compiles it: the check (its
/// `id` is the caller's to set) and the expression.
pub fn compile(v: &str) -> Result<(PcreCheck, Regex), String> {
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
    let mut b = RegexBuilder::new();
    b.jit_if_available(true);
    let mut relative = false;
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
            other => {
                return Err(format!(
                    "pcre: flag {other} (an app-layer buffer or not evaluated yet)"
                ))
            }
        }
    }
    // (\; and \" that rules escape for the rule parser are literals to
    // PCRE2 as they are.)
    let re = b
        .build(expr)
        .map_err(|e| format!("pcre: PCRE2 cannot compile it ({e})"))?;
    Ok((
        PcreCheck {
            id: 0,
            relative,
            negated,
        },
        re,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(v: &str, buf: &[u8], prev_end: usize) -> Option<usize> {
        let (c, re) = compile(v).unwrap();
        c.apply(&[re], buf, prev_end)
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
    fn bad_expressions_and_app_layer_flags_are_named() {
        assert!(compile(r#""/a/U""#).unwrap_err().contains("flag U"));
        assert!(compile(r#""/a(/""#).unwrap_err().contains("PCRE2"));
        assert!(compile(r#""abc""#).unwrap_err().contains("/EXPR/"));
    }
}
