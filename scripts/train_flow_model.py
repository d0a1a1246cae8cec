#!/usr/bin/env python3
"""Trains a flow model (XGBoost, binary: attack against benign) from
Tollgate's feature records and the generator's ground truth, and writes
the model Tollgate's `--model` loads plus a report.

    python3 -m venv /tmp/fm && /tmp/fm/bin/pip install xgboost-cpu pandas
    tollgate gen --seed 11 --flows 3000 --attacks all --out train.pcap
    tollgate replay train.pcap --features-out train.jsonl --feature-packets 8
    /tmp/fm/bin/python scripts/train_flow_model.py --features train.jsonl \\
        --truth train.pcap.truth.jsonl --out model.json --report report.json \\
        [--test-features test.jsonl --test-truth test.pcap.truth.jsonl]

Records join their truth line on the 5-tuple and the flow's first packet
time (`flow_start` = `start`). Every record of a flow is a training row
(early, periodic and end records alike: the scorer sees all of them). The
model is written with `Booster.save_model`, with attributes Tollgate checks
at load: `tollgate_feature_schema` (the feature list's version) and
`tollgate_command` (how it was made). The threshold is chosen for at most
--target-fpr of benign flows flagged on the training data's out-of-fold
scores; per-class recall, precision and FPR are reported on the test files
(another seed and mix) when given, by flow: a flow counts as flagged when
any of its records scores at or above the threshold.
"""
import argparse
import json
import sys

import numpy as np
import pandas as pd
import xgboost as xgb

# Must equal FEATURE_SCHEMA in dataplane/flow/features.rs.
FEATURE_SCHEMA = "1"


def load(features, truth):
    recs = [json.loads(line) for line in open(features)]
    lines = [json.loads(line) for line in open(truth)]
    key = lambda r, start: (r["src_ip"], r["src_port"], r["dest_ip"], r["dest_port"],
                            r["proto"], r[start])
    by_key = {key(t, "start"): t for t in lines}
    rows, labels, flows = [], [], []
    missing = 0
    for r in recs:
        t = by_key.get(key(r, "flow_start"))
        if t is None:
            # An ICMP error of a UDP probe is a flow of its own to Tollgate
            # and counted in its probe's line by the generator.
            missing += 1
            continue
        rows.append(r["features"])
        labels.append(t["label"])
        flows.append(t["flow"])
    X = pd.DataFrame(rows).astype(float)
    return X, np.array(labels), np.array(flows), missing


def per_class(labels, flows, scores, threshold):
    """Per flow: flagged when any of its records scores at or above."""
    df = pd.DataFrame({"label": labels, "flow": flows, "score": scores})
    f = df.groupby("flow").agg(label=("label", "first"), score=("score", "max"))
    f["flagged"] = f["score"] >= threshold
    benign = f[f["label"] == "benign"]
    fpr = float(benign["flagged"].mean()) if len(benign) else None
    out = {"benign": {"flows": int(len(benign)), "false_positives": int(benign["flagged"].sum()),
                      "fpr": round(fpr, 4) if fpr is not None else None}}
    for label, g in f[f["label"] != "benign"].groupby("label"):
        tp = int(g["flagged"].sum())
        fp = int(benign["flagged"].sum())
        out[label] = {"flows": int(len(g)), "caught": tp, "recall": round(tp / len(g), 4),
                      "precision_vs_benign": round(tp / (tp + fp), 4) if tp + fp else None}
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--features", required=True)
    ap.add_argument("--truth", required=True)
    ap.add_argument("--test-features")
    ap.add_argument("--test-truth")
    ap.add_argument("--out", required=True)
    ap.add_argument("--report")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--target-fpr", type=float, default=0.01)
    ap.add_argument("--trees", type=int, default=200)
    ap.add_argument("--depth", type=int, default=6)
    args = ap.parse_args()

    X, labels, flows, missing = load(args.features, args.truth)
    y = (labels != "benign").astype(int)
    params = {"objective": "binary:logistic", "max_depth": args.depth, "eta": 0.1,
              "subsample": 0.9, "colsample_bytree": 0.9, "seed": args.seed,
              "nthread": 1, "eval_metric": "logloss"}
    # Out-of-fold scores by flow (a flow's records stay in one fold).
    folds = flows % 5
    oof = np.zeros(len(y))
    for k in range(5):
        tr, va = folds != k, folds == k
        b = xgb.train(params, xgb.DMatrix(X[tr], label=y[tr]), args.trees)
        oof[va] = b.predict(xgb.DMatrix(X[va]))
    f = pd.DataFrame({"flow": flows, "y": y, "score": oof}).groupby("flow").max()
    neg = np.sort(f[f["y"] == 0]["score"].to_numpy())[::-1]
    allowed = int(np.floor(args.target_fpr * len(neg)))
    threshold = float(np.nextafter(np.float32(neg[allowed]), np.float32(1))) if allowed < len(neg) else 0.5

    booster = xgb.train(params, xgb.DMatrix(X, label=y), args.trees)
    booster.set_attr(tollgate_feature_schema=FEATURE_SCHEMA,
                     tollgate_command="python3 scripts/train_flow_model.py " + " ".join(sys.argv[1:]),
                     tollgate_threshold=repr(threshold))
    booster.save_model(args.out)

    gain = booster.get_score(importance_type="gain")
    report = {
        "threshold": threshold,
        "train": {"records": int(len(y)), "flows": int(f.shape[0]),
                  "records_without_truth": missing,
                  "out_of_fold": per_class(labels, flows, oof, threshold)},
        "feature_importance_gain": dict(sorted(gain.items(), key=lambda kv: -kv[1])[:15]),
    }
    if args.test_features and args.test_truth:
        Xt, lt, ft, mt = load(args.test_features, args.test_truth)
        st = booster.predict(xgb.DMatrix(Xt[X.columns]))
        report["test"] = {"records": int(len(lt)), "records_without_truth": mt,
                          "by_class": per_class(lt, ft, st, threshold)}
    text = json.dumps(report, indent=1)
    if args.report:
        with open(args.report, "w") as fh:
            fh.write(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
