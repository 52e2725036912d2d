#!/usr/bin/env bash
# Runs every benchmark and regenerates docs/PERFORMANCE.md. One command, on a fresh Debian 12
# machine (it installs what it needs), bounded in time (BENCH_BUDGET_S, 3000 s by default: every
# part's limit fits, about 50 minutes with the install and build), loopback only. Benchmarks
# report numbers; nothing here asserts a timing.
#
#   scripts/bench.sh [--quick] [--out DIR] [--doc PATH]
#     --quick  a short smoke run of every part (checks that the scripts work; not for numbers).
#              Writes DIR/PERFORMANCE.md and leaves docs/PERFORMANCE.md alone unless --doc.
#     --out    keep every part's raw output in DIR (default: a new /tmp/ragstream-bench.*)
#     --doc    where to write the document (default: docs/PERFORMANCE.md, or DIR/PERFORMANCE.md
#              with --quick)
#
# The parts, in order (a missing script is skipped; a failed one is recorded as failed in the
# document, and the others still run):
#   1    tests/bench/relay/run.sh    relay delay per token
#   2    tests/bench/relay/ramp.sh   concurrent streams per host
#   3,5  tests/bench/ttft/run.sh     time to first token; ingestion
#   4    tests/bench/vector/run.sh   vector search against FAISS
#   6    tests/bench/peers/run.sh    a peer, side by side
#   7    tests/bench/ingest/run.sh   ingestion against SQLite FTS5
#   8    tests/bench/ivf/run.sh      the approximate vector index against exact and FAISS
#   9    tests/bench/cluster/run.sh  cluster mode (the shard's replication log) against one host
#
# The protocol a part follows:
#   - It is run as `PART_SCRIPT DIR` (DIR is its own, empty directory), with BENCH_QUICK=1 in
#     the environment for --quick and BENCH_DEADLINE_S = the seconds it may take (it is
#     killed, with its process group, after that). It installs what it alone needs
#     (apt/npm), idempotently, and prints its run time.
#   - It writes DIR/<name>.md: one Markdown section per part it covers, each starting with
#     `## N. Title` (sections are sorted by N in the document), saying what was measured,
#     the exact command, a table of medians of repeated runs (how many), the ratio to its
#     reference measured in the same run, and for each target: met, or by how much and why
#     it falls short.
#   - It writes DIR/<name>.json: raw numbers, plus this common shape, read for the summary:
#       {"part": 1,                        # or "parts": [3, 5]
#        "title": "Relay delay per token",
#        "elapsed_s": 123,
#        "targets": [{"name": "p99 relay delay at 100 streams",   # what is measured
#                     "target": "< 5 ms",                         # the target, as text
#                     "measured": "1.2 ms",                       # the median, as text
#                     "met": true,                                # true / false
#                     "note": "optional: why it falls short"}],
#        ...anything else the part wants to keep}
#     A part with nothing to meet has "targets": [].
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
quick=0
out=""
doc=""
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    --out) out="$2"; shift ;;
    --doc) doc="$2"; shift ;;
    -h | --help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
started=$SECONDS
budget="${BENCH_BUDGET_S:-3000}"
[ "$quick" = 1 ] && budget="${BENCH_BUDGET_S:-600}"
[ -n "$out" ] || out="$(mktemp -d /tmp/ragstream-bench.XXXXXX)"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
if [ -z "$doc" ]; then
  if [ "$quick" = 1 ]; then doc="$out/PERFORMANCE.md"; else doc="$root/docs/PERFORMANCE.md"; fi
fi
command_line="scripts/bench.sh"
[ "$quick" = 1 ] && command_line+=" --quick"
load_at_start=$(cut -d' ' -f1 /proc/loadavg)
echo "== bench: results in $out" >&2

echo "== bench: dependencies and build" >&2
"$root/scripts/install_deps.sh" >&2
command -v python3 >/dev/null || {
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends python3 >&2
}
# The bench sub-directories are added when CMake configures: configure again so that a build
# directory made before a part existed knows its targets.
if [ -f "$root/build/CMakeCache.txt" ]; then cmake -S "$root" -B "$root/build" >/dev/null; fi
"$root/scripts/build.sh" ragstream-worker >&2

# number(s) | name | script | seconds it may take at most | title(s), ;-separated
parts=(
  "1|relay|tests/bench/relay/run.sh|240|Relay delay per token"
  "2|ramp|tests/bench/relay/ramp.sh|390|Concurrent streams per host"
  "3,5|ttft|tests/bench/ttft/run.sh|360|Time to first token;Ingestion"
  "4|vector|tests/bench/vector/run.sh|300|Vector search against FAISS"
  "6|peers|tests/bench/peers/run.sh|300|A peer, side by side"
  "7|ingest|tests/bench/ingest/run.sh|600|Ingestion against SQLite FTS5"
  "8|ivf|tests/bench/ivf/run.sh|420|Approximate vector search"
  "9|cluster|tests/bench/cluster/run.sh|300|Cluster mode: the replication log"
)
# Ends what a part left running (a part stopped at its limit, or one whose servers started
# their own sessions): the processes whose environment carries the part's token.
reap_part() {
  local token="$1" pids=() p sig
  for sig in TERM KILL; do
    pids=()
    for p in /proc/[0-9]*; do
      p=${p#/proc/}
      [ "$p" = $$ ] && continue
      { tr '\0' '\n' <"/proc/$p/environ"; } 2>/dev/null | grep -qx "BENCH_PART_TOKEN=$token" && pids+=("$p")
    done
    [ ${#pids[@]} -eq 0 ] && return 0
    echo "== bench: ending ${#pids[@]} process(es) the part left running (SIG$sig)" >&2
    kill "-$sig" "${pids[@]}" 2>/dev/null || true
    sleep 3
  done
}
status_file="$out/parts.jsonl"
: >"$status_file"
reserve=20  # seconds kept for writing the document
for entry in "${parts[@]}"; do
  IFS='|' read -r numbers name script limit titles <<<"$entry"
  dir="$out/$name"
  if [ ! -f "$root/$script" ]; then
    echo "{\"name\": \"$name\", \"parts\": \"$numbers\", \"titles\": \"$titles\", \"script\": \"$script\", \"status\": \"missing\"}" >>"$status_file"
    echo "== bench: $script is not there: skipped" >&2
    continue
  fi
  left=$((budget - (SECONDS - started) - reserve))
  [ "$quick" = 1 ] && limit=$((limit / 2))
  t=$((limit < left ? limit : left))
  if [ "$t" -lt 30 ]; then
    echo "{\"name\": \"$name\", \"parts\": \"$numbers\", \"titles\": \"$titles\", \"script\": \"$script\", \"status\": \"skipped\", \"reason\": \"the time budget ran out\"}" >>"$status_file"
    echo "== bench: no time left for $script: skipped" >&2
    continue
  fi
  mkdir -p "$dir"
  echo "== bench: part $numbers: $script (at most $t s)" >&2
  part_started=$SECONDS
  rc=0
  token="$name-$$-$RANDOM"
  BENCH_PART_TOKEN=$token BENCH_QUICK=$quick BENCH_DEADLINE_S=$t timeout -k 15 "$t" \
    bash "$root/$script" "$dir" >"$dir/log.txt" 2>&1 || rc=$?
  took=$((SECONDS - part_started))
  reap_part "$token"
  status=ok
  [ "$rc" -eq 0 ] || status=failed
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then status=timeout; fi
  echo "{\"name\": \"$name\", \"parts\": \"$numbers\", \"titles\": \"$titles\", \"script\": \"$script\", \"status\": \"$status\", \"rc\": $rc, \"seconds\": $took, \"limit_s\": $t}" >>"$status_file"
  echo "== bench: part $numbers: $status in $took s" >&2
done

total=$((SECONDS - started))
load_at_start="$load_at_start at the start; $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min) at the end"
mkdir -p "$(dirname "$doc")"
python3 - "$out" "$doc" "$status_file" "$total" "$command_line" "$load_at_start" "$quick" <<'EOF'
import datetime, glob, json, os, platform, re, subprocess, sys
out, doc, status_file, total, command, load, quick = sys.argv[1:]
root = os.getcwd()
statuses = [json.loads(l) for l in open(status_file) if l.strip()]

def sh(*args):
    try:
        return subprocess.run(args, capture_output=True, text=True, check=True).stdout.strip()
    except Exception:
        return "unknown"

cpu = "unknown"
for line in open("/proc/cpuinfo"):
    if line.startswith("model name"):
        cpu = line.split(":", 1)[1].strip()
        break
mem_gib = int(open("/proc/meminfo").readline().split()[1]) / 1048576
commit = sh("git", "-C", root, "describe", "--always", "--dirty", "--abbrev=12")
subject = sh("git", "-C", root, "log", "-1", "--format=%s")

sections = {}   # part number -> markdown
summary = []    # rows
notes = []
for st in statuses:
    numbers = [int(x) for x in st["parts"].split(",")]
    titles = dict(zip(numbers, (st.get("titles") or "").split(";")))
    d = os.path.join(out, st["name"])
    jsons = []
    for path in sorted(glob.glob(os.path.join(d, "*.json"))):
        try:
            j = json.load(open(path))
        except Exception:
            continue
        if isinstance(j, dict) and ("part" in j or "parts" in j):
            jsons.append(j)
    mds = sorted(glob.glob(os.path.join(d, "*.md")))
    found = {}
    for path in mds:
        text = open(path).read()
        chunks = re.split(r"(?m)^(?=## \d+\.)", text)
        for chunk in chunks:
            m = re.match(r"## (\d+)\.", chunk)
            if m:
                found[int(m.group(1))] = chunk.rstrip() + "\n"
    status = st["status"]
    for n in numbers:
        if status == "missing":
            continue
        body = found.get(n)
        if status != "ok" or body is None:
            log_tail = ""
            log = os.path.join(d, "log.txt")
            if os.path.exists(log):
                log_tail = "".join(open(log, errors="replace").readlines()[-15:])
            what = {"failed": f"failed (exit status {st.get('rc')}) after {st.get('seconds')} s",
                    "timeout": f"was stopped at its time limit ({st.get('limit_s')} s)",
                    "skipped": f"was skipped: {st.get('reason', '')}"}.get(status, "wrote no section")
            head = body.splitlines()[0] if body else f"## {n}. {titles.get(n) or st['script']}"
            text = f"{head}\n\n**This part {what}**; `{st['script']}`."
            if body:
                text += " What it wrote before that follows; its figures may be partial.\n\n" + "\n".join(body.splitlines()[1:])
            if log_tail:
                text += "\n\nThe end of its log:\n\n```\n" + log_tail.rstrip() + "\n```\n"
            sections[n] = text + "\n"
        else:
            sections[n] = body
    if status == "missing":
        notes.append(f"- part {st['parts'].replace(',', ', ')} ({(st.get('titles') or '').replace(';', '; ')}): "
                     f"`{st['script']}` is not in this tree yet; not run.")
        continue
    rows = []
    for j in jsons:
        title = j.get("title", "")
        num = j.get("part") or ",".join(str(x) for x in j.get("parts", []))
        for t in j.get("targets") or []:
            met = t.get("met")
            verdict = "met" if met is True else ("**missed**" if met is False else "–")
            rows.append(f"| {num}. {title} | {t.get('name', '')} | {t.get('target', '')} | "
                        f"{t.get('measured', '')} | {verdict} |")
        if not j.get("targets"):
            rows.append(f"| {num}. {title} | (reports figures; no target) | – | – | – |")
    if status != "ok":
        rows.append(f"| {st['parts'].replace(',', ', ')}. {(st.get('titles') or '').replace(';', '; ')} | "
                    f"`{st['script']}` | – | – | **{status}** |")
    summary += rows

now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
L = []
w = L.append
w("# Performance")
w("")
w("Generated by `scripts/bench.sh`; do not edit by hand: run it again. Benchmarks report figures; "
  "no test asserts a timing. Every figure is a median of repeated runs (each section says how many), "
  "measured on loopback on the machine below, next to its reference measured in the same run.")
if quick == "1":
    w("")
    w("**This is a `--quick` smoke run: its figures check that the scripts work and are not measurements.**")
w("")
w("| | |")
w("| --- | --- |")
w(f"| machine | {cpu}, {os.cpu_count()} cores, {mem_gib:.1f} GiB RAM, Linux {platform.release()} |")
w(f"| date | {now} |")
w(f"| commit | `{commit}` ({subject}) |")
w(f"| command | `{command}` |")
w(f"| total run time | {int(total) // 60} min {int(total) % 60} s (install, build and every part) |")
w(f"| load average | {load} (above 2, other work shared the 2 cores and the figures are indicative) |")
w("")
w("## Summary")
w("")
w("| part | what | target | measured | verdict |")
w("| --- | --- | --- | --- | --- |")
L.extend(summary)
if notes:
    w("")
    L.extend(notes)
w("")
w("Each part's run time (seconds): " + ", ".join(
    f"{s['parts']} {s.get('seconds', '–')}" + ("" if s["status"] == "ok" else f" ({s['status']})")
    for s in statuses if s["status"] != "missing") + ".")
w("")
for n in sorted(sections):
    L.append(sections[n].rstrip() + "\n")
open(doc, "w").write("\n".join(L).rstrip() + "\n")
print(f"wrote {doc}", file=sys.stderr)
EOF
echo "== bench: done in $(((SECONDS - started) / 60)) min $(((SECONDS - started) % 60)) s; $doc" >&2
