//! A pickle walker: the opcodes of protocols 0–5 followed one by one, with
//! enough of the stack and memo kept to know the strings STACK_GLOBAL
//! takes, so that every callable a pickle imports is seen however it is
//! spelt (GLOBAL, INST, STACK_GLOBAL with strings pushed, memoised and
//! fetched back, EXT codes). Nothing is ever executed or built. Several
//! pickles in one body are walked in turn; imports seen before an error
//! are kept (a malicious pickle with garbage after its payload is still
//! flagged); operations, stack and memo are bounded.

/// Operations walked per body at most.
pub const MAX_OPS: usize = 1 << 20;
/// Stack entries and memo slots tracked at most.
pub const MAX_STACK: usize = 4096;
pub const MAX_MEMO: usize = 4096;
/// Imports reported per body at most.
pub const MAX_IMPORTS: usize = 256;

/// Why a walk stopped before the body's end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PickleError {
    /// An opcode no protocol has.
    BadOpcode,
    /// The body ended inside an operation (or before STOP).
    Truncated,
    /// An operation took more from the stack than was on it.
    StackUnderflow,
    /// Past `MAX_OPS`, `MAX_STACK` or `MAX_MEMO`.
    Limit,
}

impl PickleError {
    pub const ALL: [PickleError; 4] = [
        PickleError::BadOpcode,
        PickleError::Truncated,
        PickleError::StackUnderflow,
        PickleError::Limit,
    ];

    pub fn name(self) -> &'static str {
        match self {
            PickleError::BadOpcode => "bad_opcode",
            PickleError::Truncated => "truncated",
            PickleError::StackUnderflow => "stack_underflow",
            PickleError::Limit => "limit",
        }
    }
}

/// What a walk found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Walk {
    /// `module.name` of each import, in order, each once.
    pub imports: Vec<String>,
    /// A call (REDUCE, NEWOBJ, OBJ, INST …) came after an import outside
    /// `SAFE`.
    pub suspicious: bool,
    /// Pickles walked to their STOP.
    pub pickles: u32,
    /// Why it stopped early, if it did.
    pub error: Option<PickleError>,
    /// Operations walked.
    pub ops: usize,
}

/// Imports a model checkpoint is made of (PyTorch, NumPy, collections):
/// with them alone a call is not suspicious.
pub const SAFE: &[&str] = &[
    "collections.OrderedDict",
    "torch._utils._rebuild_tensor",
    "torch._utils._rebuild_tensor_v2",
    "torch._utils._rebuild_tensor_v3",
    "torch._utils._rebuild_parameter",
    "torch._utils._rebuild_parameter_with_state",
    "torch._utils._rebuild_qtensor",
    "torch._utils._rebuild_sparse_tensor",
    "torch.Size",
    "torch.device",
    "torch.dtype",
    "torch.float32",
    "torch.float16",
    "torch.bfloat16",
    "numpy.core.multiarray._reconstruct",
    "numpy._core.multiarray._reconstruct",
    "numpy.core.multiarray.scalar",
    "numpy.ndarray",
    "numpy.dtype",
    "_codecs.encode",
    "builtins.set",
    "builtins.frozenset",
    "builtins.slice",
    "builtins.complex",
    "builtins.bytearray",
];

fn safe(import: &str) -> bool {
    SAFE.contains(&import)
        || (import.starts_with("torch.") && import.ends_with("Storage") && !import.contains(' '))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Val {
    Mark,
    /// A string: its span in the body.
    Str(u32, u32),
    Other,
}

struct W<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> W<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], PickleError> {
        let end = self.at.checked_add(n).ok_or(PickleError::Truncated)?;
        let s = self.b.get(self.at..end).ok_or(PickleError::Truncated)?;
        self.at = end;
        Ok(s)
    }
    fn le(&mut self, n: usize) -> Result<u64, PickleError> {
        let s = self.take(n)?;
        Ok(s.iter().rev().fold(0u64, |v, &c| v << 8 | u64::from(c)))
    }
    /// A line (protocol 0 arguments), without its `\n`.
    fn line(&mut self) -> Result<(usize, usize), PickleError> {
        let rest = self.b.get(self.at..).ok_or(PickleError::Truncated)?;
        let n = rest
            .iter()
            .position(|&c| c == b'\n')
            .ok_or(PickleError::Truncated)?;
        let start = self.at;
        self.at += n + 1;
        Ok((start, start + n))
    }
}

/// Walks every pickle of `body` (one after another until the bytes end).
pub fn walk(body: &[u8]) -> Walk {
    let mut out = Walk::default();
    let mut w = W { b: body, at: 0 };
    let mut ops = 0usize;
    let mut stack: Vec<Val> = Vec::with_capacity(64);
    let mut memo: Vec<Val> = Vec::new();
    let mut risky = false;
    while w.at < body.len() {
        match step(
            &mut w, &mut stack, &mut memo, &mut out, &mut risky, &mut ops,
        ) {
            Ok(true) => {
                out.pickles += 1;
                stack.clear();
                memo.clear();
            }
            Ok(false) => {}
            Err(e) => {
                out.error = Some(e);
                out.ops = ops;
                return out;
            }
        }
    }
    out.ops = ops;
    if !stack.is_empty() && out.error.is_none() {
        // Bytes after the last STOP that began a pickle never finished.
        out.error = Some(PickleError::Truncated);
    }
    out
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).replace(['\n', '\r'], " ")
}

fn import(out: &mut Walk, risky: &mut bool, module: &[u8], name: &[u8]) {
    let full = format!("{}.{}", text(module), text(name));
    if !safe(&full) {
        *risky = true;
    }
    if out.imports.len() < MAX_IMPORTS && !out.imports.contains(&full) {
        out.imports.push(full);
    }
}

/// One operation. Ok(true): a STOP.
fn step(
    w: &mut W<'_>,
    st: &mut Vec<Val>,
    memo: &mut Vec<Val>,
    out: &mut Walk,
    risky: &mut bool,
    ops: &mut usize,
) -> Result<bool, PickleError> {
    *ops += 1;
    if *ops > MAX_OPS || st.len() > MAX_STACK {
        return Err(PickleError::Limit);
    }
    let op = w.take(1)?[0];
    let pop = |st: &mut Vec<Val>, n: usize| -> Result<(), PickleError> {
        if st.len() < n {
            return Err(PickleError::StackUnderflow);
        }
        st.truncate(st.len() - n);
        Ok(())
    };
    let to_mark = |st: &mut Vec<Val>| -> Result<(), PickleError> {
        let m = st
            .iter()
            .rposition(|v| *v == Val::Mark)
            .ok_or(PickleError::StackUnderflow)?;
        st.truncate(m);
        Ok(())
    };
    let call = |out: &mut Walk, risky: &bool| {
        if *risky {
            out.suspicious = true;
        }
    };
    let string = |st: &mut Vec<Val>, s: usize, e: usize| st.push(Val::Str(s as u32, e as u32));
    match op {
        b'.' => {
            return Ok(true);
        }
        // Protocol 2+ framing.
        0x80 => {
            w.take(1)?;
        }
        0x95 => {
            w.take(8)?;
        }
        b'(' => st.push(Val::Mark),
        b'0' => pop(st, 1)?,
        b'1' => to_mark(st)?,
        b'2' => {
            let top = *st.last().ok_or(PickleError::StackUnderflow)?;
            st.push(top);
        }
        b'N' | 0x88 | 0x89 | b']' | b'}' | b')' | 0x8f => st.push(Val::Other),
        // Numbers and bytes: pushed, not strings.
        b'I' | b'L' | b'F' => {
            w.line()?;
            st.push(Val::Other);
        }
        b'J' => {
            w.take(4)?;
            st.push(Val::Other);
        }
        b'K' => {
            w.take(1)?;
            st.push(Val::Other);
        }
        b'M' => {
            w.take(2)?;
            st.push(Val::Other);
        }
        b'G' => {
            w.take(8)?;
            st.push(Val::Other);
        }
        0x8a => {
            let n = w.le(1)? as usize;
            w.take(n)?;
            st.push(Val::Other);
        }
        0x8b => {
            let n = w.le(4)? as usize;
            w.take(n)?;
            st.push(Val::Other);
        }
        b'B' | 0x8e | 0x96 | b'C' => {
            let n = match op {
                b'B' => w.le(4)?,
                b'C' => w.le(1)?,
                _ => w.le(8)?,
            } as usize;
            w.take(n)?;
            st.push(Val::Other);
        }
        // Strings.
        b'S' | b'V' => {
            let (s, e) = w.line()?;
            // STRING is quoted: the quotes are not the value.
            let (s, e) = if op == b'S' && e >= s + 2 {
                (s + 1, e - 1)
            } else {
                (s, e)
            };
            string(st, s, e);
        }
        b'T' | b'U' | b'X' | 0x8c | 0x8d => {
            let n = match op {
                b'T' | b'X' => w.le(4)?,
                b'U' | 0x8c => w.le(1)?,
                _ => w.le(8)?,
            } as usize;
            let s = w.at;
            w.take(n)?;
            string(st, s, s + n);
        }
        // Containers built from what is on the stack.
        b'a' => pop(st, 1)?,
        b'e' | b'u' | 0x90 => to_mark(st)?,
        b's' => pop(st, 2)?,
        b't' | b'l' | b'd' | 0x91 => {
            to_mark(st)?;
            st.push(Val::Other);
        }
        0x85..=0x87 => {
            pop(st, usize::from(op - 0x84))?;
            st.push(Val::Other);
        }
        // Persistent ids (every PyTorch checkpoint's storages).
        b'P' => {
            w.line()?;
            st.push(Val::Other);
        }
        b'Q' => {
            pop(st, 1)?;
            st.push(Val::Other);
        }
        0x97 => st.push(Val::Other),
        0x98 => {}
        // Memo.
        0x94 => {
            let top = *st.last().ok_or(PickleError::StackUnderflow)?;
            if memo.len() >= MAX_MEMO {
                return Err(PickleError::Limit);
            }
            memo.push(top);
        }
        b'p' | b'q' | b'r' => {
            let idx = match op {
                b'p' => {
                    let (s, e) = w.line()?;
                    parse_index(&w.b[s..e])?
                }
                b'q' => w.le(1)? as usize,
                _ => w.le(4)? as usize,
            };
            let top = *st.last().ok_or(PickleError::StackUnderflow)?;
            if idx >= MAX_MEMO {
                return Err(PickleError::Limit);
            }
            if memo.len() <= idx {
                memo.resize(idx + 1, Val::Other);
            }
            memo[idx] = top;
        }
        b'g' | b'h' | b'j' => {
            let idx = match op {
                b'g' => {
                    let (s, e) = w.line()?;
                    parse_index(&w.b[s..e])?
                }
                b'h' => w.le(1)? as usize,
                _ => w.le(4)? as usize,
            };
            st.push(memo.get(idx).copied().unwrap_or(Val::Other));
        }
        // Imports.
        b'c' => {
            let (ms, me) = w.line()?;
            let (ns, ne) = w.line()?;
            import(out, risky, &w.b[ms..me], &w.b[ns..ne]);
            st.push(Val::Other);
        }
        b'i' => {
            let (ms, me) = w.line()?;
            let (ns, ne) = w.line()?;
            import(out, risky, &w.b[ms..me], &w.b[ns..ne]);
            to_mark(st)?;
            call(out, risky);
            st.push(Val::Other);
        }
        0x93 => {
            if st.len() < 2 {
                return Err(PickleError::StackUnderflow);
            }
            let (m, n) = (st[st.len() - 2], st[st.len() - 1]);
            st.truncate(st.len() - 2);
            match (m, n) {
                (Val::Str(a, b), Val::Str(c, d)) => {
                    import(
                        out,
                        risky,
                        &w.b[a as usize..b as usize],
                        &w.b[c as usize..d as usize],
                    );
                }
                // Names made some other way: unknown, so not safe.
                _ => import(out, risky, b"?", b"?"),
            }
            st.push(Val::Other);
        }
        0x82..=0x84 => {
            let code = w.le(1 << (op - 0x82))?;
            import(
                out,
                risky,
                b"copyreg.extension",
                code.to_string().as_bytes(),
            );
            st.push(Val::Other);
        }
        // Calls.
        b'R' => {
            pop(st, 2)?;
            call(out, risky);
            st.push(Val::Other);
        }
        0x81 => {
            pop(st, 2)?;
            call(out, risky);
            st.push(Val::Other);
        }
        0x92 => {
            pop(st, 3)?;
            call(out, risky);
            st.push(Val::Other);
        }
        b'o' => {
            to_mark(st)?;
            call(out, risky);
            st.push(Val::Other);
        }
        b'b' => {
            pop(st, 1)?;
            call(out, risky);
        }
        _ => return Err(PickleError::BadOpcode),
    }
    Ok(false)
}

fn parse_index(b: &[u8]) -> Result<usize, PickleError> {
    std::str::from_utf8(b)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or(PickleError::BadOpcode)
}

/// The walk of `body` if it is a pickle: one that starts with a PROTO
/// opcode of protocol 2–5, or (protocols 0 and 1, which have no header)
/// whose first pickle imports a dotted name and walks cleanly to its STOP,
/// or to the body's end a few operations on (cut short: a malicious
/// pickle cut after its import still is one; two lines of text are not).
/// Walked once either way.
pub fn walk_if_pickle(body: &[u8]) -> Option<Walk> {
    match body {
        [0x80, 2..=5, ..] => Some(walk(body)),
        [] => None,
        _ => {
            let w = walk(body);
            let ident = |s: &str| {
                s.split('.').all(|p| {
                    !p.is_empty() && p.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_')
                })
            };
            let pickle = (w.pickles > 0 || (w.error == Some(PickleError::Truncated) && w.ops >= 3))
                && !w.imports.is_empty()
                && w.imports.iter().all(|i| ident(i));
            pickle.then_some(w)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_0_global_and_reduce_is_suspicious() {
        // os.system("id") in protocol 0.
        let p = b"cos\nsystem\n(S'id'\ntR.";
        let w = walk(p);
        assert_eq!(w.imports, vec!["os.system"]);
        assert!(w.suspicious && w.pickles == 1 && w.error.is_none());
        assert!(walk_if_pickle(p).is_some());
    }

    #[test]
    fn stack_global_with_memoised_strings_is_seen() {
        // Protocol 4: "builtins" memoised, fetched back, then "exec".
        let mut p = vec![0x80, 4, 0x95];
        p.extend_from_slice(&[0; 8]);
        p.extend_from_slice(&[0x8c, 8]);
        p.extend_from_slice(b"builtins");
        p.push(0x94); // memo 0
        p.push(b'0'); // pop it
        p.extend_from_slice(&[b'h', 0]); // get memo 0
        p.extend_from_slice(&[0x8c, 4]);
        p.extend_from_slice(b"exec");
        p.push(0x93);
        p.extend_from_slice(&[0x8c, 5]);
        p.extend_from_slice(b"1+1#x");
        p.extend_from_slice(&[0x85, b'R', b'.']);
        let w = walk(&p);
        assert_eq!(w.imports, vec!["builtins.exec"]);
        assert!(w.suspicious);
    }

    #[test]
    fn a_checkpoints_own_imports_are_not_suspicious() {
        let p = b"\x80\x02ccollections\nOrderedDict\nq\x00)Rq\x01.";
        let w = walk(p);
        assert_eq!(w.imports, vec!["collections.OrderedDict"]);
        assert!(!w.suspicious);
    }

    #[test]
    fn garbage_after_a_payload_keeps_what_was_seen_and_says_why() {
        let mut p =
            b"\x80\x02cposix\nsystem\nq\x00X\x02\x00\x00\x00idq\x01\x85q\x02Rq\x03".to_vec();
        p.extend_from_slice(&[0xff, 0xfe]);
        let w = walk(&p);
        assert_eq!(w.imports, vec!["posix.system"]);
        assert!(w.suspicious);
        assert_eq!(w.error, Some(PickleError::BadOpcode));
        // Cut anywhere: never a panic.
        for n in 0..p.len() {
            let _ = walk(&p[..n]);
        }
    }

    #[test]
    fn two_pickles_in_one_body_are_both_walked() {
        let p = b"\x80\x02N.cos\nsystem\n(S'id'\ntR.";
        let w = walk(p);
        assert_eq!(w.pickles, 2);
        assert_eq!(w.imports, vec!["os.system"]);
    }

    #[test]
    fn text_is_not_a_pickle() {
        assert!(walk_if_pickle(b"{\"model\": \"gpt-4o\"}").is_none());
        assert!(walk_if_pickle(b"GET / HTTP/1.1\r\n").is_none());
        assert!(walk_if_pickle(b"cat\ndog\n").is_none());
    }
}
