#!/usr/bin/env python3
"""Trains a flow model (XGBoost, binary: attack against benign) from
Tollgate's feature records and the generator's ground truth, and writes
the model Tollgate's `--model` loads plus a report.

    pip install xgboost-cpu pandas
    tollgate gen --seed 11 --flows 3000 --attacks all --out train.pcap
    tollgate replay train.pcap --features-out train.jsonl --feature-packets 8
    python3 scripts/train_flow_model.py --features train.jsonl \\
        --truth train.pcap.truth.jsonl --out model.json --report report.json \\
        [--test-features test.jsonl --test-truth test.pcap.truth.jsonl]

Every record of a flow is a training row (early, periodic and end records
alike: the scorer sees all of them). The model is written with
`Booster.save_model`, with attributes Tollgate checks or uses at load:
`tollgate_feature_schema` (the feature list's version), `tollgate_threshold`
(the alert threshold) and `tollgate_command` (how it was made).

The threshold comes from the training data's out-of-fold scores (a flow's
records stay in one fold), by flow: first the lowest threshold that flags
at most --target-fpr of benign flows; then, as high as it can go while
losing at most half a percent of any class's recall there, so that a model
that separates cleanly does not flag the 1 % it was allowed to. Per-class
recall, precision, FPR and ROC AUC are reported on the test files (another
seed and mix) when given, and for each class the one feature that alone
separates it best, to show how far a single threshold gets.
"""
import argparse
import json
import os
import shlex
import sys

import numpy as np
import pandas as pd
import xgboost as xgb

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from flow_eval import best_single_feature, by_flow, load, per_class  # noqa: E402

# Must equal FEATURE_SCHEMA in dataplane/flow/features.rs.
FEATURE_SCHEMA = "2"


def pick_threshold(labels, flows, scores, target_fpr):
    f = by_flow(labels, flows, scores)
    neg = np.sort(f[f["label"] == "benign"]["score"].to_numpy())[::-1]
    allowed = int(np.floor(target_fpr * len(neg)))
    low = float(np.nextafter(np.float32(neg[allowed]), np.float32(1))) if allowed < len(neg) else 0.5
    classes = {c: g["score"].to_numpy() for c, g in f[f["label"] != "benign"].groupby("label")}
    recall = lambda s, t: float((s >= t).mean())
    want = {c: recall(s, low) - 0.005 for c, s in classes.items()}
    best = low
    for t in np.sort(np.concatenate(list(classes.values()) or [np.zeros(0)])):
        t = float(np.float32(t))
        if t <= low:
            continue
        if any(recall(s, t) < want[c] for c, s in classes.items()):
            break
        best = t
    return best


def write_fixture(booster, columns, features, fixture, model_name, threshold):
    """Scores the records in `features` with `booster` into `fixture`."""
    recs = [json.loads(line) for line in open(features)]
    Xf = pd.DataFrame([r["features"] for r in recs]).astype(float)[columns]
    scores = booster.predict(xgb.DMatrix(Xf))
    keep = ("flow_start", "src_ip", "src_port", "dest_ip", "dest_port", "proto", "trigger")
    out = [{**{k: r[k] for k in keep}, "score": float(s)} for r, s in zip(recs, scores)]
    with open(fixture, "w") as fh:
        json.dump({"model": model_name, "threshold": threshold, "records": out}, fh,
                  separators=(",", ":"))
        fh.write("\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--features")
    ap.add_argument("--truth")
    ap.add_argument("--test-features")
    ap.add_argument("--test-truth")
    ap.add_argument("--out")
    ap.add_argument("--model-in",
                    help="score --fixture-features into --fixture with this model (a shipped "
                         "one) instead of training: when the records change and the model "
                         "does not")
    ap.add_argument("--report")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--target-fpr", type=float, default=0.01)
    ap.add_argument("--trees", type=int, default=200)
    ap.add_argument("--depth", type=int, default=6)
    ap.add_argument("--data", default="",
                    help="how the training and test records were made (the gen and replay "
                         "commands), recorded in the model as tollgate_data")
    ap.add_argument("--fixture-features",
                    help="records (--features-out JSONL) to score with the trained model into "
                         "--fixture, for Tollgate's test that its scores equal XGBoost's")
    ap.add_argument("--fixture")
    args = ap.parse_args()
    if args.model_in:
        if not (args.fixture_features and args.fixture):
            ap.error("--model-in needs --fixture-features and --fixture")
        booster = xgb.Booster(model_file=args.model_in)
        threshold = float(booster.attr("tollgate_threshold"))
        write_fixture(booster, booster.feature_names, args.fixture_features, args.fixture,
                      os.path.basename(args.model_in), threshold)
        return
    if not (args.features and args.truth and args.out):
        ap.error("training needs --features, --truth and --out")

    X, labels, flows, _, missing = load(args.features, args.truth)
    y = (labels != "benign").astype(int)
    params = {"objective": "binary:logistic", "max_depth": args.depth, "eta": 0.1,
              "subsample": 0.9, "colsample_bytree": 0.9, "seed": args.seed,
              "nthread": 1, "eval_metric": "logloss"}
    folds = flows % 5
    oof = np.zeros(len(y))
    for k in range(5):
        tr, va = folds != k, folds == k
        b = xgb.train(params, xgb.DMatrix(X[tr], label=y[tr]), args.trees)
        oof[va] = b.predict(xgb.DMatrix(X[va]))
    threshold = pick_threshold(labels, flows, oof, args.target_fpr)

    booster = xgb.train(params, xgb.DMatrix(X, label=y), args.trees)
    booster.set_attr(tollgate_feature_schema=FEATURE_SCHEMA,
                     tollgate_command="python3 scripts/train_flow_model.py " + shlex.join(sys.argv[1:]),
                     tollgate_data=args.data,
                     tollgate_threshold=repr(threshold))
    booster.save_model(args.out)

    if args.fixture_features and args.fixture:
        write_fixture(booster, list(X.columns), args.fixture_features, args.fixture,
                      os.path.basename(args.out), threshold)

    gain = booster.get_score(importance_type="gain")
    report = {
        "threshold": threshold,
        "train": {"records": int(len(y)), "flows": int(len(set(flows))),
                  "records_without_truth": missing,
                  "out_of_fold": per_class(labels, flows, oof, threshold),
                  "best_single_feature": best_single_feature(X, labels, flows)},
        "feature_importance_gain": {k: round(v, 2) for k, v in
                                    sorted(gain.items(), key=lambda kv: -kv[1])[:15]},
    }
    if args.test_features and args.test_truth:
        Xt, lt, ft, _, mt = load(args.test_features, args.test_truth)
        st = booster.predict(xgb.DMatrix(Xt[X.columns]))
        report["test"] = {"records": int(len(lt)), "records_without_truth": mt,
                          "by_class": per_class(lt, ft, st, threshold),
                          "best_single_feature": best_single_feature(Xt, lt, ft)}
    text = json.dumps(report, indent=1)
    if args.report:
        with open(args.report, "w") as fh:
            fh.write(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
