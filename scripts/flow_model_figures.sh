#!/usr/bin/env bash
# The flow models' figures, from nothing: generates the training, test and
# quiet-baseline captures, trains an XGBoost model (as the shipped
# signatures/flow-model.json was made), lets the anomaly detector learn the
# baseline, and prints per-class precision, recall, FPR and ROC AUC on the
# test capture (another seed and attack mix than training) for both.
#
#     scripts/flow_model_figures.sh [OUTDIR]     (default /tmp/tollgate-flow)
#
# Needs xgboost-cpu and pandas (pip install xgboost-cpu pandas) and about
# 3 GB of disk in OUTDIR; a few minutes on two cores. The model it trains
# goes to OUTDIR/model.json; compare it with the shipped one to see that
# training is deterministic.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:-/tmp/tollgate-flow}"
mkdir -p "$out"
cd "$out"
cargo build --release --quiet --manifest-path "$root/Cargo.toml"
T="$root/target/release/tollgate"
train_mix=all
test_mix=exfiltration=0.006,beaconing=0.003,scan=0.003,credential_stuffing=0.002,model_theft=0.006,data_poisoning=0.004

# Supervised: train on one seed and mix, test on another.
"$T" gen --seed 11 --flows 6000 --attacks "$train_mix" --out train.pcap >/dev/null
"$T" gen --seed 12 --flows 3000 --attacks "$test_mix" --out test.pcap >/dev/null
for s in train test; do
    "$T" replay $s.pcap --features-out $s.jsonl --feature-packets 8 --stats-interval 0 >/dev/null
done
data="tollgate gen --seed 11 --flows 6000 --attacks $train_mix --out train.pcap; tollgate replay train.pcap --features-out train.jsonl --feature-packets 8; tollgate gen --seed 12 --flows 3000 --attacks $test_mix --out test.pcap; tollgate replay test.pcap --features-out test.jsonl --feature-packets 8"
python3 "$root/scripts/train_flow_model.py" --features train.jsonl --truth train.pcap.truth.jsonl \
    --test-features test.jsonl --test-truth test.pcap.truth.jsonl \
    --out model.json --report report.json --data "$data" >/dev/null
echo "== XGBoost flow model: test capture (seed 12), threshold $(python3 -c "import json; print(json.load(open('report.json'))['threshold'])")"
python3 -c "
import json
r = json.load(open('report.json'))['test']
for k, v in r['by_class'].items(): print(k, v)
print('one feature, one threshold, at <= 1 % FPR:')
for k, v in r['best_single_feature'].items(): print(' ', k, v)"

# Anomaly detector: learn a quiet period (benign traffic and its
# look-alikes, no attacks), then score the test capture with that state.
# Short flow timeouts, so that flows end (and send their last record)
# through the run rather than all at its end.
timeouts=(--established-timeout 5s --new-timeout 5s)
"$T" gen --seed 13 --flows 6000 --attacks scan=0 --out quiet.pcap >/dev/null
rm -f hst.json
"$T" replay quiet.pcap --anomaly-state hst.json --learn-window 6000 --feature-packets 8 \
    "${timeouts[@]}" --stats-interval 0 >/dev/null
"$T" replay test.pcap --anomaly-state hst.json --features-out test-anomaly.jsonl \
    --feature-packets 8 "${timeouts[@]}" --stats-json test-anomaly.stats.json --stats-interval 0 >/dev/null
threshold=$(python3 -c "import json; print(json.load(open('test-anomaly.stats.json'))['scoring']['anomaly']['threshold'])")
echo "== anomaly detector: test capture (seed 12), learnt threshold $threshold"
python3 "$root/scripts/eval_flow_scores.py" --features test-anomaly.jsonl \
    --truth test.pcap.truth.jsonl --field anomaly --threshold "$threshold" |
    python3 -c "import json, sys; [print(k, v) for k, v in json.load(sys.stdin)['by_class'].items()]"
