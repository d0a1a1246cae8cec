#!/usr/bin/env bash
# The main job on the committed sample: replays pcaps/sample.pcap through two
# workers with the shipped defaults, writes EVE JSON and the stats JSON under
# out/, and prints the summary. Extra arguments go to `tollgate replay`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release --quiet
mkdir -p out
exec target/release/tollgate replay pcaps/sample.pcap \
    --workers 2 --prompt-model signatures/prompt-model.json \
    --eve out/eve.json --stats-json out/stats.json "$@"
