#!/usr/bin/env bash
# Transcode cost and output of `lectern transcode` against two anchors, measured one after another in
# the same run on the same generated lecture (bench/gen-lecture.sh, 2 minutes of 1080p30 by default):
#   (a)  lectern transcode SRC OUT                   the default "lecture" profile
#   (a') lectern transcode --chapters=false SRC OUT  to price slide-chapter detection
#   (b)  the ffmpeg line `lectern transcode --print-ffmpeg` prints, run bare: lectern's own overhead
#   (c)  a fixed 4-rung ladder (5000/2800/1400/800 kb/s at 1080/720/480/360, AAC in every rung) as one
#        ffmpeg command, with the same x264 preset as (a): what most tutorials and projects do
# For each: wall seconds, CPU seconds (user+sys, children included, GNU time) and output bytes; for every
# video rung of (a) and (c): bytes, average kb/s and SSIM against the source scaled (bicubic) to the
# rung's size. Prints a Markdown section; with --write (or WRITE=1) it also replaces the section
# "## Transcode: lectern vs bare ffmpeg vs a fixed ladder" in docs/benchmarks.md.
#
#   bench/transcode.sh [--write]
# Environment: SECS (source length, 120), SIZE (1920x1080), LECTERN (a prebuilt binary instead of
# `go build`), JOB_TIMEOUT (seconds per step, 1800), IDLE_WAIT (longest wait for an idle machine before
# each job, 300 s), ATTEMPTS (runs of a job disturbed by other processes, 3).
# The machine has few cores: measured jobs run strictly one at a time; keep the machine otherwise idle.
set -euo pipefail

section="## Transcode: lectern vs bare ffmpeg vs a fixed ladder"
. "$(dirname "$0")/lib.sh"
parse_write "$0" "$@"
secs=${SECS:-120}
size=${SIZE:-1920x1080}
job_timeout=${JOB_TIMEOUT:-1800}
root=$(cd "$(dirname "$0")/.." && pwd)

say() { echo "transcode-bench: $*" >&2; }
die() { say "$*"; exit 1; }

need_debs "ffmpeg:command -v ffmpeg && command -v ffprobe" "time:[ -x /usr/bin/time ]" "coreutils:command -v timeout"
command -v python3 >/dev/null || die "python3 is required (to parse the --print-ffmpeg line)"

work=$(mktemp -d "${TMPDIR:-/tmp}/lectern-transcode-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT TERM

# --- build and generate (not measured) ---
if [ -n "${LECTERN:-}" ]; then
  lectern=$LECTERN
  say "using $lectern"
else
  say "building lectern"
  (cd "$root" && go build -o "$work/lectern" ./cmd/lectern)
  lectern=$work/lectern
fi
help=$("$lectern" transcode -h 2>&1 || true)
grep -q -- '-print-ffmpeg' <<<"$help" || die "$lectern transcode has no --print-ffmpeg flag (yet?)"

src=$work/lecture.mp4
say "generating a ${secs} s ${size} lecture (bench/gen-lecture.sh)"
timeout "$job_timeout" bash "$root/bench/gen-lecture.sh" "$src" "$secs" "$size"
src_secs=$(ffprobe -v error -show_entries format=duration -of default=nw=1:nk=1 "$src")
src_fps=$(ffprobe -v error -select_streams v:0 -show_entries stream=avg_frame_rate -of default=nw=1:nk=1 "$src")
src_bytes=$(stat -c %s "$src")

# busy_ticks: CPU time the whole machine has spent busy since boot, in clock ticks (/proc/stat).
busy_ticks() { awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat; }
hz=$(getconf CLK_TCK)

# wait_idle: the jobs are measured on a small machine; wait (up to IDLE_WAIT seconds, 300) until other
# processes use less than 10% of one core over 5 s, so that they do not skew the figures.
wait_idle() {
  local deadline=$((SECONDS + ${IDLE_WAIT:-300})) t0 t1 pct
  while :; do
    t0=$(busy_ticks); sleep 5; t1=$(busy_ticks)
    pct=$(( (t1 - t0) * 100 / (5 * hz) ))
    [ "$pct" -lt 10 ] && return 0
    [ $SECONDS -ge $deadline ] && { say "machine still busy (${pct}% of a core); measuring anyway"; return 0; }
    say "waiting for an idle machine (other processes use ${pct}% of a core)"
  done
}

# measure NAME DIR OUT CMD...: runs CMD in DIR under GNU time and a timeout; records "wall cpu other" in
# $work/NAME.time, where other is the CPU seconds the rest of the machine used meanwhile. When that is
# more than 3% of the job's own CPU time, the job is run again (up to ATTEMPTS times, 3) from an empty
# output tree OUT (files deleted, directories kept). stdout goes to $work/NAME.out, stderr to $work/NAME.err
# (shown on failure).
measure() {
  local name=$1 dir=$2 out=$3 attempt t0 t1; shift 3
  for ((attempt = 1; attempt <= ${ATTEMPTS:-3}; attempt++)); do
    say "measuring ($name), attempt $attempt: $(printf '%q ' "$@" | cut -c1-140)"
    mkdir -p "$dir"
    wait_idle
    t0=$(busy_ticks)
    if ! (cd "$dir" && /usr/bin/time -f '%e %U %S' -o "$work/$name.rusage" \
        timeout "$job_timeout" "$@" >"$work/$name.out" 2>"$work/$name.err"); then
      tail -n 20 "$work/$name.err" >&2
      die "($name) failed"
    fi
    t1=$(busy_ticks)
    # GNU time prints "Command exited with non-zero status" lines first on failure; the last line is ours.
    tail -n 1 "$work/$name.rusage" |
      awk -v busy="$((t1 - t0))" -v hz="$hz" '{ o = busy / hz - $2 - $3; printf "%.2f %.2f %.1f\n", $1, $2 + $3, (o > 0 ? o : 0) }' >"$work/$name.time"
    python3 -c "import sys; sys.exit(0 if $(other "$name") <= 0.03 * $(cpu "$name") else 1)" && return 0
    say "($name): other processes used $(other "$name") CPU s meanwhile"
    [ "$attempt" -lt "${ATTEMPTS:-3}" ] && { [ ! -d "$out" ] || find "$out" -type f -delete; }
  done
  say "($name): keeping a measurement disturbed by other processes (see the others' CPU column)"
}
wall() { cut -d' ' -f1 "$work/$1.time"; }
cpu() { cut -d' ' -f2 "$work/$1.time"; }
other() { cut -d' ' -f3 "$work/$1.time"; }
tree_bytes() { find "$1" -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }'; }
calc() { python3 -c "print(format($1, '$2'))"; }

# --- (b)'s command line, read first: (c) uses the same x264 preset ---
out_b=$work/out-b
"$lectern" transcode --print-ffmpeg "$src" "$out_b" >"$work/b.line" || die "--print-ffmpeg failed"
[ "$(grep -c . "$work/b.line")" = 1 ] || die "--print-ffmpeg printed $(grep -c . "$work/b.line") lines, want 1"
[ -d "$out_b" ] || die "--print-ffmpeg did not create $out_b"
preset=$(python3 - "$work/b.line" <<'EOF'
import shlex, sys
args = shlex.split(open(sys.argv[1]).read())
presets = [args[i + 1] for i, a in enumerate(args[:-1]) if a == "-preset" or a.startswith("-preset:")]
print(presets[0] if presets else "medium")  # libx264's default when none is given
EOF
)

# --- the measured jobs, one after another ---
out_a=$work/out-a out_a2=$work/out-a2 out_c=$work/out-c
measure a "$work" "$out_a" "$lectern" transcode "$src" "$out_a"
measure a2 "$work" "$out_a2" "$lectern" transcode --chapters=false "$src" "$out_a2"
measure b "$out_b" "$out_b" bash "$work/b.line"

gop=$(python3 -c "from fractions import Fraction as F; print(round(F('$src_fps') * 2))")
fixed_rungs=("1080 5000" "720 2800" "480 1400" "360 800")
graph="[0:v:0]split=${#fixed_rungs[@]}"
for i in "${!fixed_rungs[@]}"; do graph+="[s$i]"; done
c_args=(ffmpeg -hide_banner -nostdin -y -loglevel error -i "$src")
c_rate=() c_map=() streammap=()
for i in "${!fixed_rungs[@]}"; do
  read -r h kbps <<<"${fixed_rungs[$i]}"
  graph+=";[s$i]scale=w=-2:h=$h[v$i]"
  c_map+=(-map "[v$i]" -map 0:a:0)
  c_rate+=("-b:v:$i" "${kbps}k" "-maxrate:v:$i" "$((kbps * 107 / 100))k" "-bufsize:v:$i" "$((kbps * 3 / 2))k")
  streammap+=("v:$i,a:$i,name:${h}p")
done
c_args+=(-filter_complex "$graph" "${c_map[@]}"
  -c:v libx264 -profile:v high -preset "$preset" -g "$gop" -keyint_min "$gop" -sc_threshold 0 "${c_rate[@]}"
  -c:a aac -b:a 128k -ac 2 -ar 48000
  -f hls -hls_time 6 -hls_playlist_type vod -hls_segment_type fmp4 -hls_flags independent_segments
  -hls_fmp4_init_filename init.mp4 -hls_segment_filename "%v/seg_%05d.m4s"
  -master_pl_name master.m3u8 -var_stream_map "${streammap[*]}" "%v/index.m3u8")
printf '%q ' "${c_args[@]}" >"$work/c.line"
measure c "$out_c" "$out_c" "${c_args[@]}"

# --- rungs and SSIM (after every measured job) ---
# rungs OUTDIR: one line per rendition directory with a media playlist: "name w h bytes kbps playable.mp4"
# (w h are 0 0 for an audio-only rendition). The playable file is the playlist's init segment followed
# by its media segments in playlist order.
rungs() {
  local out=$1 d name pl init w h bytes dur file
  for d in "$out"/*/; do
    d=${d%/}; name=${d##*/}; pl=$d/index.m3u8
    [ -f "$pl" ] || continue
    init=$(sed -n 's/^#EXT-X-MAP:URI="\([^"]*\)".*/\1/p' "$pl" | head -n 1)
    [ -n "$init" ] && [ -f "$d/$init" ] || continue
    file=$work/rung-$(basename "$out")-$name.mp4
    { cat "$d/$init"; grep -v '^#' "$pl" | grep . | while IFS= read -r seg; do cat "$d/$seg"; done; } >"$file"
    bytes=$(stat -c %s "$file")
    dur=$(awk -F'[:,]' '/^#EXTINF:/ { s += $2 } END { print s + 0 }' "$pl")
    IFS=x read -r w h < <(ffprobe -v error -select_streams v:0 -show_entries stream=width,height -of csv=p=0:s=x "$file"; echo)
    echo "$name ${w:-0} ${h:-0} $bytes $(calc "$bytes * 8 / 1000 / $dur" .0f) $file"
  done | sort -k3,3nr -k1,1
}
# ssim RUNGS_FILE: appends the SSIM "All" value to every video line, in one ffmpeg that decodes the
# source once. Both sides start at 0: fMP4 segments keep the B-frame delay that MP4 hides in an edit list.
ssim() {
  local list=$1 n=0 graph="" inputs=() maps=() line name w h rest
  while read -r name w h rest; do
    [ "$w" -gt 0 ] || continue
    inputs+=(-i "${rest##* }")
    n=$((n + 1))
  done <"$list"
  [ "$n" -gt 0 ] || die "no video rungs in $list"
  graph="[$n:v]setpts=PTS-STARTPTS,split=$n"
  for ((i = 0; i < n; i++)); do graph+="[r$i]"; done
  i=0
  while read -r name w h rest; do
    [ "$w" -gt 0 ] || continue
    graph+=";[r$i]scale=w=$w:h=$h:flags=bicubic,format=yuv420p[ref$i];[$i:v]setpts=PTS-STARTPTS,format=yuv420p[d$i]"
    graph+=";[d$i][ref$i]ssim@rung$i[o$i]"
    maps+=(-map "[o$i]")
    i=$((i + 1))
  done <"$list"
  timeout "$job_timeout" ffmpeg -hide_banner -nostdin -loglevel info "${inputs[@]}" -i "$src" \
    -filter_complex "$graph" "${maps[@]}" -f null - 2>"$work/ssim.log" || { tail -n 20 "$work/ssim.log" >&2; die "SSIM failed"; }
  i=0
  while read -r name w h rest; do
    if [ "$w" -gt 0 ]; then
      v=$(sed -n "s/^\[ssim@rung$i @ [^]]*\] SSIM .* All:\([0-9.]*\).*/\1/p" "$work/ssim.log")
      [ -n "$v" ] || die "no SSIM for $name"
      echo "$name $w $h $rest $v"; i=$((i + 1))
    else
      echo "$name $w $h $rest -"
    fi
  done <"$list"
}
say "SSIM of every video rung of (a) and (c) against the scaled source"
rungs "$out_a" >"$work/rungs-a"
rungs "$out_c" >"$work/rungs-c"
ssim "$work/rungs-a" >"$work/ssim-a"
ssim "$work/rungs-c" >"$work/ssim-c"

# --- report ---
bytes_a=$(tree_bytes "$out_a") bytes_a2=$(tree_bytes "$out_a2") bytes_b=$(tree_bytes "$out_b") bytes_c=$(tree_bytes "$out_c")
rt() { calc "$src_secs / $(wall "$1")" .2f; }
wall_ratio=$(calc "$(wall a) / $(wall b)" .3f)
bytes_ratio=$(calc "100 * $bytes_a / $bytes_c" .1f)
chap_cpu=$(calc "100 * ($(cpu a) - $(cpu a2)) / $(cpu a2)" +.1f)
min_ssim=$(awk '$2 > 0 { print $7, $1 }' "$work/ssim-a" | sort -n | head -n 1)
rt_a=$(rt a)
verdict() { python3 -c "print('yes' if $1 else '**no**')"; }
ffmpeg_version=$(ffmpeg -version | head -n 1 | awk '{ print $3 }')
lectern_version=$(cd "$root" && git describe --always --dirty 2>/dev/null || echo unknown)
cores=$(nproc)
mem=$(awk '/^MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)
# show LINE_FILE: a shell command line wrapped at 100 columns (an option stays with its value), with
# this run's paths shown as SRC and WORK.
show() {
  python3 - "$1" "$src" "$work" <<'PY'
import shlex, sys
args = shlex.split(open(sys.argv[1]).read())
args = [a.replace(sys.argv[2], "SRC").replace(sys.argv[3], "WORK") for a in args]
groups, cur = [], [args[0]]  # an option with its value, never split across lines
for a in args[1:]:
    if (a.startswith("-") and len(a) > 1 and not a[1].isdigit()) or len(cur) >= 2:
        groups.append(cur)
        cur = []
    cur.append(a)
groups.append(cur)
lines = [""]
for g in (" ".join(shlex.quote(a) for a in g) for g in groups):
    if lines[-1] and len(lines[-1]) + len(g) > 100:
        lines.append("")
    lines[-1] += (" " if lines[-1] else "") + g
print(" \\\n  ".join(lines))
PY
}

rung_table() { # SSIM_FILE
  echo "| rendition | resolution | bytes | average kb/s | SSIM (All) |"
  echo "|---|---|---|---|---|"
  while read -r name w h bytes kbps file v; do
    if [ "$w" -gt 0 ]; then res="${w}x${h}"; else res="audio"; fi
    [ "$v" = - ] || v=$(calc "$v" .4f)
    echo "| \`$name\` | $res | $bytes | $kbps | $v |"
  done <"$1"
}
run_row() { # LABEL NAME BYTES
  printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$1" "$(wall "$2")" "$(cpu "$2")" \
    "$(calc "$(cpu "$2") / $(wall "$2")" .2f)" "$3" "$(rt "$2")x" "$(other "$2")"
}

report() {
  cat <<EOF
$section

$(date -u +%F), lectern \`$lectern_version\`, ffmpeg $ffmpeg_version, $cores cores ($mem).
Command: \`bash bench/transcode.sh --write\` (or \`make bench-transcode\`). One run; the four jobs ran one
after another on the same source. Numbers from different runs are not comparable.

Source: \`bench/gen-lecture.sh\` — ${src_secs%.*} s of ${size} at ${src_fps%/1} fps: light slides (title, bullets,
a coloured chart) changing every 15 s, a 320x180 moving \`testsrc2\` "camera" inset bottom-right, espeak-ng
speech over quiet room noise, 48 kHz stereo; H.264 CRF 17 + AAC 192k, $src_bytes bytes.

- (a) \`lectern transcode SRC OUT\` (profile "lecture"); (a') the same with \`--chapters=false\`.
- (b) the one line \`lectern transcode --print-ffmpeg SRC OUT\` prints, run with bash in OUT: the same
  encode without lectern around it, so also without the lower priority lectern gives ffmpeg's helper
  threads (transcode/priority_linux.go) to keep its main thread on a core.
- (c) a fixed ladder, one ffmpeg command: 1080/720/480/360 at 5000/2800/1400/800 kb/s (\`-maxrate\`
  1.07x, \`-bufsize\` 1.5x), libx264 High \`-preset $preset\` (the preset (a) uses, read from its
  line), GOP 2 s, \`-sc_threshold 0\`, AAC 128k stereo muxed into every rung, fMP4 HLS 6 s segments.

Wall and CPU seconds (user+sys, children included) from GNU time; bytes are every file written. Each job
waited for an idle machine; "others' CPU" is what the rest of the machine used during the job (/proc/stat),
the check that nothing else skewed it.

| run | wall s | CPU s | CPU / wall | output bytes | x realtime | others' CPU s |
|---|---|---|---|---|---|---|
$(run_row "(a) \`lectern transcode\`" a "$bytes_a")
$(run_row "(a') \`--chapters=false\`" a2 "$bytes_a2")
$(run_row "(b) bare ffmpeg (lectern's line)" b "$bytes_b")
$(run_row "(c) fixed 4-rung ladder" c "$bytes_c")

| target | measured | met |
|---|---|---|
| wall (a) <= 1.05x wall (b) | ${wall_ratio}x | $(verdict "$wall_ratio <= 1.05") |
| bytes (a) <= 25% of bytes (c) | ${bytes_ratio}% | $(verdict "$bytes_ratio <= 25") |
| SSIM >= 0.97 on every rung of (a) | lowest $(calc "${min_ssim% *}" .4f) (\`${min_ssim#* }\`) | $(verdict "${min_ssim% *} >= 0.97") |
| (a) >= 2.5x realtime | ${rt_a}x | $(verdict "$rt_a >= 2.5") |
| chapter detection CPU <= 10% (a vs a') | ${chap_cpu}% | $(verdict "$chap_cpu <= 10") |

Renditions of (a): media bytes are init + segments; SSIM against the source scaled (bicubic) to the
rung's size, all frames.

$(rung_table "$work/ssim-a")

Renditions of (c) (every rung carries its own 128k audio, counted in its bytes):

$(rung_table "$work/ssim-c")

The line (a) runs, as \`--print-ffmpeg\` printed it (wrapped here; SRC and WORK stand for
this run's paths):

\`\`\`sh
$(show "$work/b.line")
\`\`\`

The fixed ladder (c), run in its output directory:

\`\`\`sh
$(show "$work/c.line")
\`\`\`
EOF
}
report >"$work/report.md"
cat "$work/report.md"

if [ "$write" = 1 ]; then
  doc=$root/docs/benchmarks.md
  # Replace our section (up to the next "## " heading) or append it; other sections stay as they are.
  python3 "$root/bench/write-section.py" "$doc" "$work/report.md" "$section"
  say "wrote the section to docs/benchmarks.md"
fi
