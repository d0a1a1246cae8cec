//! The classification file (`classification.config`): each class's short
//! name, description and priority, which an alert reports as its category
//! and severity.

use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Class {
    pub description: String,
    pub priority: u8,
}

/// Parses `config classification: shortname,description,priority` lines;
/// `#` comments and blank lines are skipped. Errors name the line.
pub fn parse(text: &str) -> Result<BTreeMap<String, Class>, String> {
    let mut out = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let rest = t.strip_prefix("config classification:").ok_or_else(|| {
            format!(
                "line {}: expected `config classification: name,description,priority`",
                i + 1
            )
        })?;
        let mut parts = rest.splitn(3, ',').map(str::trim);
        let (name, desc, prio) = (parts.next(), parts.next(), parts.next());
        let (Some(name), Some(desc), Some(prio)) = (name, desc, prio) else {
            return Err(format!(
                "line {}: expected three comma-separated fields",
                i + 1
            ));
        };
        let priority = prio
            .parse::<u8>()
            .map_err(|_| format!("line {}: priority `{prio}` is not a number", i + 1))?;
        if name.is_empty() {
            return Err(format!("line {}: empty class name", i + 1));
        }
        out.insert(
            name.to_string(),
            Class {
                description: desc.to_string(),
                priority,
            },
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_classes_and_names_bad_lines() {
        let text = "# comment\n\nconfig classification: trojan-activity,A Network Trojan was detected,1\nconfig classification: not-suspicious, Not Suspicious Traffic , 3\n";
        let c = parse(text).unwrap();
        assert_eq!(c["trojan-activity"].priority, 1);
        assert_eq!(
            c["trojan-activity"].description,
            "A Network Trojan was detected"
        );
        assert_eq!(c["not-suspicious"].description, "Not Suspicious Traffic");
        assert!(parse("config classification: a,b\n")
            .unwrap_err()
            .contains("line 1"));
        assert!(parse("config classification: a,b,high\n")
            .unwrap_err()
            .contains("high"));
        assert!(parse("classification: a,b,1\n").is_err());
    }
}
