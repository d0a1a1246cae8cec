#!/usr/bin/env python3
"""Builds the XGBoost fixtures in tests/fixtures/xgboost/ with the real
package, once: two models trained on synthetic flow features named after
Tollgate's (`tollgate features --names`), and for each, rows with XGBoost's
own margins and scores as f32 bit patterns. The Rust tests check that
Tollgate's evaluator gives the very same bits.

    python3 -m venv /tmp/xgb && /tmp/xgb/bin/pip install xgboost-cpu numpy
    /tmp/xgb/bin/python scripts/make_xgb_fixture.py [path/to/tollgate]

Rows include missing values (NaN) and values placed exactly on split
thresholds taken from the trained trees.
"""
import json
import os
import subprocess
import sys

import numpy as np
import xgboost as xgb

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "xgboost")


def feature_names(binary):
    out = subprocess.run([binary, "features", "--names"], check=True,
                         capture_output=True, text=True).stdout
    return out.split()


def synthetic(rng, n, names):
    """Loosely flow-shaped values: counts, sizes, times, ratios, codes."""
    k = len(names)
    x = np.empty((n, k), dtype=np.float32)
    for j, name in enumerate(names):
        if name.startswith(("pkts", "tcp_")):
            x[:, j] = rng.poisson(20, n)
        elif name.startswith("bytes"):
            x[:, j] = np.round(rng.lognormal(9, 2, n))
        elif name.startswith("payload"):
            x[:, j] = np.round(rng.uniform(0, 1460, n))
        elif name.startswith(("iat", "duration")):
            x[:, j] = rng.exponential(0.5, n)
        elif name.startswith("entropy"):
            x[:, j] = rng.uniform(0, 8, n)
        elif name.startswith("hits"):
            x[:, j] = rng.poisson(0.2, n)
        elif name == "dst_port_class":
            x[:, j] = rng.integers(0, 5, n)
        elif name == "dst_port":
            x[:, j] = rng.choice([80, 443, 8080, 8443, 22, 5432, 51000], n)
        elif name in ("proto", "app_proto", "vlan_tagged"):
            x[:, j] = rng.integers(0, 3, n)
        else:
            x[:, j] = rng.lognormal(0, 1, n)
    # Missing values: a tenth of all cells.
    x[rng.random(x.shape) < 0.1] = np.nan
    return x


def label(x, names):
    i = {n: j for j, n in enumerate(names)}
    up = np.nan_to_num(x[:, i["up_down_ratio"]], nan=1.0)
    ent = np.nan_to_num(x[:, i["entropy_toserver"]], nan=4.0)
    hits = np.nan_to_num(x[:, i["hits_credential"]]) + np.nan_to_num(x[:, i["hits_injection"]])
    z = 0.8 * np.log1p(up) + 0.6 * (ent - 4) + 1.5 * hits - 1.0
    return z


def thresholds(model_json):
    """(feature index, threshold) of every split in the model."""
    out = []
    for t in model_json["learner"]["gradient_booster"]["model"]["trees"]:
        for l, f, c in zip(t["left_children"], t["split_indices"], t["split_conditions"]):
            if l != -1:
                out.append((f, np.float32(c)))
    return out


def rows(booster, x):
    d = xgb.DMatrix(x, missing=np.nan, feature_names=booster.feature_names)
    margin = booster.predict(d, output_margin=True).astype(np.float32)
    score = booster.predict(d).astype(np.float32)
    hexs = lambda a: [format(int(v), "08x") for v in a.view(np.uint32)]
    return [{"x": hexs(r), "margin": format(int(m.view(np.uint32)), "08x"),
             "score": format(int(s.view(np.uint32)), "08x")}
            for r, m, s in zip(x, margin, score)]


def build(name, names, params, rounds, target, seed):
    rng = np.random.default_rng(seed)
    x = synthetic(rng, 6000, names)
    z = label(x, names)
    y = (z + rng.normal(0, 0.5, len(z)) > 0).astype(np.float32) if target == "binary" else z
    d = xgb.DMatrix(x, label=y, missing=np.nan, feature_names=names)
    booster = xgb.train(params, d, rounds)
    path = os.path.join(OUT, name + ".json")
    booster.save_model(path)
    model = json.load(open(path))
    # Test rows: fresh ones, then ones with a value exactly on a split.
    test = synthetic(rng, 200, names)
    on = synthetic(rng, 200, names)
    splits = thresholds(model)
    for r in range(len(on)):
        for _ in range(3):
            f, c = splits[rng.integers(len(splits))]
            on[r, f] = c
    data = {"feature_names": names, "xgboost": xgb.__version__,
            "rows": rows(booster, np.vstack([test, on]))}
    with open(os.path.join(OUT, name + ".rows.json"), "w") as f:
        json.dump(data, f, separators=(",", ":"))
    print(name, booster.num_boosted_rounds(), "trees", os.path.getsize(path), "bytes")


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "target", "release", "tollgate")
    names = feature_names(binary)
    os.makedirs(OUT, exist_ok=True)
    build("binary_logistic", names,
          {"objective": "binary:logistic", "max_depth": 7, "eta": 0.1,
           "base_score": 0.3, "seed": 1, "nthread": 1}, 120, "binary", 7)
    build("squarederror", names,
          {"objective": "reg:squarederror", "max_depth": 6, "eta": 0.1,
           "base_score": 1.5, "seed": 1, "nthread": 1}, 100, "reg", 11)


if __name__ == "__main__":
    main()
