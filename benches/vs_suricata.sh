#!/usr/bin/env bash
# Tollgate against Suricata, side by side on the same capture and rules.
#
#   benches/vs_suricata.sh [CAPTURE] [RULES] [RUNS]
#
# CAPTURE defaults to the realistic generated capture (`tollgate gen --seed
# 5 --flows 3000`, made once under target/bench), RULES to ET Open from
# ../shared/corpora/et-open. The rules both engines are given are those
# Tollgate loads (what it skips, the protocols it does not parse yet, is
# left out for both, so both inspect the same rules); Suricata's own load
# count is printed. Suricata 7.0.10 from Debian's bookworm-backports is
# installed when missing (benches only; the main job never needs it) and
# runs in its single runmode with Hyperscan and an alert-only EVE; Tollgate
# with one worker and alerts alone in its EVE too (`--eve-types alert`).
# RUNS interleaved runs of each (default 3), medians of:
# - wall time, and start-up measured on the capture's first ten packets;
# - processing time by each engine's own clock: Suricata's "time elapsed"
#   (engine started to flows flushed), Tollgate's `throughput.seconds`
#   (first read to the last worker's end). On a shared machine start-up
#   (10-20 s of rule compilation for Suricata) moves by more than the whole
#   processing time, so wall − start-up alone can say anything;
# - CPU seconds of the packet path: perf samples (cpu-clock, 999 Hz) of
#   every thread but the main one, which compiles the rules (Tollgate's
#   reader, worker and EVE writer; Suricata's W#01, FM#01, FR#01), and CPU
#   seconds − start-up as before;
# - resident memory.
# Per-sid alert counts are compared; every difference is listed.
set -euo pipefail
cd "$(dirname "$0")/.."
cap="${1:-}"
rules="${2:-../shared/corpora/et-open}"
runs="${3:-3}"

if ! command -v suricata >/dev/null; then
    echo "bench: installing Suricata from bookworm-backports" >&2
    src=/etc/apt/sources.list.d/bookworm-backports.sources
    if ! grep -rqs bookworm-backports /etc/apt/sources.list /etc/apt/sources.list.d/; then
        cat >"$src" <<'EOF'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -t bookworm-backports suricata >/dev/null
    # A package start would watch an interface; the bench runs its own.
    systemctl stop suricata 2>/dev/null || true
fi
if ! command -v perf >/dev/null; then
    echo "bench: installing linux-perf" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq linux-perf >/dev/null
fi
for t in editcap capinfos python3 perf; do
    command -v "$t" >/dev/null || { echo "bench: $t is needed (scripts/setup.sh installs it)" >&2; exit 1; }
done
cargo build --release --quiet
tg=target/release/tollgate
mkdir -p target/bench
if [ -z "$cap" ]; then
    cap=target/bench/gen-seed5-3000.pcap
    [ -s "$cap" ] || "$tg" gen --seed 5 --flows 3000 --out "$cap" >/dev/null
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# The rules Tollgate loads, as one file for both: it names each rule it
# does not load (file:line: sid N: why) when asked to refuse them.
editcap -r "$cap" "$out/tiny.pcap" 1-10 >/dev/null
set +e
"$tg" replay "$out/tiny.pcap" --rules "$rules" --rules-unsupported error --stats-interval 0 \
    >/dev/null 2>"$out/skipped.txt"
set -e
python3 - "$rules" "$out" <<'EOF'
import os, re, sys
rules, out = sys.argv[1], sys.argv[2]
files = [rules] if os.path.isfile(rules) else sorted(
    os.path.join(rules, f) for f in os.listdir(rules) if f.endswith(".rules"))
skipped = set()
for line in open(os.path.join(out, "skipped.txt")):
    m = re.search(r"not evaluated yet: (.*?):(\d+): sid", line)
    if m:
        skipped.add((os.path.realpath(m.group(1)), int(m.group(2))))
kept = 0
with open(os.path.join(out, "both.rules"), "w") as w:
    for f in files:
        real = os.path.realpath(f)
        for n, line in enumerate(open(f, encoding="utf-8", errors="replace"), 1):
            s = line.strip()
            if not s or s.startswith("#") or (real, n) in skipped:
                continue
            w.write(s + "\n")
            kept += 1
print(f"rules given to both: {kept} (Tollgate skips {len(skipped)})")
EOF
classification="$rules/classification.config"
[ -f "$classification" ] || classification=/etc/suricata/classification.config
# Suricata's own shipped configuration, with only what the bench needs on
# top (later keys win): its stream and detect settings are part of its
# semantics (chunk sizes, depth, the 15-alert packet queue). Without them
# Suricata falls back to built-in defaults that alert far less often on
# stream rules (29 alerts of one rule on one 1.8 MB upload, against 524
# with the shipped file).
cat >"$out/suricata.yaml" <<EOF
%YAML 1.1
---
include: /etc/suricata/suricata.yaml
vars:
  address-groups:
    HOME_NET: "[192.168.0.0/16,10.0.0.0/8,172.16.0.0/12]"
    EXTERNAL_NET: "!\$HOME_NET"
    HTTP_SERVERS: "\$HOME_NET"
    SMTP_SERVERS: "\$HOME_NET"
    SQL_SERVERS: "\$HOME_NET"
    DNS_SERVERS: "\$HOME_NET"
    TELNET_SERVERS: "\$HOME_NET"
    AIM_SERVERS: "\$EXTERNAL_NET"
    DC_SERVERS: "\$HOME_NET"
    DNP3_SERVER: "\$HOME_NET"
    DNP3_CLIENT: "\$HOME_NET"
    MODBUS_CLIENT: "\$HOME_NET"
    MODBUS_SERVER: "\$HOME_NET"
    ENIP_CLIENT: "\$HOME_NET"
    ENIP_SERVER: "\$HOME_NET"
  port-groups:
    HTTP_PORTS: "80"
    SHELLCODE_PORTS: "!80"
    ORACLE_PORTS: 1521
    SSH_PORTS: 22
    DNP3_PORTS: 20000
    MODBUS_PORTS: 502
    FILE_DATA_PORTS: "[\$HTTP_PORTS,110,143]"
    FTP_PORTS: 21
    GENEVE_PORTS: 6081
    VXLAN_PORTS: 4789
    TEREDO_PORTS: 3544
default-log-dir: $out
classification-file: $classification
reference-config-file: /etc/suricata/reference.config
mpm-algo: hs
spm-algo: hs
outputs:
  - eve-log:
      enabled: yes
      filetype: regular
      filename: eve.json
      types:
        - alert
logging:
  default-log-level: info
  outputs:
    - console:
        enabled: no
    - file:
        enabled: yes
        filename: suricata.log
EOF

# Packet-path CPU seconds in a perf recording: samples of every thread but
# the main one (Tollgate's unnamed compile threads carry its name too).
perf_cpu() {
    perf report -i "$1" --sort comm -F comm,sample -q --stdio 2>/dev/null | awk '
        $1 != "tollgate" && $1 != "Suricata-Main" && $1 != "suricata" && $1 != "time" \
            { n += $NF } END { printf "%.3f", n / 999 }'
}

# perf may be refused (perf_event_paranoid, a container): then the
# packet-path CPU column says n/a and the rest is measured as before.
use_perf=1
if ! perf record -q -e cpu-clock -o "$out/probe.data" -- true >/dev/null 2>&1; then
    use_perf=0
    echo "bench: perf cannot record here: packet-path CPU is not measured" >&2
fi

# One run: "wall user sys maxrss_kb processing_s packet_path_cpu_s" of it;
# its EVE in $out/<engine>.json.
run() {
    local engine="$1" pcap="$2" tag="$3"
    local t="$out/time-$engine-$tag.txt" rec="$out/perf-$engine.data"
    local own pre=()
    rm -f "$rec"
    [ "$use_perf" = 1 ] && pre=(perf record -q -e cpu-clock -F 999 -o "$rec" --)
    case "$engine" in
        tollgate)
            rm -f "$out/tollgate.json"
            "${pre[@]}" /usr/bin/time -f "%e %U %S %M" -o "$t" "$tg" replay "$pcap" --workers 1 \
                --rules "$out/both.rules" --classification "$classification" \
                --eve "$out/tollgate.json" --eve-types alert --stats-interval 0 \
                --stats-json "$out/tg-stats.json" >/dev/null 2>&1 || true
            own=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["throughput"]["seconds"])' \
                "$out/tg-stats.json" 2>/dev/null || echo 0)
            ;;
        suricata)
            rm -rf "$out/su" && mkdir -p "$out/su"
            "${pre[@]}" /usr/bin/time -f "%e %U %S %M" -o "$t" suricata -c "$out/suricata.yaml" \
                -r "$pcap" -S "$out/both.rules" -l "$out/su" --runmode single >/dev/null 2>&1 || true
            cp "$out/su/eve.json" "$out/suricata.json" 2>/dev/null || : >"$out/suricata.json"
            own=$(grep -Eo 'time elapsed [0-9.]+s' "$out/su/suricata.log" | grep -Eo '[0-9.]+' | tail -1)
            ;;
    esac
    echo "$(tail -1 "$t") ${own:-0} $(perf_cpu "$rec")"
}

for i in $(seq "$runs"); do
    for e in tollgate suricata; do
        echo "$e $(run "$e" "$out/tiny.pcap" start)" >>"$out/start.txt"
        echo "$e $(run "$e" "$cap" full)" >>"$out/full.txt"
    done
done
suricata_loaded=$(grep -Eo '[0-9]+ rules successfully loaded' "$out/su/suricata.log" | head -1 || true)
suricata_failed=$(grep -Eo '[0-9]+ rules failed' "$out/su/suricata.log" | head -1 || true)
packets=$(capinfos -c -M "$cap" | awk -F: '/Number of packets/ {gsub(/ /,"",$2); print $2}')

python3 - "$out" "$cap" "$packets" "$runs" "$suricata_loaded" "$suricata_failed" <<'EOF'
import collections, json, statistics, sys
out, cap, packets, runs, loaded, failed = sys.argv[1:7]
packets = int(packets)
def med(file, engine, col):
    v = [float(l.split()[col + 1]) for l in open(f"{out}/{file}") if l.split()[0] == engine]
    return statistics.median(v)
rows = {}
for e in ("tollgate", "suricata"):
    wall, start = med("full.txt", e, 0), med("start.txt", e, 0)
    cpu = med("full.txt", e, 1) + med("full.txt", e, 2)
    cpu0 = med("start.txt", e, 1) + med("start.txt", e, 2)
    rows[e] = dict(wall=wall, start=start, work=max(wall - start, 1e-9),
                   cpu=cpu, cpu_work=max(cpu - cpu0, 1e-9), rss=med("full.txt", e, 3) / 1024,
                   own=max(med("full.txt", e, 4), 1e-9), path_cpu=max(med("full.txt", e, 5), 1e-9))
def sids(path):
    c = collections.Counter()
    for line in open(path):
        try:
            ev = json.loads(line)
        except ValueError:
            continue
        if ev.get("event_type") == "alert":
            c[ev["alert"]["signature_id"]] += 1
    return c
tg, su = sids(f"{out}/tollgate.json"), sids(f"{out}/suricata.json")
# A comparison holds only if every packet went through.
tg_stats = json.load(open(f"{out}/tg-stats.json"))
replayed = tg_stats["capture"]["records"]
if replayed != packets:
    sys.exit(f"tollgate replayed {replayed} of {packets} packets: no comparison")
# Alerts a full EVE ring lost are not in Tollgate's EVE: say so, or a
# flood of alerts reads as a difference of semantics.
lost = tg_stats.get("events", {}).get("alerts_dropped_ring_full", 0)
print(f"\n{cap}: {packets} packets; {runs} interleaved runs each, medians; "
      f"Suricata: {loaded or '? rules loaded'}, {failed or '0 rules failed'}\n")
print("| engine | wall s | start-up s | wall − start-up s | processing s (own clock) | Mpps (own clock) "
      "| packet-path CPU s | CPU s | CPU − start-up s | max RSS MB | alerts |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
measured = lambda r: r["path_cpu"] > 1e-6
path = lambda r: f"{r['path_cpu']:.3f}" if measured(r) else "n/a"
ratio = lambda t, s: f"{t['path_cpu'] / s['path_cpu']:.2f}" if measured(t) and measured(s) else "n/a"
for e, c in (("tollgate", tg), ("suricata", su)):
    r = rows[e]
    print(f"| {e} | {r['wall']:.2f} | {r['start']:.2f} | {r['work']:.2f} | {r['own']:.3f} "
          f"| {packets / r['own'] / 1e6:.2f} | {path(r)} | {r['cpu']:.2f} | {r['cpu_work']:.2f} "
          f"| {r['rss']:.0f} | {sum(c.values())} |")
t, s = rows["tollgate"], rows["suricata"]
print(f"\nTollgate / Suricata: processing time {t['own'] / s['own']:.2f} "
      f"(packets/s {s['own'] / t['own']:.2f}x), packet-path CPU {ratio(t, s)}, "
      f"wall without start-up {t['work'] / s['work']:.2f}, CPU without start-up "
      f"{t['cpu_work'] / s['cpu_work']:.2f}, memory {t['rss'] / s['rss']:.2f} (below 1: Tollgate is "
      f"faster or uses less)")
diff = sorted(set(tg) | set(su))
diff = [(sid, tg[sid], su[sid]) for sid in diff if tg[sid] != su[sid]]
same = sum(1 for sid in set(tg) | set(su) if tg[sid] == su[sid])
print(f"per-sid alert counts: {same} sids equal, {len(diff)} differ")
if lost:
    raised = tg_stats.get("rules", {}).get("alerts", 0)
    print(f"(Tollgate raised {raised} alerts in its last run and lost {lost} to a full EVE ring: "
          f"its counts below are of what it wrote)")
for sid, a, b in diff:
    print(f"  sid {sid}: tollgate {a}, suricata {b}")
EOF
