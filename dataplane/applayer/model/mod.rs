//! Model artifacts in HTTP bodies (uploads to registries, downloads by
//! inference servers): pickles, and PyTorch checkpoints (a zip whose
//! `*.pkl` members are pickles), walked for the callables they import.
//! What a body imports is the `pickle.imports` buffer, one per line.

pub mod pickle;
pub mod zip;

use pickle::Walk;

/// Bytes of one archive member inflated and walked at most.
pub const MAX_MEMBER: usize = 4 << 20;

/// What the pickles in `body` import: a pickle walked as is, a zip's
/// `.pkl` members each walked (`room` holds an inflated member). None if
/// the body is neither.
pub fn walk_body(body: &[u8], room: &mut Vec<u8>) -> Option<Walk> {
    if zip::is_zip(body) {
        let mut all: Option<Walk> = None;
        for m in zip::members(body) {
            // `*.pkl`, or any member that starts as a pickle of protocol
            // 2+ does (a loader may be pointed at it; picklescan looks).
            if !m.name.ends_with(b".pkl") {
                zip::extract(&m, 2, room);
                if !matches!(room[..], [0x80, 2..=5, ..]) {
                    continue;
                }
            }
            zip::extract(&m, MAX_MEMBER, room);
            let w = pickle::walk(room);
            let a = all.get_or_insert_with(Walk::default);
            for i in w.imports {
                if !a.imports.contains(&i) && a.imports.len() < pickle::MAX_IMPORTS {
                    a.imports.push(i);
                }
            }
            a.suspicious |= w.suspicious;
            a.pickles += w.pickles;
            a.error = a.error.or(w.error);
        }
        return all;
    }
    pickle::looks_like(body).then(|| pickle::walk(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corpus(name: &str) -> Option<Vec<u8>> {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/corpora/pickles")
            .join(name);
        std::fs::read(p).ok()
    }

    #[test]
    fn a_pytorch_zip_with_a_malicious_data_pkl_is_seen() {
        let evil = b"\x80\x02cposix\nsystem\nq\x00X\x02\x00\x00\x00idq\x01\x85q\x02Rq\x03.";
        let z = zip::tests::zip(&[
            ("archive/data.pkl", evil, true),
            ("archive/version", b"3", false),
        ]);
        let mut room = Vec::new();
        let w = walk_body(&z, &mut room).unwrap();
        assert_eq!(w.imports, vec!["posix.system"]);
        assert!(w.suspicious);
        assert!(walk_body(b"{\"a\": 1}", &mut room).is_none());
    }

    #[test]
    fn the_real_pytorch_model_in_the_corpus_imports_only_its_own() {
        let Some(b) = corpus("pytorch_model.bin") else {
            return;
        };
        let mut room = Vec::new();
        let w = walk_body(&b, &mut room).unwrap();
        assert!(!w.suspicious, "{:?}", w.imports);
        assert!(
            w.imports.iter().any(|i| i.starts_with("torch._utils")),
            "{:?}",
            w.imports
        );
    }
}
