//! The layout rules of `ARCHITECTURE.md` that code can check: no import
//! cycle between the modules of `dataplane/` (each `crate::MODULE`
//! reference outside test code is an edge), a worker module that keeps only
//! the calls of its stages, and one pipeline builder for `replay` and `run`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn dataplane() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("dataplane")
}

/// The top-level modules: `name.rs` files and folders, less the crate
/// roots and our DPDK bindings (a crate of their own).
fn modules() -> BTreeSet<String> {
    std::fs::read_dir(dataplane())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let p = e.path();
            let name = p.file_stem()?.to_str()?.to_string();
            let ok = if p.is_dir() {
                name != "dpdk-sys"
            } else {
                p.extension().is_some_and(|x| x == "rs") && name != "lib" && name != "main"
            };
            ok.then_some(name)
        })
        .collect()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().filter_map(|e| e.ok()) {
        let p = e.path();
        if p.is_dir() {
            if !p.ends_with("dpdk-sys") {
                rust_files(&p, out);
            }
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// A file's code without its test module (tests may use the capture
/// library or any other module without making a layer depend on it).
fn code_of(text: &str) -> &str {
    let mut cut = text.len();
    let mut from = 0;
    while let Some(i) = text[from..].find("#[cfg(test)]") {
        let at = from + i;
        let rest = text[at + "#[cfg(test)]".len()..].trim_start();
        if rest.starts_with("mod ") || rest.starts_with("pub mod ") {
            cut = at;
            break;
        }
        from = at + 1;
    }
    &text[..cut]
}

/// Module → (module it refers to → first place it does).
fn edges() -> BTreeMap<String, BTreeMap<String, String>> {
    let mods = modules();
    let root = dataplane();
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    let mut g: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for f in files {
        let rel = f.strip_prefix(&root).unwrap();
        let top = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        if !mods.contains(&top) {
            continue;
        }
        let text = std::fs::read_to_string(&f).unwrap();
        for (n, line) in code_of(&text).lines().enumerate() {
            let mut rest = line;
            while let Some(i) = rest.find("crate::") {
                rest = &rest[i + "crate::".len()..];
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if name != top && mods.contains(&name) {
                    g.entry(top.clone())
                        .or_default()
                        .entry(name)
                        .or_insert_with(|| format!("{}:{}", rel.display(), n + 1));
                }
            }
        }
    }
    g
}

/// The strongly connected components with more than one module (Tarjan).
fn cycles(g: &BTreeMap<String, BTreeMap<String, String>>) -> Vec<Vec<String>> {
    struct T<'a> {
        g: &'a BTreeMap<String, BTreeMap<String, String>>,
        index: BTreeMap<String, usize>,
        low: BTreeMap<String, usize>,
        stack: Vec<String>,
        on: BTreeSet<String>,
        out: Vec<Vec<String>>,
    }
    fn visit(t: &mut T<'_>, v: &str) {
        let i = t.index.len();
        t.index.insert(v.to_string(), i);
        t.low.insert(v.to_string(), i);
        t.stack.push(v.to_string());
        t.on.insert(v.to_string());
        let next: Vec<String> =
            t.g.get(v)
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default();
        for w in next {
            if !t.index.contains_key(&w) {
                visit(t, &w);
                let lw = t.low[&w];
                let lv = t.low.get_mut(v).unwrap();
                *lv = (*lv).min(lw);
            } else if t.on.contains(&w) {
                let iw = t.index[&w];
                let lv = t.low.get_mut(v).unwrap();
                *lv = (*lv).min(iw);
            }
        }
        if t.low[v] == t.index[v] {
            let mut c = Vec::new();
            while let Some(w) = t.stack.pop() {
                t.on.remove(&w);
                let done = w == v;
                c.push(w);
                if done {
                    break;
                }
            }
            if c.len() > 1 {
                c.sort();
                t.out.push(c);
            }
        }
    }
    let mut t = T {
        g,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in modules() {
        if !t.index.contains_key(&v) {
            visit(&mut t, &v);
        }
    }
    t.out
}

#[test]
fn no_import_cycle_between_dataplane_modules() {
    let g = edges();
    let found = cycles(&g);
    let explain: Vec<String> = found
        .iter()
        .map(|c| {
            let inner: Vec<String> = c
                .iter()
                .flat_map(|a| {
                    g.get(a)
                        .into_iter()
                        .flatten()
                        .filter(|(b, _)| c.contains(b))
                        .map(move |(b, at)| format!("{a} -> {b} ({at})"))
                })
                .collect();
            format!("{{{}}}: {}", c.join(", "), inner.join("; "))
        })
        .collect();
    assert!(found.is_empty(), "import cycles: {}", explain.join(" | "));
}

#[test]
fn the_checker_finds_a_cycle_when_there_is_one() {
    let mut g: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for (a, b) in [
        ("flow", "eve"),
        ("eve", "stats"),
        ("stats", "flow"),
        ("decode", "io"),
    ] {
        g.entry(a.into()).or_default().insert(b.into(), "x".into());
    }
    let c = cycles(&g);
    assert_eq!(c, vec![vec!["eve", "flow", "stats"]]);
    assert_eq!(
        code_of("use a;\n#[cfg(test)]\nmod tests {\n use crate::x;\n}\n"),
        "use a;\n"
    );
}

#[test]
fn the_worker_module_keeps_only_the_calls_of_its_stages() {
    let text = std::fs::read_to_string(dataplane().join("worker/mod.rs")).unwrap();
    let lines = text.lines().count();
    assert!(
        lines <= 800,
        "dataplane/worker/mod.rs has {lines} lines (800 at most): move a stage's work into its module"
    );
}

#[test]
fn replay_and_run_build_their_pipelines_with_the_same_function() {
    for cmd in ["replay.rs", "run.rs"] {
        let text = std::fs::read_to_string(dataplane().join(cmd)).unwrap();
        let code = code_of(&text);
        assert!(
            code.contains("crate::pipeline::build("),
            "{cmd} does not build its pipeline with pipeline::build"
        );
        for own in [
            "Worker::with_rings(",
            "Worker::new(",
            "handoff_mesh(",
            "EveWriter::spawn(",
            "ScorerJob::new(",
            "Scorer::spawn(",
        ] {
            assert!(
                !code.contains(own),
                "{cmd} builds a part of the pipeline itself ({own}): pipeline::build does"
            );
        }
    }
}
