#!/usr/bin/env python3
"""Per-class figures for the scores Tollgate wrote into --features-out
records: `score` (the XGBoost flow model) or `anomaly` (the anomaly
detector), joined to the generator's ground truth by flow.

    tollgate replay test.pcap --anomaly-state hst.json \\
        --features-out test.jsonl --feature-packets 8
    python3 scripts/eval_flow_scores.py --features test.jsonl \\
        --truth test.pcap.truth.jsonl --field anomaly --threshold 0.62

Prints, per attack class, flows, caught, recall, precision against the
benign flows flagged and ROC AUC against the benign flows, and the benign
FPR, at the threshold given (the stats JSON's scoring.anomaly.threshold
or the model's). Records scored before the detector was live carry no
`anomaly` and are left out, as are flows with none left.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from flow_eval import load, per_class  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--features", required=True)
    ap.add_argument("--truth", required=True)
    ap.add_argument("--field", choices=["score", "anomaly"], required=True)
    ap.add_argument("--threshold", type=float, required=True)
    args = ap.parse_args()
    _, labels, flows, extra, missing = load(args.features, args.truth)
    keep = extra[args.field].notna().to_numpy()
    if not keep.any():
        sys.exit(f"no record carries `{args.field}`: was the model loaded (and the detector live)?")
    out = {"records": int(keep.sum()), "records_without_score": int((~keep).sum()),
           "records_without_truth": missing, "threshold": args.threshold,
           "by_class": per_class(labels[keep], flows[keep],
                                 extra[args.field][keep].astype(float).to_numpy(), args.threshold)}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
