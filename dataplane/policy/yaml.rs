//! A YAML document as a tree that remembers lines, so that what is wrong
//! in a policy file is named by its line (yaml-rust2's own tree forgets
//! them; its event parser does not).

use yaml_rust2::parser::{MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;
use yaml_rust2::Event;

/// A node and the line (1-based) it starts on.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub line: usize,
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Scalar(String),
    Seq(Vec<Node>),
    /// Keys (with their lines) in file order.
    Map(Vec<(String, usize, Node)>),
    Null,
}

impl Node {
    /// A scalar, or each scalar of a sequence: `5001` and `[5001, 5002]`
    /// alike.
    pub fn scalars(&self) -> Result<Vec<(&str, usize)>, String> {
        match &self.value {
            Value::Scalar(s) => Ok(vec![(s.as_str(), self.line)]),
            Value::Seq(items) => items
                .iter()
                .map(|n| match &n.value {
                    Value::Scalar(s) => Ok((s.as_str(), n.line)),
                    _ => Err(format!(
                        "line {}: expected a value, not a list or map",
                        n.line
                    )),
                })
                .collect(),
            Value::Null => Ok(Vec::new()),
            Value::Map(_) => Err(format!(
                "line {}: expected a value or a list of values, not a map",
                self.line
            )),
        }
    }

    pub fn scalar(&self) -> Result<&str, String> {
        match &self.value {
            Value::Scalar(s) => Ok(s),
            _ => Err(format!("line {}: expected a single value", self.line)),
        }
    }
}

#[derive(Default)]
struct Builder {
    /// Open collections: a node, and for a map the key waiting for its
    /// value.
    stack: Vec<(Node, Option<(String, usize)>)>,
    root: Option<Node>,
    error: Option<String>,
}

impl Builder {
    fn push_value(&mut self, node: Node) {
        let Some((parent, key)) = self.stack.last_mut() else {
            if self.root.is_none() {
                self.root = Some(node);
            }
            return;
        };
        match &mut parent.value {
            Value::Seq(items) => items.push(node),
            Value::Map(entries) => match key.take() {
                Some((k, line)) => {
                    if entries.iter().any(|(e, _, _)| *e == k) && self.error.is_none() {
                        self.error = Some(format!("line {line}: `{k}` is given twice"));
                    }
                    entries.push((k, line, node));
                }
                None => match node.value {
                    Value::Scalar(s) => *key = Some((s, node.line)),
                    _ => {
                        if self.error.is_none() {
                            self.error =
                                Some(format!("line {}: a key must be a plain value", node.line));
                        }
                        *key = Some((String::new(), node.line));
                    }
                },
            },
            _ => {}
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let line = mark.line();
        match ev {
            Event::Scalar(s, style, _, _) => {
                let plain = matches!(style, yaml_rust2::scanner::TScalarStyle::Plain);
                let value = if plain && (s.is_empty() || s == "~" || s == "null") {
                    Value::Null
                } else {
                    Value::Scalar(s)
                };
                self.push_value(Node { line, value });
            }
            Event::SequenceStart(..) => self.stack.push((
                Node {
                    line,
                    value: Value::Seq(Vec::new()),
                },
                None,
            )),
            Event::MappingStart(..) => self.stack.push((
                Node {
                    line,
                    value: Value::Map(Vec::new()),
                },
                None,
            )),
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some((node, _)) = self.stack.pop() {
                    self.push_value(node);
                }
            }
            Event::Alias(_) => {
                if self.error.is_none() {
                    self.error = Some(format!("line {line}: aliases are not taken here"));
                }
                self.push_value(Node {
                    line,
                    value: Value::Null,
                });
            }
            _ => {}
        }
    }
}

/// The document in `text` (the first, if several).
pub fn parse(text: &str) -> Result<Node, String> {
    let mut b = Builder::default();
    Parser::new_from_str(text)
        .load(&mut b, false)
        .map_err(|e| e.to_string())?;
    if let Some(e) = b.error {
        return Err(e);
    }
    Ok(b.root.unwrap_or(Node {
        line: 1,
        value: Value::Null,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_kept_and_duplicate_keys_refused() {
        let n = parse("a: 1\nb:\n  - x\n  - [y, z]\nc: {d: 2}\n").unwrap();
        let Value::Map(m) = &n.value else { panic!() };
        assert_eq!(m[0].0, "a");
        assert_eq!((m[1].0.as_str(), m[1].1), ("b", 2));
        let Value::Seq(items) = &m[1].2.value else {
            panic!()
        };
        assert_eq!(items[0].line, 3);
        assert_eq!(items[1].scalars().unwrap(), vec![("y", 4), ("z", 4)]);
        assert_eq!(m[2].1, 5);
        assert!(parse("a: 1\na: 2\n").unwrap_err().contains("line 2"));
        assert!(parse("a: [1\n").is_err());
    }
}
