#!/usr/bin/env bash
# What a rule reload costs, from one run: the generated AI-ingress capture
# replayed in real time (so packets arrive as on a wire, and a swap that
# held a worker shows as packets waiting) with ET Open's loadable rules;
# SIGUSR2 twice mid-run, then `tollgate reload` over the control socket.
# Prints the reloader's load time (off the workers), each worker's longest
# swap and the packets of the bursts that waited for it, the streams that
# restarted, and the accounting (rx = tx + dropped, every record read).
#
#   benches/reload.sh [CAPTURE] [RULES] [SECONDS]
#
# CAPTURE defaults to `tollgate gen --seed 5 --flows 3000` (made once under
# target/bench), RULES to ../shared/corpora/et-open, SECONDS (how long the
# paced replay lasts) to 30.
set -euo pipefail
cd "$(dirname "$0")/.."
cap="${1:-}"
rules="${2:-../shared/corpora/et-open}"
seconds="${3:-30}"
cargo build --release --quiet
tg=target/release/tollgate
mkdir -p target/bench
if [ -z "$cap" ]; then
    cap=target/bench/gen-seed5-3000.pcap
    [ -s "$cap" ] || "$tg" gen --seed 5 --flows 3000 --out "$cap" >/dev/null
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# The capture's own span, to pace the replay to SECONDS.
span=$(capinfos -Tm -u "$cap" | awk -F, 'NR==2 {print $NF}')
speed=$(python3 -c "print(max(0.001, float('$span') / $seconds))")
echo "capture: $cap ($(capinfos -Tm -c "$cap" | awk -F, 'NR==2 {print $NF}') packets, ${span}s), replayed at ${speed}x over ~${seconds}s; rules: $rules; $(nproc) cores"

"$tg" replay "$cap" --rules "$rules" --speed "$speed" --workers 1 \
    --stats-interval 0 --stats-json "$out/stats.json" --eve "$out/eve.json" \
    --control-socket "$out/ctl.sock" >/dev/null 2>"$out/stderr.txt" &
pid=$!
sleep "$(python3 -c "print($seconds * 0.25)")"
kill -USR2 "$pid"
sleep "$(python3 -c "print($seconds * 0.25)")"
kill -USR2 "$pid"
sleep "$(python3 -c "print($seconds * 0.25)")"
"$tg" reload --control-socket "$out/ctl.sock"
wait "$pid"
grep -E "rules reloaded|reload failed" "$out/stderr.txt" || true

python3 - "$out/stats.json" <<'EOF'
import json, sys
s = json.load(open(sys.argv[1]))
r, rules, p = s["reload"], s["rules"], s["packets"]
dropped = sum(p["dropped"].values())
pps = s["throughput"]["pps"]
print()
print("| reload, one worker, real-time replay | value |")
print("|---|---:|")
print(f"| reloads done / failed | {r['reloads']} / {r['failures']} |")
print(f"| rules in the last generation | {r['rules']} |")
print(f"| load + compile, off the workers (last) | {r['load_ms']:.0f} ms |")
print(f"| longest swap on the worker | {rules['swap_ns_max'] / 1e3:.1f} µs |")
print(f"| last swap on the worker | {rules['swap_ns_last'] / 1e3:.1f} µs |")
print(f"| longest wait from hand-over to swap | {rules['swap_wait_ns_max'] / 1e3:.1f} µs |")
print(f"| packets in bursts that waited for a swap | {rules['swap_packets_delayed']} |")
print(f"| reassembled directions restarted | {rules['streams_restarted']} |")
print(f"| packets rx / tx / dropped | {p['rx']} / {p['tx']} / {dropped} |")
print(f"| records read | {s['capture']['records']} |")
print(f"| alerts | {rules['alerts']} |")
print(f"| mean packet rate | {pps:.0f} pps |")
ok = p["rx"] == p["tx"] + dropped and p["rx"] == s["capture"]["records"]
print()
print("accounting holds" if ok else "ACCOUNTING BROKEN")
sys.exit(0 if ok else 1)
EOF
