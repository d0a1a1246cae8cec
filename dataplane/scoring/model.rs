//! XGBoost models as `Booster.save_model("model.json")` writes them
//! (format versions 1.7 to 3.x), evaluated as XGBoost evaluates them: in
//! f32, a split sends a value below its condition left and a missing
//! (NaN) value the tree's default way, the base score goes through the
//! objective's link into margin space, the trees' leaves are added to it
//! one tree at a time, and the objective's transform makes the score.
//!
//! Accepted: `gbtree` boosters with numerical splits, one output, and the
//! objectives binary:logistic, reg:logistic and reg:squarederror. Refused
//! at load, each with its own message: dart and gblinear boosters,
//! multiclass and multi-target models, categorical splits, other
//! objectives, and features that are not Tollgate's.

use super::features::{self, N_FEATURES};
use serde_json::Value;
use std::path::Path;

/// The objectives a model may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Objective {
    BinaryLogistic,
    RegLogistic,
    RegSquaredError,
}

impl Objective {
    pub fn name(self) -> &'static str {
        match self {
            Objective::BinaryLogistic => "binary:logistic",
            Objective::RegLogistic => "reg:logistic",
            Objective::RegSquaredError => "reg:squarederror",
        }
    }

    fn logistic(self) -> bool {
        matches!(self, Objective::BinaryLogistic | Objective::RegLogistic)
    }
}

/// One tree node. A leaf has `left == LEAF` and its value in `value`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Node {
    left: u32,
    right: u32,
    /// Index into the feature record (mapped from the model's own index).
    feature: u32,
    /// Split condition, or the leaf's value.
    value: f32,
    default_left: bool,
    /// The node's weight (its mean prediction), for contributions.
    weight: f32,
}

const LEAF: u32 = u32::MAX;

#[derive(Debug, Clone)]
pub struct Model {
    /// What alerts name: the file's name.
    pub name: String,
    pub version: [u64; 3],
    pub objective: Objective,
    /// The base score in output space, as the file gives it.
    pub base_score: f32,
    /// It in margin space, where the trees add up.
    pub base_margin: f32,
    trees: Vec<Vec<Node>>,
    /// Tree depth at most, over all trees.
    pub max_depth: usize,
    /// The alert threshold it was trained for (the `tollgate_threshold`
    /// attribute scripts/train_flow_model.py sets), when it says.
    pub threshold: Option<f32>,
}

fn field<'a>(v: &'a Value, path: &[&str]) -> Result<&'a Value, String> {
    let mut cur = v;
    for (i, k) in path.iter().enumerate() {
        cur = cur
            .get(k)
            .ok_or_else(|| format!("no `{}` in the model", path[..=i].join(".")))?;
    }
    Ok(cur)
}

/// XGBoost writes most parameters as strings: "1", "5E-1", "[5E-1]".
fn number(v: &Value, what: &str) -> Result<f64, String> {
    let bad = || format!("`{what}` is not a number: {v}");
    match v {
        Value::Number(n) => n.as_f64().ok_or_else(bad),
        Value::String(s) => {
            let t = s.trim();
            let t = t
                .strip_prefix('[')
                .and_then(|t| t.strip_suffix(']'))
                .unwrap_or(t);
            if t.contains(',') {
                return Err(format!(
                    "`{what}` has several values ({s}): a multi-output model"
                ));
            }
            t.trim().parse::<f64>().map_err(|_| bad())
        }
        _ => Err(bad()),
    }
    .and_then(|x| {
        // "NaN", "inf", "1e999" parse; none of them is a model parameter.
        if x.is_finite() {
            Ok(x)
        } else {
            Err(format!("`{what}` is not a finite number: {v}"))
        }
    })
}

fn array<'a>(tree: &'a Value, k: &str, t: usize) -> Result<&'a Vec<Value>, String> {
    tree.get(k)
        .and_then(Value::as_array)
        .ok_or_else(|| format!("tree {t}: no `{k}` array"))
}

impl Model {
    pub fn load(path: &Path) -> Result<Model, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        if super::anomaly::Detector::is_state(&text) {
            return Err(format!(
                "{}: an anomaly detector's state, not an XGBoost model",
                path.display()
            ));
        }
        if super::prompt::PromptModel::is_prompt_model(&text) {
            return Err(format!(
                "{}: a prompt model, not a flow model: give it to --prompt-model",
                path.display()
            ));
        }
        let name = path
            .file_name()
            .map_or_else(|| "model".into(), |n| n.to_string_lossy().into_owned());
        Model::from_json(&text, &name).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Parses a model from its JSON text.
    pub fn from_json(text: &str, name: &str) -> Result<Model, String> {
        let v: Value = serde_json::from_str(text).map_err(|e| {
            format!("not an XGBoost JSON model ({e}); UBJSON and the old binary format are not read: save with a .json name")
        })?;
        let version: Vec<u64> = field(&v, &["version"])?
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_u64).collect())
            .unwrap_or_default();
        let version = match version[..] {
            [a, b, c] => [a, b, c],
            _ => return Err("`version` is not [major, minor, patch]".into()),
        };
        if version < [1, 7, 0] || version[0] > 3 {
            return Err(format!(
                "written by XGBoost {}.{}.{}; models from 1.7 to 3.x are read",
                version[0], version[1], version[2]
            ));
        }
        // A model that says which feature list it was trained on
        // (scripts/train_flow_model.py sets the attribute) must say ours.
        if let Some(s) = v
            .pointer("/learner/attributes/tollgate_feature_schema")
            .and_then(Value::as_str)
        {
            if s != crate::flow::features::FEATURE_SCHEMA {
                return Err(format!(
                    "trained on feature schema {s}; this Tollgate computes schema {} (`tollgate features` lists it): retrain",
                    crate::flow::features::FEATURE_SCHEMA
                ));
            }
        }
        let learner = field(&v, &["learner"])?;
        let booster = field(learner, &["gradient_booster", "name"])?
            .as_str()
            .unwrap_or("");
        if booster != "gbtree" {
            return Err(format!(
                "a `{booster}` booster: only gbtree models are evaluated (dart and gblinear are refused)"
            ));
        }
        let objective = field(learner, &["objective", "name"])?
            .as_str()
            .unwrap_or("");
        let objective = match objective {
            "binary:logistic" => Objective::BinaryLogistic,
            "reg:logistic" => Objective::RegLogistic,
            "reg:squarederror" => Objective::RegSquaredError,
            o if o.starts_with("multi:") => {
                return Err(format!("objective {o}: multiclass models are refused"))
            }
            o => {
                return Err(format!(
                "objective {o}: binary:logistic, reg:logistic and reg:squarederror are evaluated"
            ))
            }
        };
        let lmp = field(learner, &["learner_model_param"])?;
        let num_class = number(field(lmp, &["num_class"])?, "num_class")?;
        if num_class > 1.0 {
            return Err(format!(
                "{num_class} classes: multiclass models are refused"
            ));
        }
        if let Some(t) = lmp.get("num_target") {
            let t = number(t, "num_target")?;
            if t > 1.0 {
                return Err(format!("{t} targets: multi-target models are refused"));
            }
        }
        let base_score = number(field(lmp, &["base_score"])?, "base_score")? as f32;
        if !base_score.is_finite() {
            return Err(format!(
                "base_score {base_score} is out of the range of an f32"
            ));
        }
        let base_margin = if objective.logistic() {
            if !(base_score > 0.0 && base_score < 1.0) {
                return Err(format!(
                    "base_score {base_score} is not a probability in (0, 1)"
                ));
            }
            -(1.0f32 / base_score - 1.0).ln()
        } else {
            base_score
        };
        // Features: every one the model names must be ours.
        let names: Vec<&str> = learner
            .get("feature_names")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if names.is_empty() {
            return Err("the model has no feature_names: train it on a DMatrix (or DataFrame) named after `tollgate features`".into());
        }
        let num_feature = number(field(lmp, &["num_feature"])?, "num_feature")? as usize;
        if num_feature != names.len() {
            return Err(format!(
                "num_feature {num_feature} but {} feature_names",
                names.len()
            ));
        }
        let unknown: Vec<&str> = names
            .iter()
            .copied()
            .filter(|n| features::index(n).is_none())
            .collect();
        if !unknown.is_empty() {
            return Err(format!(
                "features Tollgate does not compute: {} (`tollgate features` lists ours)",
                unknown.join(", ")
            ));
        }
        let map: Vec<u32> = names
            .iter()
            .map(|n| features::index(n).unwrap_or(0) as u32)
            .collect();
        if let Some(types) = learner.get("feature_types").and_then(Value::as_array) {
            if types.iter().any(|t| t.as_str() == Some("c")) {
                return Err("categorical features: categorical splits are refused".into());
            }
        }
        let model = field(learner, &["gradient_booster", "model"])?;
        let trees_json = field(model, &["trees"])?
            .as_array()
            .ok_or("`trees` is not an array")?;
        let mut trees = Vec::with_capacity(trees_json.len());
        let mut max_depth = 0;
        for (t, tree) in trees_json.iter().enumerate() {
            let (nodes, depth) = parse_tree(tree, t, &map)?;
            max_depth = max_depth.max(depth);
            trees.push(nodes);
        }
        if trees.is_empty() {
            return Err("the model has no trees".into());
        }
        let threshold = match v.pointer("/learner/attributes/tollgate_threshold") {
            None => None,
            Some(t) => Some(
                t.as_str()
                    .and_then(|s| s.parse::<f32>().ok())
                    .filter(|t| (0.0..=1.0).contains(t))
                    .ok_or("the tollgate_threshold attribute is not a number from 0 to 1")?,
            ),
        };
        Ok(Model {
            name: name.to_string(),
            version,
            objective,
            base_score,
            base_margin,
            trees,
            max_depth,
            threshold,
        })
    }

    pub fn trees(&self) -> usize {
        self.trees.len()
    }

    /// The leaf `x` reaches in tree `t`.
    fn leaf(tree: &[Node], x: &[f32; N_FEATURES]) -> usize {
        let mut i = 0usize;
        loop {
            let n = &tree[i];
            if n.left == LEAF {
                return i;
            }
            let v = x[n.feature as usize];
            let left = if v.is_nan() {
                n.default_left
            } else {
                v < n.value
            };
            i = if left { n.left } else { n.right } as usize;
        }
    }

    /// The margin: the base margin plus every tree's leaf, added in f32 in
    /// tree order.
    pub fn margin(&self, x: &[f32; N_FEATURES]) -> f32 {
        let mut m = self.base_margin;
        for t in &self.trees {
            m += t[Self::leaf(t, x)].value;
        }
        m
    }

    /// The score, in output space (a probability for logistic objectives).
    pub fn score(&self, x: &[f32; N_FEATURES]) -> f32 {
        let m = self.margin(x);
        if self.objective.logistic() {
            1.0f32 / (1.0f32 + (-m).exp())
        } else {
            m
        }
    }

    /// Each feature's contribution to the margin along the paths `x` takes
    /// (the change in node weight at each split it decides, summed over
    /// trees), into `out`.
    pub fn contributions(&self, x: &[f32; N_FEATURES], out: &mut [f32; N_FEATURES]) {
        out.fill(0.0);
        for t in &self.trees {
            let mut i = 0usize;
            loop {
                let n = &t[i];
                if n.left == LEAF {
                    break;
                }
                let v = x[n.feature as usize];
                let left = if v.is_nan() {
                    n.default_left
                } else {
                    v < n.value
                };
                let next = if left { n.left } else { n.right } as usize;
                out[n.feature as usize] += t[next].weight - n.weight;
                i = next;
            }
        }
    }
}

/// One tree's nodes, checked: children inside the tree and below their
/// parent (so every walk ends), split features mapped to the record.
fn parse_tree(tree: &Value, t: usize, map: &[u32]) -> Result<(Vec<Node>, usize), String> {
    let left = array(tree, "left_children", t)?;
    let right = array(tree, "right_children", t)?;
    let cond = array(tree, "split_conditions", t)?;
    let index = array(tree, "split_indices", t)?;
    let dleft = array(tree, "default_left", t)?;
    let weights = array(tree, "base_weights", t)?;
    let n = left.len();
    if n == 0
        || [
            right.len(),
            cond.len(),
            index.len(),
            dleft.len(),
            weights.len(),
        ] != [n; 5]
    {
        return Err(format!("tree {t}: node arrays of different lengths"));
    }
    if let Some(st) = tree.get("split_type").and_then(Value::as_array) {
        if st.iter().any(|s| s.as_u64() != Some(0)) {
            return Err(format!("tree {t}: categorical splits are refused"));
        }
    }
    if tree
        .get("categories")
        .and_then(Value::as_array)
        .is_some_and(|c| !c.is_empty())
    {
        return Err(format!("tree {t}: categorical splits are refused"));
    }
    let int = |v: &Value, what: &str, i: usize| {
        v.as_i64()
            .ok_or_else(|| format!("tree {t} node {i}: `{what}` is not an integer"))
    };
    let mut nodes = Vec::with_capacity(n);
    for i in 0..n {
        let l = int(&left[i], "left_children", i)?;
        let r = int(&right[i], "right_children", i)?;
        let value = cond[i]
            .as_f64()
            .ok_or_else(|| format!("tree {t} node {i}: split condition is not a number"))?
            as f32;
        let weight = weights[i].as_f64().unwrap_or(0.0) as f32;
        if !value.is_finite() || !weight.is_finite() {
            return Err(format!(
                "tree {t} node {i}: a value out of the range of an f32"
            ));
        }
        let node = if l == -1 {
            Node {
                left: LEAF,
                right: LEAF,
                feature: 0,
                value,
                default_left: false,
                weight,
            }
        } else {
            let ok = |c: i64| c > i as i64 && (c as usize) < n;
            if !ok(l) || !ok(r) {
                return Err(format!("tree {t} node {i}: children {l}, {r} out of order"));
            }
            let f = int(&index[i], "split_indices", i)? as usize;
            let feature = *map.get(f).ok_or_else(|| {
                format!("tree {t} node {i}: split on feature {f}, beyond num_feature")
            })?;
            Node {
                left: l as u32,
                right: r as u32,
                feature,
                value,
                default_left: int(&dleft[i], "default_left", i)? != 0,
                weight,
            }
        };
        nodes.push(node);
    }
    // Depth, by walking (children come after parents).
    let mut depth = vec![0usize; n];
    for i in 0..n {
        if nodes[i].left != LEAF {
            depth[nodes[i].left as usize] = depth[i] + 1;
            depth[nodes[i].right as usize] = depth[i] + 1;
        }
    }
    Ok((nodes, depth.into_iter().max().unwrap_or(0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(f: &str) -> String {
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/xgboost")
            .join(f);
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    /// Rows and XGBoost's own predictions, as the fixture script wrote
    /// them: feature values and scores as f32 bit patterns (hex), NaN for
    /// missing.
    fn cases(f: &str) -> Vec<([f32; N_FEATURES], f32, f32)> {
        let v: Value = serde_json::from_str(&fixture(f)).unwrap();
        let names: Vec<&str> = v["feature_names"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_str().unwrap())
            .collect();
        let bits =
            |s: &Value| f32::from_bits(u32::from_str_radix(s.as_str().unwrap(), 16).unwrap());
        v["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let mut x = [f32::NAN; N_FEATURES];
                for (k, val) in r["x"].as_array().unwrap().iter().enumerate() {
                    x[features::index(names[k]).unwrap()] = bits(val);
                }
                (x, bits(&r["margin"]), bits(&r["score"]))
            })
            .collect()
    }

    #[test]
    fn scores_equal_xgboost_in_f32() {
        for (model, rows) in [
            ("binary_logistic.json", "binary_logistic.rows.json"),
            ("squarederror.json", "squarederror.rows.json"),
        ] {
            let m = Model::from_json(&fixture(model), model).unwrap();
            assert!(
                m.trees() >= 100 && m.max_depth >= 6,
                "{model}: {} trees",
                m.trees()
            );
            let cases = cases(rows);
            assert!(cases.len() >= 200);
            let missing = cases
                .iter()
                .filter(|c| c.0.iter().any(|v| v.is_nan()))
                .count();
            assert!(missing > 0, "rows with missing values");
            for (i, (x, margin, score)) in cases.iter().enumerate() {
                assert_eq!(
                    m.margin(x).to_bits(),
                    margin.to_bits(),
                    "{model} row {i} margin"
                );
                assert_eq!(
                    m.score(x).to_bits(),
                    score.to_bits(),
                    "{model} row {i} score"
                );
            }
        }
    }

    /// A two-leaf model on `feature` (split at 0.5), as 3.x writes one.
    fn small(feature: &str) -> String {
        format!(
            r#"{{"learner":{{"attributes":{{}},"feature_names":["{feature}"],"feature_types":["float"],
            "gradient_booster":{{"model":{{"gbtree_model_param":{{"num_parallel_tree":"1","num_trees":"1"}},
            "tree_info":[0],"trees":[{{"base_weights":[0.1,-0.2,0.3],"categories":[],"default_left":[1,0,0],
            "id":0,"left_children":[1,-1,-1],"right_children":[2,-1,-1],"split_conditions":[0.5,-0.2,0.3],
            "split_indices":[0,0,0],"split_type":[0,0,0],"tree_param":{{"num_nodes":"3"}}}}]}},"name":"gbtree"}},
            "learner_model_param":{{"base_score":"[5E-1]","num_class":"0","num_feature":"1","num_target":"1"}},
            "objective":{{"name":"binary:logistic"}}}},"version":[3,2,0]}}"#
        )
    }

    #[test]
    fn splits_missing_values_and_both_base_score_forms() {
        let m = Model::from_json(&small("up_down_ratio"), "m.json").unwrap();
        let at = |v: f32| {
            let mut x = [0.0; N_FEATURES];
            x[features::index("up_down_ratio").unwrap()] = v;
            m.margin(&x)
        };
        assert_eq!(at(0.49), -0.2);
        assert_eq!(at(0.5), 0.3, "on the threshold goes right");
        assert_eq!(at(f32::NAN), -0.2, "missing goes the default way");
        // 1.7 and 2.x write the base score without brackets; same model.
        let old = small("up_down_ratio")
            .replace("\"[5E-1]\"", "\"5E-1\"")
            .replace("[3,2,0]", "[1,7,6]");
        let m2 = Model::from_json(&old, "m.json").unwrap();
        assert_eq!((m2.base_score, m2.base_margin), (0.5, 0.0));
        // The fixture's bracketed 0.3 is a probability: its margin is the logit.
        let f = Model::from_json(&fixture("binary_logistic.json"), "f").unwrap();
        assert_eq!(f.base_score, 0.3);
        assert_eq!(f.base_margin, -(1.0f32 / 0.3 - 1.0).ln());
        // reg:logistic scores as binary:logistic does.
        let rl = small("up_down_ratio").replace("binary:logistic", "reg:logistic");
        let rl = Model::from_json(&rl, "m.json").unwrap();
        let x = [0.7; N_FEATURES];
        assert_eq!(rl.score(&x), m.score(&x));
        let mut c = [0.0; N_FEATURES];
        m.contributions(&x, &mut c);
        assert_eq!(c[features::index("up_down_ratio").unwrap()], 0.3 - 0.1);
    }

    #[test]
    fn refused_models_say_why() {
        let base = small("up_down_ratio");
        let refused = |text: String, why: &str| {
            let e = Model::from_json(&text, "m.json").unwrap_err();
            assert!(e.contains(why), "{e}");
        };
        refused(base.replace("\"gbtree\"}", "\"dart\"}"), "dart");
        // A model of another feature schema; ours loads.
        let schema = |s: &str| {
            base.replace(
                "\"attributes\":{}",
                &format!("\"attributes\":{{\"tollgate_feature_schema\":\"{s}\"}}"),
            )
        };
        refused(schema("0"), "trained on feature schema 0");
        assert!(Model::from_json(&schema(crate::flow::features::FEATURE_SCHEMA), "m").is_ok());
        refused(base.replace("\"gbtree\"}", "\"gblinear\"}"), "gblinear");
        refused(
            base.replace("binary:logistic", "multi:softprob"),
            "multiclass",
        );
        refused(
            base.replace("\"num_class\":\"0\"", "\"num_class\":\"3\""),
            "multiclass",
        );
        refused(
            base.replace("\"num_target\":\"1\"", "\"num_target\":\"2\""),
            "multi-target",
        );
        refused(
            base.replace("\"split_type\":[0,0,0]", "\"split_type\":[1,0,0]"),
            "categorical",
        );
        refused(base.replace("[\"float\"]", "[\"c\"]"), "categorical");
        refused(
            base.replace("binary:logistic", "rank:pairwise"),
            "rank:pairwise",
        );
        refused(small("gpu_temperature"), "gpu_temperature");
        refused(base.replace("[3,2,0]", "[1,6,0]"), "1.7 to 3.x");
        refused(
            base.replace("\"[5E-1]\"", "\"[5E-1,2E-1]\""),
            "multi-output",
        );
        refused(
            base.replace("\"left_children\":[1,-1,-1]", "\"left_children\":[0,-1,-1]"),
            "out of order",
        );
        refused(
            base.replace("\"split_indices\":[0,0,0]", "\"split_indices\":[4,0,0]"),
            "beyond",
        );
        refused("not json".into(), "not an XGBoost JSON model");
        // Non-finite parameters would make every flow alert, or none.
        let reg = base.replace("binary:logistic", "reg:squarederror");
        for bad in ["NaN", "1e999", "-inf", "[NaN]"] {
            let b = format!("\"{bad}\"");
            refused(base.replace("\"[5E-1]\"", &b), "base_score");
            refused(reg.replace("\"[5E-1]\"", &b), "base_score");
        }
        refused(reg.replace("\"[5E-1]\"", "\"1e300\""), "range of an f32");
        refused(
            base.replace("[0.5,-0.2,0.3]", "[0.5,-0.2,1e300]"),
            "range of an f32",
        );
        refused(
            base.replace("\"feature_names\":[\"up_down_ratio\"],", ""),
            "no feature_names",
        );
    }
}
