//! Model artifacts in HTTP bodies (uploads to registries, downloads by
//! inference servers): pickles, and PyTorch checkpoints (a zip whose
//! `*.pkl` members are pickles), walked for the callables they import;
//! safetensors headers checked; GGUF, ONNX, NumPy, HDF5 and joblib known
//! by their first bytes. What a body imports is the `pickle.imports`
//! buffer, one per line; what it is goes into EVE's `fileinfo` event.

pub mod pickle;
pub mod safetensors;
pub mod zip;

/// What a body is, by its first bytes and structure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Pickle,
    /// A pickle that imports joblib's array wrappers, or joblib's own
    /// compressed header.
    Joblib,
    /// A zip with pickle members (`torch.save`'s format).
    PyTorch,
    /// Another zip (`.npz`, a Keras v3 file …).
    Zip,
    /// A 7-Zip archive: not opened (counted).
    SevenZip,
    Safetensors,
    Gguf,
    Onnx,
    Npy,
    Hdf5,
}

impl Format {
    pub const ALL: [Format; 10] = [
        Format::Pickle,
        Format::Joblib,
        Format::PyTorch,
        Format::Zip,
        Format::SevenZip,
        Format::Safetensors,
        Format::Gguf,
        Format::Onnx,
        Format::Npy,
        Format::Hdf5,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Format::Pickle => "pickle",
            Format::Joblib => "joblib",
            Format::PyTorch => "pytorch",
            Format::Zip => "zip",
            Format::SevenZip => "7z",
            Format::Safetensors => "safetensors",
            Format::Gguf => "gguf",
            Format::Onnx => "onnx",
            Format::Npy => "npy",
            Format::Hdf5 => "hdf5",
        }
    }

    pub fn of_name(s: &[u8]) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.name().as_bytes() == s)
    }

    /// Its `fileinfo.magic`, worded as libmagic words the formats it
    /// knows.
    pub fn magic(self) -> &'static str {
        match self {
            Format::Pickle => "Python pickle data",
            Format::Joblib => "joblib pickle data",
            Format::PyTorch => "Zip archive data (PyTorch checkpoint)",
            Format::Zip => "Zip archive data",
            Format::SevenZip => "7-zip archive data",
            Format::Safetensors => "safetensors tensor data",
            Format::Gguf => "GGUF model data",
            Format::Onnx => "ONNX model data",
            Format::Npy => "NumPy array data",
            Format::Hdf5 => "Hierarchical Data Format (version 5) data",
        }
    }
}

/// What one file is and what it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    pub format: Format,
    /// Its pickles' imports and calls (pickle, joblib, PyTorch).
    pub walk: Option<Walk>,
    /// Tensors its header names (safetensors).
    pub tensors: Option<u32>,
    /// Why it does not hold together (a pickle's walk error, a
    /// safetensors header's lie), by name.
    pub error: Option<&'static str>,
}

/// What `body` is, if a model artifact; `size` is the whole file's
/// (None if unknown: a safetensors header is then not checked against
/// it). `room` holds an inflated zip member.
pub fn identify(body: &[u8], size: Option<u64>, room: &mut Vec<u8>) -> Option<Artifact> {
    let magic = |m: &[u8]| body.starts_with(m);
    let plain = |format| {
        Some(Artifact {
            format,
            walk: None,
            tensors: None,
            error: None,
        })
    };
    if magic(b"GGUF") && matches!(body.get(4..8), Some([1..=3, 0, 0, 0])) {
        return plain(Format::Gguf);
    }
    if magic(b"\x93NUMPY") {
        return plain(Format::Npy);
    }
    if magic(b"\x89HDF\r\n\x1a\n") {
        return plain(Format::Hdf5);
    }
    if magic(b"7z\xbc\xaf\x27\x1c") {
        return plain(Format::SevenZip);
    }
    if magic(b"ZF0x") {
        return plain(Format::Joblib);
    }
    // ONNX's ModelProto: ir_version (field 1, a small varint) first, then
    // producer, graph or opset fields.
    if matches!(
        body,
        [0x08, 3..=12, 0x12 | 0x1a | 0x22 | 0x2a | 0x3a | 0x42, ..]
    ) {
        return plain(Format::Onnx);
    }
    if safetensors::looks_like(body) {
        let h = safetensors::read(body, size);
        return Some(Artifact {
            format: Format::Safetensors,
            walk: None,
            tensors: Some(h.tensors),
            error: h.lie.map(safetensors::Lie::name),
        });
    }
    let zip = zip::is_zip(body);
    let Some(w) = walk_body(body, room) else {
        return if zip { plain(Format::Zip) } else { None };
    };
    let format = if zip {
        Format::PyTorch
    } else if w.imports.iter().any(|i| i.starts_with("joblib.")) {
        Format::Joblib
    } else {
        Format::Pickle
    };
    Some(Artifact {
        format,
        error: w.error.map(pickle::PickleError::name),
        walk: Some(w),
        tensors: None,
    })
}

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
    pickle::walk_if_pickle(body)
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
