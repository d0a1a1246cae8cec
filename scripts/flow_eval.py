"""Shared by train_flow_model.py and eval_flow_scores.py: joining feature
records to the generator's ground truth, and per-class figures by flow.

Records join their truth line on the 5-tuple and the flow's first packet
time (`flow_start` = `start`). A flow counts as flagged when any of its
records scores at or above the threshold; its score for ROC AUC is its
records' highest.
"""
import json

import numpy as np
import pandas as pd


def load(features, truth):
    """Returns (records DataFrame of features, labels, flow numbers,
    the records' own score fields, records without a truth line)."""
    lines = [json.loads(line) for line in open(truth)]
    key = lambda r, start: (r["src_ip"], r["src_port"], r["dest_ip"], r["dest_port"],
                            r["proto"], r[start])
    by_key = {key(t, "start"): t for t in lines}
    rows, labels, flows, extra = [], [], [], []
    missing = 0
    for line in open(features):
        r = json.loads(line)
        t = by_key.get(key(r, "flow_start"))
        if t is None:
            # An ICMP error of a UDP probe is a flow of its own to Tollgate
            # and counted in its probe's line by the generator.
            missing += 1
            continue
        rows.append(r["features"])
        labels.append(t["label"])
        flows.append(t["flow"])
        extra.append({"score": r.get("score"), "anomaly": r.get("anomaly"),
                      "trigger": r.get("trigger")})
    X = pd.DataFrame(rows).astype(float)
    return X, np.array(labels), np.array(flows), pd.DataFrame(extra), missing


def auc(pos, neg):
    """ROC AUC of scores `pos` against `neg` (ties count half)."""
    pos, neg = np.asarray(pos, float), np.asarray(neg, float)
    if len(pos) == 0 or len(neg) == 0:
        return None
    ranks = pd.Series(np.concatenate([pos, neg])).rank(method="average").to_numpy()
    return float((ranks[:len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def by_flow(labels, flows, scores):
    df = pd.DataFrame({"label": labels, "flow": flows, "score": scores})
    return df.groupby("flow").agg(label=("label", "first"), score=("score", "max"))


def per_class(labels, flows, scores, threshold):
    """Per class: flows, caught, recall, precision against the benign
    flows flagged, and ROC AUC against the benign flows; benign: FPR."""
    f = by_flow(labels, flows, scores)
    f["flagged"] = f["score"] >= threshold
    benign = f[f["label"] == "benign"]
    fp = int(benign["flagged"].sum())
    out = {"benign": {"flows": int(len(benign)), "false_positives": fp,
                      "fpr": round(fp / len(benign), 4) if len(benign) else None}}
    for label, g in f[f["label"] != "benign"].groupby("label"):
        tp = int(g["flagged"].sum())
        a = auc(g["score"], benign["score"])
        out[label] = {"flows": int(len(g)), "caught": tp, "recall": round(tp / len(g), 4),
                      "precision_vs_benign": round(tp / (tp + fp), 4) if tp + fp else None,
                      "roc_auc": round(a, 4) if a is not None else None}
    return out


def best_single_feature(X, labels, flows, fpr=0.01):
    """Per class, how far one threshold on one feature gets: the feature
    and direction that catch most of the class's flows while flagging at
    most `fpr` of the benign ones, by each flow's last record."""
    last = pd.DataFrame(X).assign(label=labels, flow=flows).groupby("flow").last()
    benign = last[last["label"] == "benign"]
    out = {}
    for label, g in last[last["label"] != "benign"].groupby("label"):
        best = {"feature": None, "recall": 0.0}
        for col in X.columns:
            p, n = g[col].fillna(-1).to_numpy(), benign[col].fillna(-1).to_numpy()
            for sign, way in ((1, ">="), (-1, "<=")):
                ns = np.sort(sign * n)[::-1]
                k = int(np.floor(fpr * len(ns)))
                t = np.nextafter(ns[k], np.inf) if k < len(ns) else -np.inf
                r = float((sign * p >= t).mean())
                if r > best["recall"]:
                    best = {"feature": col, "rule": f"{way} {sign * t:.6g}", "recall": round(r, 4)}
        out[label] = best
    return out
