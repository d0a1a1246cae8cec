//! The Suricata rule parser against a real ruleset: the Emerging Threats
//! Open rules in ../shared/corpora/et-open (read in place, never copied
//! into the project). Skipped, with a message, where the corpus is absent.

use std::collections::BTreeSet;
use std::path::PathBuf;
use tollgate::rules::vars::Vars;
use tollgate::rules::{classification, parse_content, read_rules};

fn corpus() -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/corpora/et-open");
    p.is_dir().then_some(p)
}

#[test]
fn every_enabled_et_open_rule_parses() {
    let Some(dir) = corpus() else {
        eprintln!("../shared/corpora/et-open is absent: skipping the ET Open parse check");
        return;
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "rules"))
        .collect();
    files.sort();
    let (mut rules, mut contents) = (0usize, 0usize);
    let mut sids = BTreeSet::new();
    let mut errors = Vec::new();
    let mut expected_contents = 0usize;
    let vars = Vars::suricata_defaults();
    let classes =
        classification::parse(&std::fs::read_to_string(dir.join("classification.config")).unwrap())
            .unwrap();
    for f in &files {
        // An independent count: enabled rule lines, and `content:` options
        // in them (every ET Open rule is on one line).
        let text = std::fs::read_to_string(f).unwrap();
        for line in text.lines().map(str::trim) {
            if ["alert ", "drop ", "pass ", "reject "]
                .iter()
                .any(|a| line.starts_with(a))
            {
                expected_contents +=
                    line.matches("; content:").count() + line.matches("(content:").count();
            }
        }
        for (loc, r) in read_rules(f).unwrap() {
            match r {
                Ok(r) => {
                    rules += 1;
                    sids.insert(r.sid);
                    // Every header expression resolves with Suricata's
                    // default variables, and every class is defined.
                    let header = vars
                        .addr_matcher(&r.src)
                        .and(vars.addr_matcher(&r.dst))
                        .and(vars.port_matcher(&r.src_ports))
                        .and(vars.port_matcher(&r.dst_ports));
                    if let Err(e) = header {
                        errors.push(format!("{}:{}: {e}", loc.file.display(), loc.line));
                    }
                    for o in r.options.iter().filter(|o| o.keyword == "classtype") {
                        let c = o.value.as_deref().unwrap_or("").trim();
                        if !classes.contains_key(c) {
                            errors.push(format!(
                                "{}:{}: class {c} is not defined",
                                loc.file.display(),
                                loc.line
                            ));
                        }
                    }
                    for o in r.options.iter().filter(|o| o.keyword == "content") {
                        parse_content("content", o.value.as_deref().unwrap()).unwrap();
                        contents += 1;
                    }
                }
                Err(e) => errors.push(format!("{}:{}: {e}", loc.file.display(), loc.line)),
            }
        }
    }
    assert!(
        errors.is_empty(),
        "{} rules did not parse or resolve, e.g. {:?}",
        errors.len(),
        &errors[..errors.len().min(5)]
    );
    assert_eq!(rules, 24_827, "the corpus README's count of enabled rules");
    assert_eq!(sids.len(), rules, "every sid once");
    assert_eq!(contents, expected_contents);
}

fn tollgate(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn rules_check_reports_loaded_and_skipped_on_et_open() {
    let Some(dir) = corpus() else {
        eprintln!("../shared/corpora/et-open is absent: skipping rules check on ET Open");
        return;
    };
    let out = tollgate(&["rules", "check", dir.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("rules read 24827, parse errors 0"), "{text}");
    let loaded: usize = text
        .split("loaded ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap();
    assert!(loaded > 1000, "{text}");
    // HTTP rules load (14,544 in the corpus; the app layer's target is
    // 95 %); what does not is named by reason.
    let http: usize = text
        .split("loaded by protocol: ")
        .nth(1)
        .and_then(|s| s.split("http ").nth(1))
        .and_then(|s| s.split(',').next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap();
    assert!(http >= 13_800, "{http} http rules loaded: {text}");
    assert!(!text.contains("protocol http needs its app-layer parser"));
    // DNS rules too (3,976 in the corpus; the target is 95 %).
    let dns: usize = text
        .split("loaded by protocol: ")
        .nth(1)
        .and_then(|s| s.split("dns ").nth(1))
        .and_then(|s| s.split(',').next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap();
    assert!(dns >= 3_780, "{dns} dns rules loaded: {text}");
    // And TLS rules (2,547; the target is 2,420; all load).
    let tls: usize = text
        .split("loaded by protocol: ")
        .nth(1)
        .and_then(|s| s.split("tls ").nth(1))
        .and_then(|s| s.split(',').next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap();
    assert!(tls >= 2_420, "{tls} tls rules loaded: {text}");
    assert!(!text.contains("protocol dns needs its app-layer parser"));
    assert!(text.contains("Hyperscan compile"));
}

#[test]
fn rules_check_names_file_line_and_keyword_and_exits_2() {
    let dir = std::env::temp_dir().join(format!("tollgate-rulescheck-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("local.rules");
    std::fs::write(
        &f,
        "alert tcp any any -> any any (msg:\"ok\"; content:\"sk-\"; sid:1;)\n\n\
         alert tcp any any -> any any (msg:\"typo\"; contnet:\"x\"; sid:2;)\n",
    )
    .unwrap();
    let out = tollgate(&["rules", "check", f.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains("local.rules:3: keyword `contnet`: unknown keyword"),
        "{text}"
    );
    assert!(
        text.contains("rules read 2, parse errors 1, duplicates dropped 0, loaded 1"),
        "{text}"
    );
    let out = tollgate(&[
        "rules",
        "check",
        f.to_str().unwrap(),
        "--set-var",
        "HOME_NET",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("NAME=VALUE"));
    std::fs::remove_dir_all(&dir).unwrap();
}
