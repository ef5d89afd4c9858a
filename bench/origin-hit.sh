#!/usr/bin/env bash
# Hot-cache hits of `lectern origin` against nginx serving the same files from disk with sendfile, side by
# side in one run on loopback, bounded in time (about two minutes of load with the defaults; the whole
# script takes about 2.5 minutes).
#
# A short two-rung lecture (1080p and 360p fMP4 HLS, 6 s segments like the transcoder's) is made with
# ffmpeg and published to a file store with objstore's PutFile and the transcoder's content types
# (bench/puthls), so ROOT/hls/LECTURE/v1/... holds exactly what a transcode stores. `lectern origin
# --storage file://ROOT` serves it on 127.0.0.1:18084; the team's anchor script (../shared/bench/
# edge-anchors.sh) serves ROOT with nginx (sendfile, 18080) and, for context, nginx proxy_cache (18081)
# and Varnish (18082) in front of it, then runs wrk against every server for each object, servers
# alternating, after warming each (a first request fills the origin's hot cache). Objects: a ~400 KB
# 1080p segment, a ~80 KB 360p segment and the 1080p media playlist. Reports req/s, transfer/s, the ratio
# origin/nginx, the origin's RSS under load (VmRSS sampled while it is busy, VmHWM at the end) and its
# hot-cache counters from /metrics (the hits must account for the requests). Prints a Markdown section;
# with --write (or WRITE=1) it also replaces the section "## Origin hot-cache hits vs nginx sendfile" in
# docs/benchmarks.md.
#
#   bench/origin-hit.sh [--write]
# Environment: CONNS (32) and SECS (5): wrk -t1 -cCONNS -dSECSs for every server; LECTERN (a prebuilt
# binary instead of `go build`); ANCHORS (the anchor script); RATE_1080 / RATE_360 (x264 bitrates that
# put the segments near 400 KB / 80 KB); IDLE_WAIT (longest wait for an idle machine first, 30 s);
# NOHOT (1: a second pass of the anchor script against `lectern origin --hot-memory 0` on 18085, where
# every request is a miss served by a fill from storage, as a yardstick for the hot cache; 0: skip);
# ORIGIN_PROCS (GOMAXPROCS of the origins, 1 by default: one core, as the anchors' nginx has one worker
# and wrk takes the other core of this 2-core machine; with 2 the Go scheduler and wrk fight over cores).
set -euo pipefail

section="## Origin hot-cache hits vs nginx sendfile"
. "$(dirname "$0")/lib.sh"
parse_write "$0" "$@"
root=$(cd "$(dirname "$0")/.." && pwd)
anchors=${ANCHORS:-$root/../shared/bench/edge-anchors.sh}
conns=${CONNS:-32}
secs=${SECS:-5}
export CONNS=$conns SECS=$secs
port=18084
port2=18085
nohot=${NOHOT:-1}
procs=${ORIGIN_PROCS:-1}
lecture=benchoriginlect2 # a catalog-style id: 16 characters of [a-z2-7]

say() { echo "origin-bench: $*" >&2; }
die() { say "$*"; exit 1; }

need_debs "nginx:command -v nginx" "varnish:command -v varnishd" "wrk:command -v wrk" \
  "ffmpeg:command -v ffmpeg" "curl:command -v curl"
command -v python3 >/dev/null || die "python3 is required (metrics and arithmetic)"
[ -f "$anchors" ] || die "$anchors not found"
for p in 18080 18081 18082 $port $port2; do
  ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || die "127.0.0.1:$p is in use (another benchmark running?)"
done

work=$(mktemp -d "${TMPDIR:-/tmp}/lectern-origin-bench.XXXXXX")
chmod 755 "$work" # nginx reads the store
origin_pid="" nohot_pid="" sampler_pid=""
cleanup() {
  set +e
  [ -z "$sampler_pid" ] || kill "$sampler_pid" 2>/dev/null
  [ -z "$origin_pid" ] || kill "$origin_pid" 2>/dev/null
  [ -z "$nohot_pid" ] || kill "$nohot_pid" 2>/dev/null
  wait 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- build (not measured) ---
build_lectern "$root" "$work"
(cd "$root" && go build -o "$work/puthls" ./bench/puthls)

# --- the lecture (not measured) ---
# 18 s of testsrc2 1080p30, two rungs encoded like the transcoder's ladder (H.264, 2 s GOPs, 6 s fMP4
# segments, init.mp4 per rung) at fixed bitrates chosen for the segment sizes: a screen-like lecture at
# ~540 kb/s in 1080p and ~110 kb/s in 360p.
say "encoding the lecture"
hls=$work/hls
mkdir -p "$hls"
ffmpeg -hide_banner -nostdin -y -loglevel error -f lavfi -i testsrc2=size=1920x1080:rate=30:duration=18 \
  -filter_complex "[0:v]split=2[a][b];[b]scale=-2:360[c]" -map "[a]" -map "[c]" \
  -c:v libx264 -preset veryfast -pix_fmt yuv420p -g 60 -keyint_min 60 -sc_threshold 0 \
  -b:v:0 "${RATE_1080:-565k}" -maxrate:v:0 "${RATE_1080:-565k}" -bufsize:v:0 1100k \
  -b:v:1 "${RATE_360:-108k}" -maxrate:v:1 "${RATE_360:-108k}" -bufsize:v:1 220k \
  -f hls -hls_time 6 -hls_playlist_type vod -hls_segment_type fmp4 -hls_flags independent_segments \
  -hls_fmp4_init_filename init.mp4 -start_number 1 -master_pl_name master.m3u8 \
  -hls_segment_filename "$hls/%v/seg_%05d.m4s" -var_stream_map "v:0,name:1080p v:1,name:360p" "$hls/%v/index.m3u8"
# ffmpeg 5.1 names the init sections init_N.mp4 with several variants; the transcoder renames them.
for d in "$hls"/1080p "$hls"/360p; do
  for f in "$d"/init_*.mp4; do [ -e "$f" ] && mv "$f" "$d/init.mp4"; done
  sed -i 's/URI="init_[0-9]*\.mp4"/URI="init.mp4"/' "$d/index.m3u8"
done
store=$work/store
"$work/puthls" -storage "file://$store" -prefix "hls/$lecture/v1" "$hls" >"$work/published"
sed 's/^/  /' "$work/published" >&2
chmod -R a+rX "$store"

seg1080=/hls/$lecture/v1/1080p/seg_00002.m4s
seg360=/hls/$lecture/v1/360p/seg_00002.m4s
playlist=/hls/$lecture/v1/1080p/index.m3u8
paths="$seg1080 $seg360 $playlist"
size() { stat -c %s "$store$1"; }
say "objects: $seg1080 $(size "$seg1080") B, $seg360 $(size "$seg360") B, $playlist $(size "$playlist") B"

# --- the origins ---
start_origin() { # PORT FLAGS...: starts lectern origin on PORT, sets started_pid, warms and checks every object
  local p=$1 code; shift
  GOMAXPROCS=$procs "$lectern" origin --listen "127.0.0.1:$p" --storage "file://$store" --log-level warn "$@" >"$work/origin-$p.log" 2>&1 &
  started_pid=$!
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && break
    kill -0 "$started_pid" 2>/dev/null || { cat "$work/origin-$p.log" >&2; die "lectern origin exited"; }
    sleep 0.1
  done
  # Warm: one request per object fills the hot cache; the body must be the stored file, byte for byte.
  for path in $paths; do
    code=$(curl -s -o "$work/body" -w '%{http_code}' "http://127.0.0.1:$p$path")
    [ "$code" = 200 ] || { cat "$work/origin-$p.log" >&2; die "origin: GET $path -> $code"; }
    cmp -s "$work/body" "$store$path" || die "origin: GET $path returned other bytes than the stored file"
  done
}
start_origin "$port"
origin_pid=$started_pid
if [ "$nohot" = 1 ]; then
  start_origin "$port2" --hot-memory 0
  nohot_pid=$started_pid
fi
base=http://127.0.0.1:$port
curl -s -D - -o /dev/null "$base$seg1080" | tr -d '\r' | sed '/^$/d' >"$work/headers"

metrics() { curl -fsS "$base/metrics" | grep '^lectern_origin_' || true; }
# msum FILE NAME: the sum of metric NAME over its label sets in FILE (empty when absent)
msum() {
  python3 - "$1" "$2" <<'PY'
import sys
name, total, seen = sys.argv[2], 0.0, False
for line in open(sys.argv[1]):
    metric, _, value = line.rpartition(" ")
    if metric.split("{")[0] == name:
        total += float(value); seen = True
print(format(total, ".0f") if seen else "")
PY
}
mdelta() { # NAME: after - before, or "-" when the metric does not exist
  local a b
  a=$(msum "$work/metrics.after" "$1"); b=$(msum "$work/metrics.before" "$1")
  [ -n "$a" ] && [ -n "$b" ] && echo $((a - b)) || echo -
}

# --- measuring ---
hz=$(getconf CLK_TCK)
busy_ticks() { awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat; }
proc_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }
wait_idle() { # until the machine uses < 10% of a core over 2 s (at most IDLE_WAIT s)
  local deadline=$((SECONDS + ${IDLE_WAIT:-30})) t0 t1 pct
  while :; do
    t0=$(busy_ticks); sleep 2; t1=$(busy_ticks)
    pct=$(((t1 - t0) * 100 / (2 * hz)))
    idle_pct=$pct
    [ "$pct" -lt 10 ] && return 0
    [ $SECONDS -ge $deadline ] && { say "machine still busy (${pct}% of a core); measuring anyway"; return 0; }
    say "waiting for an idle machine (${pct}% of a core in use)"
  done
}
# cpu_snapshot FILE: "pid:starttime comm ticks" for every process, to find out who else ran meanwhile.
cpu_snapshot() {
  python3 - >"$1" <<'PY'
import os
for pid in os.listdir("/proc"):
    if not pid.isdigit():
        continue
    try:
        s = open(f"/proc/{pid}/stat").read()
    except OSError:
        continue
    comm = s[s.index("(") + 1 : s.rindex(")")].replace(" ", "_")
    f = s[s.rindex(")") + 2 :].split()
    print(f"{pid}:{f[19]} {comm} {int(f[11]) + int(f[12])}")
PY
}
# others FILE_BEFORE FILE_AFTER: CPU seconds used meanwhile by processes that are not part of the
# benchmark (the servers, wrk, this script), and the top three of them.
others() {
  python3 - "$1" "$2" "$hz" "$origin_pid,$nohot_pid" <<'PY'
import sys
def load(p):
    d = {}
    for line in open(p):
        k, comm, t = line.split()
        d[k] = (comm, int(t))
    return d
a, b, hz = load(sys.argv[1]), load(sys.argv[2]), int(sys.argv[3])
ours = {"nginx", "varnishd", "cache-main", "wrk", "lectern", "bash", "curl", "sleep", "awk", "sed", "python3", "cat", "paste"}
use = {}
for k, (comm, t) in b.items():
    if comm in ours or k.split(":")[0] in sys.argv[4].split(","):
        continue
    d = t - a.get(k, (comm, 0))[1]
    if d > 0:
        use[comm] = use.get(comm, 0) + d
top = sorted(use.items(), key=lambda x: -x[1])[:3]
print(format(sum(use.values()) / hz, ".1f"), ", ".join(f"{c} {t / hz:.1f} s" for c, t in top if t / hz >= 0.1) or "none")
PY
}

idle_pct=0
wait_idle
metrics >"$work/metrics.before"
rss_idle=$(awk '/^VmRSS/ { print $2 }' "/proc/$origin_pid/status")
# Sample the origin's RSS and CPU every 0.2 s for the whole run; the samples taken while it used at least
# a third of a core are "under load" (wrk was on it).
(
  while kill -0 "$origin_pid" 2>/dev/null; do
    echo "$(date +%s%N) $(proc_ticks "$origin_pid") $(awk '/^VmRSS/ { print $2 }' "/proc/$origin_pid/status")"
    sleep 0.2
  done
) >"$work/samples" 2>/dev/null &
sampler_pid=$!
cpu_snapshot "$work/cpu.before"
t0=$SECONDS
say "running $anchors (wrk -t1 -c$conns -d${secs}s per server and object)"
OURS=$base PATHS="$paths" bash "$anchors" "$store" | tee "$work/anchors.out" >&2
metrics >"$work/metrics.after"
hwm=$(awk '/^VmHWM/ { print $2 }' "/proc/$origin_pid/status")
kill "$sampler_pid" 2>/dev/null; wait "$sampler_pid" 2>/dev/null || true; sampler_pid=""
if [ "$nohot" = 1 ]; then
  say "second pass: the origin without its hot cache (--hot-memory 0) on $port2"
  OURS=http://127.0.0.1:$port2 PATHS="$paths" bash "$anchors" "$store" | tee "$work/anchors2.out" >&2
  curl -fsS "http://127.0.0.1:$port2/metrics" | grep '^lectern_origin_' >"$work/metrics.nohot" || true
  nohot_reads=$(msum "$work/metrics.nohot" lectern_origin_storage_reads_total)
  nohot_collapsed=$(msum "$work/metrics.nohot" lectern_origin_collapsed_total)
fi
elapsed=$((SECONDS - t0))
cpu_snapshot "$work/cpu.after"
read -r others_cpu others_top < <(others "$work/cpu.before" "$work/cpu.after")

# RSS under load: median and max of the busy samples, in MiB.
read -r rss_med rss_max rss_n < <(python3 - "$work/samples" "$hz" <<'PY'
import statistics, sys
rows = [tuple(map(int, l.split())) for l in open(sys.argv[1]) if len(l.split()) == 3]
hz, busy = int(sys.argv[2]), []
for (t0, c0, _), (t1, c1, r1) in zip(rows, rows[1:]):
    if t1 > t0 and (c1 - c0) / hz / ((t1 - t0) / 1e9) >= 1 / 3:
        busy.append(r1)
if busy:
    print(f"{statistics.median(busy) / 1024:.0f} {max(busy) / 1024:.0f} {len(busy)}")
else:
    print("- - 0")
PY
)

# --- report ---
# result PATH SERVER FIELD [PASS]: from the anchor script's "PATH SERVER [CODE] req/s,transfer: R T"
# lines of pass 1 (default) or 2; FIELD 1 req/s, 2 transfer/s, 3 status code.
result() {
  local out=$work/anchors.out
  [ "${4:-1}" = 2 ] && out=$work/anchors2.out
  awk -v p="$1" -v s="$2" -v f="$3" '$1 == p && $2 == s {
    if (f == 3) { gsub(/[][]/, "", $3); print $3 } else print $(4 + f) }' "$out"
}
reqs() { local r; r=$(result "$1" "$2" 1 "${3:-1}"); printf '%.0f' "${r:-0}"; } # PATH SERVER [PASS]
div() { python3 -c "a, b = $1, $2; print(format(a / b, '.2f') if b else '-')"; }
ratio() { div "$(reqs "$1" ours "${2:-1}")" "$(reqs "$1" nginx-files "${2:-1}")"; } # PATH [PASS]: ours / nginx files
cell() { echo "$(reqs "$1" "$2" "${3:-1}") ($(result "$1" "$2" 2 "${3:-1}")/s)"; } # PATH SERVER [PASS]
codes() { # every status the anchors saw, to catch a server that answered errors fast
  cat "$work"/anchors*.out | awk '$4 == "req/s,transfer:" { gsub(/[][]/, "", $3); print $3 }' | sort | uniq -c |
    awk '{ printf "%s%s x%s", (NR > 1 ? ", " : ""), $2, $1 }'
}
row2() { # LABEL PATH: the second pass
  printf '| %s | %s | %s | %sx | %sx |\n' "$1" "$(cell "$2" nginx-files 2)" "$(cell "$2" ours 2)" "$(ratio "$2" 2)" \
    "$(div "$(reqs "$2" ours)" "$(reqs "$2" ours 2)")"
}
nohot_table() {
  [ "$nohot" = 1 ] || return 0
  cat <<EOF

A second pass right after the first: the same anchor run with \`lectern origin --hot-memory 0\` as ours, where
every GET is a miss served by a fill (a storage read through the file driver, the body streamed through
memory to the requests collapsed onto it): ${nohot_reads:-?} storage reads, ${nohot_collapsed:-?} collapsed requests. The
yardstick for what the hot cache adds. Requests per second (transfer per second):

| object | nginx files (2nd pass) | origin, no hot cache | no-hot/nginx | hot (1st pass) / no-hot |
|---|---|---|---|---|
$(row2 "1080p segment" "$seg1080")
$(row2 "360p segment" "$seg360")
$(row2 "media playlist" "$playlist")
EOF
}
row() { # LABEL PATH
  printf '| %s | %s | %s | %s | %sx | %s | %s |\n' "$1" "$(size "$2")" "$(cell "$2" nginx-files)" "$(cell "$2" ours)" \
    "$(ratio "$2")" "$(reqs "$2" nginx-cache)" "$(reqs "$2" varnish)"
}
verdict() { python3 -c "print('yes' if $1 >= 0.8 else '**no**')"; }
hits=$(mdelta lectern_origin_hot_hits_total) misses=$(mdelta lectern_origin_hot_misses_total)
reqs_total=$(mdelta lectern_origin_requests_total) reads=$(mdelta lectern_origin_storage_reads_total)
wrk_total=$(python3 -c "print(round(sum([$(for p in $paths; do printf '%s,' "$(reqs "$p" ours)"; done)]) * $secs))")
hot_note="hot hits $hits, hot misses $misses, storage reads $reads, requests $reqs_total (wrk: about $wrk_total)"
if [ "$hits" = - ]; then
  hot_note="no lectern_origin_hot_hits_total in /metrics (this build has no hot cache); requests $reqs_total, storage reads $reads"
fi
cores=$(nproc)
mem=$(awk '/^MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)
cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
others_note="the machine was otherwise idle (other processes used $others_cpu CPU s during the ${elapsed} s run)"
python3 -c "import sys; sys.exit(0 if $others_cpu < max(2, 0.03 * $elapsed) else 1)" ||
  others_note="**other work was running**: other processes used $others_cpu CPU s during the ${elapsed} s run ($others_top); compare within the run only"

report() {
  cat <<EOF
$section

$(date -u +%F), lectern \`$lectern_version\`, $(nginx -v 2>&1 | sed 's/.*: //'), $(varnishd -V 2>&1 | head -n 1 | sed 's/ (\(varnish-[0-9.]*\).*/ \1/; s/varnishd //'), $cores cores ($cpu_model), $mem; $others_note.
Command: \`bash bench/origin-hit.sh --write\` (or \`make bench-origin\`): wrk \`-t1 -c$conns -d${secs}s\` on loopback
through \`../shared/bench/edge-anchors.sh\`, which alternates the servers object by object in one run.

The lecture: 18 s of ffmpeg testsrc2 in two rungs (1080p, 360p), H.264 in 6 s fMP4 segments like the
transcoder's, published by \`bench/puthls\` (objstore \`PutFile\` with the transcoder's content types) to a
file store. \`lectern origin --listen 127.0.0.1:$port --storage file://ROOT\` serves it, defaults otherwise
(256 MiB hot cache, one process, GOMAXPROCS $procs); nginx (1 worker, \`sendfile on\`, \`tcp_nopush on\`, access log
off, the anchor script's config) serves ROOT from disk, page cache warm; nginx proxy_cache and Varnish
(malloc) in front of it are the anchor script's other columns, for context. Every server got two requests
per object before its wrk run, so each origin run should be all hot-cache hits: $hot_note.
Statuses seen: $(codes).

Requests per second (transfer per second):

| object | bytes | nginx files (sendfile) | Lectern origin (hot cache) | origin/nginx | nginx proxy_cache | Varnish |
|---|---|---|---|---|---|---|
$(row "1080p segment \`v1/1080p/seg_00002.m4s\`" "$seg1080")
$(row "360p segment \`v1/360p/seg_00002.m4s\`" "$seg360")
$(row "media playlist \`v1/1080p/index.m3u8\`" "$playlist")

| target | measured | met |
|---|---|---|
| 1080p segment: origin >= 0.8x nginx req/s | $(ratio "$seg1080")x | $(verdict "$(ratio "$seg1080")") |
| 360p segment: origin >= 0.8x nginx req/s | $(ratio "$seg360")x | $(verdict "$(ratio "$seg360")") |

The origin's memory (from /proc, sampled every 0.2 s): RSS ${rss_idle:+$((rss_idle / 1024)) MiB after warm-up, }${rss_med} MiB median and ${rss_max} MiB max
under load ($rss_n samples taken while it used at least a third of a core), peak (VmHWM) $((hwm / 1024)) MiB.

$(nohot_table)

Reading: on hot-cache hits the origin serves the 1080p segment at $(ratio "$seg1080")x nginx's req/s, the 360p
segment at $(ratio "$seg360")x and the playlist at $(ratio "$playlist")x, with ${rss_max} MiB resident at most under load.
For scale, on this machine a bare Go net/http handler writing the same 400 KB / 80 KB from memory, or
\`http.ServeFile\` (sendfile), measured about 0.6x nginx with two Ps and 0.8x / 0.6x with one: the
remaining gap on mid-size segments is net/http's per-request cost, not the origin's (its handler takes
~0.6 µs and 3 allocations per hit: \`go test -bench HotHit ./origin/\`).$(
  [ "$nohot" = 1 ] && printf '\n%s' "Without the hot cache (second pass) the same origin reached $(ratio "$seg1080" 2)x, $(ratio "$seg360" 2)x and $(ratio "$playlist" 2)x of that pass's nginx.")

Response headers of the 1080p segment from the origin:

\`\`\`
$(cat "$work/headers")
\`\`\`
EOF
}
report | cat -s >"$work/report.md"
cat "$work/report.md"
say "lectern_origin_* metrics after the run:"
sed 's/^/  /' "$work/metrics.after" >&2

if [ "$write" = 1 ]; then
  python3 "$root/bench/write-section.py" "$root/docs/benchmarks.md" "$work/report.md" "$section"
  say "wrote the section to docs/benchmarks.md (add a reading by hand)"
fi
