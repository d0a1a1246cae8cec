#!/usr/bin/env bash
# DPDK forwarding benchmark: `tollgate run --inspect off`, `tollgate run`
# (full inspection) and `dpdk-testpmd --forward-mode=io`, each on the same
# net_pcap vdev replaying the same capture from memory (infinite_rx=1, no
# tx_pcap, so the PMD is not the bottleneck), each for a fixed time on the
# same lcores. Prints JSON and a Markdown table; ratios are against testpmd
# from the same run of this script.
#   benches/dpdk_forwarding.sh [CAPTURE] [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
cap="${1:-pcaps/sample.pcap}"
secs="${2:-10}"
scripts/setup.sh
command -v dpdk-testpmd >/dev/null || {
    echo "bench: installing dpdk-dev for dpdk-testpmd" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends dpdk-dev >/dev/null
}
cargo build --release --quiet
out=$(mktemp -d)
trap 'rm -rf "$out"; rm -rf /var/run/dpdk/tgbench-*' EXIT
packets=$(capinfos -c -M "$cap" | awk -F: '/Number of packets/ {gsub(/ /,"",$2); print $2}')
mbufs=$(( (packets + 8192) | 1023 ))
eal=(--no-huge -m 2048 --no-pci -l 0-1 --log-level '*:warning')
vdev="net_pcap0,rx_pcap=$cap,infinite_rx=1"

# testpmd: the median of its per-second Rx-pps samples after the first. Its
# start (zeroing memory without hugepages, loading the capture) takes a few
# seconds here, so it gets that much longer to forward for `secs`.
timeout -s INT "$((secs + 8))" stdbuf -oL dpdk-testpmd "${eal[@]}" --file-prefix tgbench-testpmd --vdev "$vdev" -- \
    --forward-mode=io --auto-start --stats-period 1 --total-num-mbufs "$mbufs" >"$out/testpmd.txt" 2>&1 || true
testpmd_pps=$(awk '/Rx-pps:/ {print $2}' "$out/testpmd.txt" | awk 'NR > 1 && $1 > 0' | sort -n |
    awk '{a[NR] = $1} END {if (NR) print a[int((NR + 1) / 2)]; else print 0}')

tollgate_pps() {
    target/release/tollgate run --inspect "$1" --duration "${secs}s" --stats-interval 0 \
        --mbufs "$mbufs" --stats-json "$out/$1.json" -- "${eal[@]}" --file-prefix "tgbench-$1" \
        --vdev "$vdev" >"$out/$1.txt" 2>&1
    python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['throughput']['pps'])" "$out/$1.json"
}
off_pps=$(tollgate_pps off)
on_pps=$(tollgate_pps on)

python3 - "$cap" "$packets" "$secs" "$testpmd_pps" "$off_pps" "$on_pps" <<'PY'
import json, os, sys
cap, packets, secs, testpmd, off, on = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), *map(float, sys.argv[4:])
rows = [("dpdk-testpmd --forward-mode=io", testpmd), ("tollgate run --inspect off", off), ("tollgate run (inspection on)", on)]
print(json.dumps({"capture": cap, "packets_in_capture": packets, "seconds": secs,
                  "cores": os.cpu_count(), "lcores": "0-1 (main + 1 worker)",
                  "pps": {name: pps for name, pps in rows},
                  "ratio_to_testpmd": {name: (pps / testpmd if testpmd else None) for name, pps in rows},
                  "inspection_cost_ratio": on / off if off else None}, indent=2))
print()
print(f"{cap}: {packets} packets replayed from memory for {secs} s per run, {os.cpu_count()} cores, lcores 0-1")
print()
print("| run | Mpps | vs testpmd io |")
print("|---|---:|---:|")
for name, pps in rows:
    print(f"| {name} | {pps / 1e6:.2f} | {pps / testpmd if testpmd else float('nan'):.2f} |")
PY
