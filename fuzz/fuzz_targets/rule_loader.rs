//! Any text as a rules file: each line parses or is named as an error, and
//! each rule that parses compiles or is skipped with a reason; nothing
//! panics, however the options, contents, pcre and byte checks are mangled.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate::detect::{compile_rule_with, DetectConfig};
use tollgate::rules::vars::Vars;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let vars = Vars::suricata_defaults();
    let classes = Default::default();
    let cfg = DetectConfig::default();
    for (_, parsed) in tollgate::rules::parse_rules_text(std::path::Path::new("fuzz.rules"), text) {
        if let Ok(rule) = parsed {
            if let Ok((r, rx)) = compile_rule_with(&rule, &vars, &classes, &cfg) {
                // A compiled chain must evaluate on any buffer.
                let mut contents = r.contents.clone();
                let mut checks = r.checks.clone();
                tollgate::detect::content::link(&mut contents, &mut checks);
                let mut cx = tollgate::detect::content::Inspection::new(rx, 200);
                let _ = tollgate::detect::content::matches_rule(
                    &contents,
                    &checks,
                    r.b64.as_ref(),
                    &mut cx,
                    data,
                    0,
                );
                // Header chains (and the asn1, byte variables … in them)
                // on the same bytes.
                for h in &r.header_chains {
                    let _ = tollgate::detect::content::matches_with(
                        &h.contents,
                        &h.checks,
                        &mut cx,
                        data,
                    );
                }
            }
        }
    }
});
