#!/usr/bin/env bash
# Upload throughput of a 1 GiB lecture video sent over loopback with `lectern upload` (tus, default chunk
# size) against writing the same bytes straight to the same store, side by side in one run:
#   file storage:  (a) lectern upload FILE      vs  (b) cp FILE + fsync into a directory on the same
#                                                       file system as the data directory
#   S3 (MinIO):    (a) lectern upload FILE      vs  (b) minio-go PutObject of FILE (bench/putobject, the
#                                                       way `mc cp` stores a file)
# The server is `lectern ingest` (the API, tus endpoint and stores that `lectern serve` embeds, without
# serve's in-process transcode worker, which cannot be turned off and would transcode each 1 GiB upload
# on the same two cores during the next measurements). (a) is timed from the command's start until it
# exits, which is after the final PATCH's response: that response comes only once the server has
# validated the file (ffprobe) and queued the lecture, so "upload done" includes them. Each lecture is
# then checked to be "queued". Every measurement runs RUNS times (3), (a) and (b) interleaved with their
# order alternating; the report gives medians and the spread. (a) is also measured in every run with a
# smaller and a larger --chunk-size. MinIO is started on loopback by the script (as scripts/test-services.sh does).
# Prints a Markdown section; with --write (or WRITE=1) it also replaces the section
# "## Upload: tus through lectern vs a plain write to the store" in docs/benchmarks.md.
#
#   bench/upload.sh [--write]
# Environment: LECTERN (a prebuilt binary instead of `go build`), MEDIA (the 1 GiB MP4; generated once
# with ffmpeg into BENCH_CACHE, default ${TMPDIR:-/tmp}/lectern-bench, and reused), RUNS (3),
# SMALL_CHUNK / LARGE_CHUNK (bytes, 16 MiB / 256 MiB), IDLE_WAIT (longest wait for an idle machine
# before each measurement, 30 s), OTHERS_MAX (CPU s other processes may use during a measurement before
# it is repeated, 1.0), ATTEMPTS (3), BUDGET (seconds of measuring after which nothing is waited for or
# repeated, 420), PREFAULT (1: write and free 1.5 GiB of tmpfs before each measurement; 0: don't),
# JOB_TIMEOUT (seconds per measurement, 300), MINIO_BIN.
# Needs about 6 GiB free on the temp file system (the 1 GiB file, the stores, the part spool).
set -euo pipefail

section="## Upload: tus through lectern vs a plain write to the store"
. "$(dirname "$0")/lib.sh"
parse_write "$0" "$@"
runs=${RUNS:-3}
small_chunk=${SMALL_CHUNK:-$((16 << 20))}
large_chunk=${LARGE_CHUNK:-$((256 << 20))}
job_timeout=${JOB_TIMEOUT:-300}
root=$(cd "$(dirname "$0")/.." && pwd)
gib=$((1 << 30))

say() { echo "upload-bench: $*" >&2; }
die() { say "$*"; exit 1; }

need_debs "ffmpeg:command -v ffmpeg && command -v ffprobe" "time:[ -x /usr/bin/time ]" "curl:command -v curl"
command -v python3 >/dev/null || die "python3 is required (JSON and arithmetic)"
minio=${MINIO_BIN:-$(go env GOPATH)/bin/minio}
[ -x "$minio" ] || die "MinIO server not found at $minio (run: make deps-test)"

work=$(mktemp -d "${TMPDIR:-/tmp}/lectern-upload-bench.XXXXXX")
chmod 755 "$work"
pids=()
cleanup() {
  set +e
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$work" "${prefault:-}"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- build (not measured) ---
lectern_version=$(cd "$root" && git describe --always --dirty 2>/dev/null || echo unknown) # what is built
if [ -n "${LECTERN:-}" ]; then
  lectern=$LECTERN
  say "using $lectern"
else
  say "building lectern"
  (cd "$root" && go build -o "$work/lectern" ./cmd/lectern)
  lectern=$work/lectern
fi
(cd "$root" && go build -o "$work/putobject" ./bench/putobject)

# --- the 1 GiB lecture, made once (not measured) ---
# A 4 s 1080p30 clip with film grain (noise) encoded by x264 at CRF 12 (~400 Mb/s) plus a 128k AAC tone,
# stream-copied in a loop up to 1 GiB (-fs), index first (+faststart): a valid MP4 the server accepts.
valid_media() { # FILE: at least 1 GiB and probes with a video stream
  [ -f "$1" ] && [ "$(stat -c %s "$1")" -ge "$gib" ] &&
    [ "$(ffprobe -v error -select_streams v:0 -show_entries stream=codec_type -of csv=p=0 "$1" 2>/dev/null)" = video ]
}
cache=${BENCH_CACHE:-${TMPDIR:-/tmp}/lectern-bench}
media=${MEDIA:-$cache/upload-1GiB.mp4}
if ! valid_media "$media"; then
  [ -z "${MEDIA:-}" ] || die "MEDIA=$media is not an MP4 of at least 1 GiB"
  say "generating $media (1 GiB, once)"
  mkdir -p "$cache"
  gen=$(mktemp -d "$cache/gen.XXXXXX")
  ffmpeg -hide_banner -nostdin -y -loglevel error \
    -f lavfi -i "testsrc2=size=1920x1080:rate=30,noise=alls=30:allf=t" \
    -f lavfi -i "sine=frequency=440:sample_rate=48000" -t 4 \
    -c:v libx264 -preset ultrafast -crf 12 -g 60 -pix_fmt yuv420p -c:a aac -b:a 128k "$gen/clip.mp4"
  ffmpeg -hide_banner -nostdin -y -loglevel error -stream_loop -1 -i "$gen/clip.mp4" \
    -c copy -fs "$gib" -movflags +faststart "$gen/big.mp4"
  mv "$gen/big.mp4" "$media"
  rm -rf "$gen"
  valid_media "$media" || die "generated $media is not a valid 1 GiB MP4"
fi
media_bytes=$(stat -c %s "$media")
media_secs=$(ffprobe -v error -show_entries format=duration -of default=nw=1:nk=1 "$media")
media_kbps=$(ffprobe -v error -show_entries format=bit_rate -of default=nw=1:nk=1 "$media")
media_fs=$(df --output=source "$media" | tail -n 1)
[ "$(df --output=source "$work" | tail -n 1)" = "$media_fs" ] || say "note: $media and $work are on different file systems"

# --- servers: MinIO, and one lectern ingest per store ---
freeport() {
  local p
  while :; do
    p=$((20000 + RANDOM % 30000))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
}
waitport() { # port what log
  for _ in $(seq 1 150); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.2
  done
  tail -n 20 "$3" >&2
  die "$2 did not start on 127.0.0.1:$1"
}

s3_key=lectern s3_secret=lectern-secret-key s3_bucket=lectern-bench
s3port=$(freeport)
mkdir -p "$work/minio"
MINIO_ROOT_USER=$s3_key MINIO_ROOT_PASSWORD=$s3_secret MINIO_BROWSER=off \
  "$minio" server --quiet --address "127.0.0.1:$s3port" "$work/minio" >"$work/minio.log" 2>&1 &
minio_pid=$!
pids+=("$minio_pid")
waitport "$s3port" MinIO "$work/minio.log"
s3_url="s3://$s3_bucket?endpoint=127.0.0.1:$s3port&access_key=$s3_key&secret_key=$s3_secret&secure=false&region=us-east-1&create=true"

declare -A port pid token
for store in file s3; do
  d=$work/$store
  mkdir -p "$d/tmp"
  storage="file://$d/objects"
  [ "$store" = s3 ] && storage=$s3_url
  token[$store]=$("$lectern" teacher add "bench-$store" --db "sqlite://$d/lectern.db" 2>"$d/teacher.log") ||
    { cat "$d/teacher.log" >&2; die "teacher add failed"; }
  port[$store]=$(freeport)
  "$lectern" ingest --listen "127.0.0.1:${port[$store]}" --db "sqlite://$d/lectern.db" --storage "$storage" \
    --tmp "$d/tmp" --log-level info >"$work/$store.log" 2>&1 &
  pid[$store]=$!
  pids+=("${pid[$store]}")
  waitport "${port[$store]}" "lectern ingest ($store)" "$work/$store.log"
done
mkdir -p "$work/file/copy" "$work/state"
prefault=/dev/shm/lectern-upload-bench.$$
export LECTERN_STATE_DIR=$work/state # lectern upload's resume state: not the user's

# --- measuring ---
hz=$(getconf CLK_TCK)
busy_ticks() { awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat; }
# proc_ticks PID: CPU the process and its waited-for children (ffprobe) have used, in clock ticks.
proc_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 + $14 + $15 }'; }
wait_idle() { # until other processes use < 10% of a core over 2 s (at most IDLE_WAIT s, within the budget)
  local deadline=$((SECONDS + ${IDLE_WAIT:-30})) t0 t1 pct
  ((deadline <= budget_end)) || deadline=$budget_end
  while :; do
    t0=$(busy_ticks); sleep 2; t1=$(busy_ticks)
    pct=$(((t1 - t0) * 100 / (2 * hz)))
    [ "$pct" -lt 10 ] && return 0
    [ $SECONDS -ge $deadline ] && { say "machine still busy (${pct}% of a core); measuring anyway"; return 0; }
    say "waiting for an idle machine (other processes use ${pct}% of a core)"
  done
}
calc() { python3 -c "print(format($1, '$2'))"; }

# measure NAME STORE AFTER CMD...: runs CMD after a sync and an idle wait, then AFTER NAME STORE (checks
# and clean-up, not timed). Appends to $work/results "NAME wall_s client_cpu_s server_cpu_s minio_cpu_s
# others_cpu_s attempts calibration_ms": server is STORE's lectern ingest (with its ffprobe children),
# MinIO the MinIO server, others what the rest of the machine (other processes, the kernel's own
# threads) used meanwhile, calibration_ms how long md5sum took over 64 MiB just before. When others
# exceed OTHERS_MAX CPU s (1.0), the measurement is repeated, up to ATTEMPTS times (3) while the run's
# time budget (BUDGET s of measuring, 420) lasts; the last attempt is kept.
measure() {
  local name=$1 store=$2 after=$3 t0 t1 b0 b1 s0 s1 m0 m1 c0 c1 line attempt; shift 3
  for ((attempt = 1; ; attempt++)); do
    sync
    wait_idle
    # This VM's kernel pages out idle page cache within seconds (DAMON "pageout"): read the file back
    # in just before, so that every measurement starts with it cached.
    cat "$media" >/dev/null
    # A check on the host's speed (steal time is not reported here): the same work, timed each time.
    c0=$(date +%s%N); head -c $((64 << 20)) /dev/zero | md5sum >/dev/null; c1=$(date +%s%N)
    if [ "${PREFAULT:-1}" = 1 ]; then
      # This VM hands freed memory back to its host; touching it again then costs a host fault per page,
      # charged to whichever process writes next. Write 1.5 GiB to tmpfs and free it: the measurement
      # then mostly gets pages that are backed.
      head -c $((1536 << 20)) /dev/zero >"$prefault" && rm -f "$prefault"
    fi
    say "measuring $name (attempt $attempt): $(printf '%q ' "$@" | cut -c1-110)"
    b0=$(busy_ticks) s0=$(proc_ticks "${pid[$store]}") m0=$(proc_ticks "$minio_pid")
    t0=$(date +%s%N)
    if ! /usr/bin/time -f '%U %S' -o "$work/rusage" timeout "$job_timeout" "$@" >"$work/out" 2>"$work/err"; then
      tail -n 20 "$work/err" >&2
      die "$name failed"
    fi
    t1=$(date +%s%N)
    b1=$(busy_ticks) s1=$(proc_ticks "${pid[$store]}") m1=$(proc_ticks "$minio_pid")
    line=$(tail -n 1 "$work/rusage" | awk -v w="$(((t1 - t0) / 1000000))" -v b="$((b1 - b0))" -v s="$((s1 - s0))" \
      -v m="$((m1 - m0))" -v hz="$hz" '{
        c = $1 + $2; srv = s / hz; mn = m / hz; o = b / hz - c - srv - mn
        printf "%.3f %.2f %.2f %.2f %.2f", w / 1000, c, srv, mn, (o > 0 ? o : 0) }')
    say "  $line (wall, client, server, MinIO, others' CPU s)"
    "$after" "$name" "$store"
    python3 -c "import sys; sys.exit(0 if ${line##* } <= ${OTHERS_MAX:-1.0} else 1)" && break
    ((attempt < ${ATTEMPTS:-3} && SECONDS < budget_end)) || { say "$name: keeping a measurement disturbed by others"; break; }
  done
  echo "$name $line $attempt $(((c1 - c0) / 1000000))" >>"$work/results"
}

api() { # STORE METHOD PATH
  curl -fsS -X "$2" -H "Authorization: Bearer ${token[$1]}" "http://127.0.0.1:${port[$1]}$3"
}

# upload_a NAME STORE [--chunk-size N]: (a); after each attempt the lecture must be "queued", and is deleted.
upload_a() {
  local name=$1 store=$2; shift 2
  measure "$name" "$store" after_upload "$lectern" upload "$media" --title "$name" --course bench \
    --server "http://127.0.0.1:${port[$store]}" --token "${token[$store]}" "$@"
}
after_upload() { # NAME STORE
  local id status secs
  id=$(awk '$1 == "lecture" { print $2; exit }' "$work/out")
  [ -n "$id" ] || { cat "$work/out" "$work/err" >&2; die "$1: lectern upload printed no lecture id"; }
  status=$(api "$2" GET "/api/v1/lectures/$id" | python3 -c 'import json, sys; print(json.load(sys.stdin)["status"])')
  [ "$status" = queued ] || die "$1: lecture $id is $status, want queued"
  # The server's own account: from the upload's creation to its finish (validation and queueing included).
  secs=$(grep 'upload complete' "$work/$2.log" | grep -F "$id" | sed -n 's/.*seconds=\([0-9.]*\).*/\1/p' | tail -n 1)
  [ -z "$secs" ] || secs=$(calc "$secs" .2f)
  sed -i "/^$1 /d" "$work/server-seconds"
  echo "$1 ${secs:--}" >>"$work/server-seconds"
  api "$2" DELETE "/api/v1/lectures/$id" >/dev/null
}
remove_copy() { rm -f "$work/file/copy/$1.mp4"; } # NAME STORE
remove_object() { :; } # NAME STORE: the next attempt overwrites the object; MinIO's data goes at exit
copy_b() { # NAME: (b) for file storage
  measure "$1" file remove_copy bash -c 'cp "$1" "$2" && sync "$2"' _ "$media" "$work/file/copy/$1.mp4"
}
copy_b0() { # NAME: cp without fsync, for reference
  measure "$1" file remove_copy cp "$media" "$work/file/copy/$1.mp4"
}
put_b() { # NAME: (b) for S3
  measure "$1" s3 remove_object "$work/putobject" -endpoint "127.0.0.1:$s3port" -access-key "$s3_key" \
    -secret-key "$s3_secret" -bucket "$s3_bucket" -key "bench/$1" "$media"
}

: >"$work/results"
: >"$work/server-seconds"
budget_end=$((SECONDS + ${BUDGET:-420}))
# One run = every measurement once; the order is reversed in every other run, so that (a) and (b) see
# the same conditions on average.
steps=(
  "upload_a file-a file" "copy_b file-b" "copy_b0 file-b0"
  "upload_a file-small file --chunk-size $small_chunk" "upload_a file-large file --chunk-size $large_chunk"
  "upload_a s3-a s3" "put_b s3-b"
  "upload_a s3-small s3 --chunk-size $small_chunk" "upload_a s3-large s3 --chunk-size $large_chunk"
)
for ((i = 1; i <= runs; i++)); do
  order=("${!steps[@]}")
  ((i % 2)) || order=($(printf '%s\n' "${order[@]}" | tac))
  for k in "${order[@]}"; do
    read -r fn name rest <<<"${steps[$k]}"
    # shellcheck disable=SC2086 # rest holds the store and flags, split on purpose
    $fn "$name-$i" $rest
  done
done

# --- report ---
# col NAME N: field N of NAME's result (1 wall, 2 client CPU, 3 server CPU, 4 MinIO CPU, 5 others' CPU)
col() { awk -v n="$1" -v c="$2" '$1 == n { print $(c + 1) }' "$work/results"; }
# stat PREFIX N FMT: "median min max" of field N over the runs PREFIX-1..RUNS
stats() {
  local vals=() i
  for ((i = 1; i <= runs; i++)); do vals+=("$(col "$1-$i" "$2")"); done
  python3 -c "import statistics, sys; v = sorted(float(x) for x in sys.argv[1:]); print(statistics.median(v), v[0], v[-1])" "${vals[@]}"
}
mbps() { calc "$media_bytes / $1 / 1e6" .0f; }
median() { stats "$1" "$2" | cut -d' ' -f1; }
runs_list() { # PREFIX: the runs' walls, "4.12, 4.30, 4.25"
  local out=() i
  for ((i = 1; i <= runs; i++)); do out+=("$(calc "$(col "$1-$i" 1)" .2f)"); done
  (IFS=,; echo "${out[*]}" | sed 's/,/, /g')
}
spread() { # PREFIX: (max-min)/median in %
  read -r m lo hi < <(stats "$1" 1)
  calc "100 * ($hi - $lo) / $m" .0f
}
server_secs() { # PREFIX: median of the server's "upload complete" seconds over the runs
  local vals=() i
  for ((i = 1; i <= runs; i++)); do vals+=("$(awk -v n="$1-$i" '$1 == n { print $2 }' "$work/server-seconds")"); done
  python3 -c "import statistics, sys; v = [float(x) for x in sys.argv[1:] if x != '-']; print(format(statistics.median(v), '.2f') if v else '-')" "${vals[@]}"
}
cores_busy() { # PREFIX: median over the runs of all CPU used on the machine / wall, in cores
  awk -v p="$1-" 'index($1, p) == 1 && $1 ~ /-[0-9]+$/ { print ($3 + $4 + $5 + $6) / $2 }' "$work/results" |
    sort -n | awk '{ v[NR] = $1 } END { printf "%.2f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
row() { # LABEL PREFIX STORE
  local w; w=$(median "$2" 1)
  local minio_cpu=-
  [ "$3" = s3 ] && minio_cpu=$(calc "$(median "$2" 4)" .1f)
  local srv=-
  case $2 in *-a) srv=$(calc "$(median "$2" 3)" .1f) ;; esac
  printf '| %s | %s | %s | %s | %s%% | %s | %s | %s | %s | %s |\n' "$1" "$(runs_list "$2")" "$(calc "$w" .2f)" \
    "$(mbps "$w")" "$(spread "$2")" "$(calc "$(median "$2" 2)" .1f)" "$srv" "$minio_cpu" "$(calc "$(median "$2" 5)" .1f)" \
    "$(cores_busy "$2")"
}
ratio() { calc "$(median "$2" 1) / $(median "$1" 1)" .2f; } # A B: throughput (a)/(b) = wall b / wall a
best_ratio() { # A B: the same from the fastest run of each
  calc "$(stats "$2" 1 | cut -d' ' -f2) / $(stats "$1" 1 | cut -d' ' -f2)" .2f
}
verdict() { python3 -c "print('yes' if $1 else '**no**')"; }
chunk_row() { # STORE LABEL PREFIX CHUNK: medians over the runs
  printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$1" "$2" "$(( (media_bytes + $4 - 1) / $4 ))" "$(runs_list "$3")" \
    "$(calc "$(median "$3" 1)" .2f)" "$(mbps "$(median "$3" 1)")" "$(calc "$(median "$3" 3)" .1f)" "$(server_secs "$3")"
}
calibration() { awk '{ print $8 }' "$work/results" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] " (" v[1] "-" v[NR] ")" }'; }
retries() { awk '$7 > 1 { n += $7 - 1 } END { print n + 0 }' "$work/results"; }
mib() { echo "$(($1 >> 20)) MiB"; }
default_chunk=$("$lectern" upload -h 2>&1 | sed -n '/--chunk-size/,/default/ s/.*(default "\([0-9]*\)").*/\1/p' | head -n 1)
[ -n "$default_chunk" ] || die "could not read --chunk-size's default from lectern upload -h"
cores=$(nproc)
mem=$(awk '/^MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)
fs_type=$(df --output=fstype "$work" | tail -n 1)
ratio_file=$(ratio file-a file-b) ratio_s3=$(ratio s3-a s3-b) ratio_file0=$(ratio file-a file-b0)

prefault_note=""
[ "${PREFAULT:-1}" = 1 ] && prefault_note="
This VM hands freed memory back to its host, and whoever touches those pages next pays a host fault for
each: just before every measurement the script writes 1.5 GiB to tmpfs and frees it, so that the
measurement's writes mostly land on backed pages (without it, one \`cp\` of the same gigabyte took
0.36 s to 1.96 s within a run)."
report() {
  cat <<EOF
$section

$(date -u +%F), lectern \`$lectern_version\`, MinIO \`$("$minio" --version 2>/dev/null | head -n 1 | awk '{ print $3 }')\`, $cores cores ($mem), temp
file system $fs_type on \`$media_fs\`. Command: \`bash bench/upload.sh --write\` (or \`make bench-upload\`), loopback
only. One invocation makes $runs runs, each measuring everything below once, one thing at a time, in an
order reversed every other run; each measurement after a \`sync\` and a wait for an idle machine. Figures
from different invocations are not comparable.
$prefault_note

The file: $media_bytes bytes, $(calc "$media_secs" .1f) s of 1080p30 H.264 with film grain at $(calc "$media_kbps / 1e6" .0f) Mb/s + AAC (an x264 clip
stream-copied in a loop), read into the page cache right before every measurement (this VM's kernel pages
idle cache out within seconds). MB/s are 10^6 bytes per second of wall time.

- (a) \`lectern upload FILE --title T --course C --server http://127.0.0.1:PORT --token TOKEN\` (tus, default
  \`--chunk-size\` $(mib "$default_chunk")) against \`lectern ingest\` on loopback, SQLite catalog. Timed from the command's start
  to its exit, which follows the final PATCH's response: the server sends it only after validating the file
  (ffprobe) and queueing the lecture, so that is included; every lecture was then "queued". The server is
  \`lectern ingest\`, the part of \`lectern serve\` that takes uploads, because serve's in-process worker (it
  cannot be switched off) would transcode each upload during the following measurements.
- (b) the same bytes written straight to the store: file storage, \`cp FILE DIR/ && sync DIR/FILE\` (fsync)
  into a directory on the data directory's file system; S3, \`bench/putobject\` (minio-go v7 \`PutObject\`
  of the open file, as \`mc cp\` does: minio-go's default 16 MiB parts, 4 in flight, which is also what
  Lectern's objstore s3 driver uses for a Put of known size). (b0) is \`cp\` without the fsync.

Walls in seconds; CPU seconds are medians: "client" is the measured command (GNU time), "server" the
\`lectern ingest\` process with its ffprobe children, "MinIO" the MinIO server, "others" the rest of the
machine meanwhile (/proc/stat, kernel threads included), the check that nothing else skewed it: a
measurement during which others used more than ${OTHERS_MAX:-1.0} CPU s was repeated (up to ${ATTEMPTS:-3} attempts; $(retries)
repeated). Spread is (max - min) / median; "cores busy" is all of that CPU over the wall time (median of
the runs), out of $cores. Host speed: before every measurement \`md5sum\` of 64 MiB took $(calibration) ms
(median, min-max; the same work taking longer means a slower host at that moment).

| store | run | wall s (runs) | median wall s | MB/s | spread | client CPU s | server CPU s | MinIO CPU s | others' CPU s | cores busy |
|---|---|---|---|---|---|---|---|---|---|---|
$(row "file | (a) \`lectern upload\`" file-a file)
$(row "file | (b) \`cp\` + fsync" file-b file)
$(row "file | (b0) \`cp\`, no fsync" file-b0 file)
$(row "MinIO | (a) \`lectern upload\`" s3-a s3)
$(row "MinIO | (b) minio-go \`PutObject\`" s3-b s3)

| target | measured (medians) | met | fastest runs only |
|---|---|---|---|
| file storage: throughput (a) >= 0.8x (b) | ${ratio_file}x (${ratio_file0}x of (b0)) | $(verdict "$ratio_file >= 0.8") | $(best_ratio file-a file-b)x ($(best_ratio file-a file-b0)x of (b0)) |
| MinIO: throughput (a) >= 0.8x (b) | ${ratio_s3}x | $(verdict "$ratio_s3 >= 0.8") | $(best_ratio s3-a s3-b)x |

Slowdowns on this VM hit one measurement at a time and only ever add time, so the last column, the
ratio of the fastest run of (a) to the fastest of (b), is the steadier figure when the spread is large.

The server's own account of (a) (its "upload complete" log line: from the tus creation to the
finished validation and queueing), median: file $(server_secs file-a) s, MinIO $(server_secs s3-a) s.

(a) with an explicit \`--chunk-size\`, measured in the same runs (PATCHes: requests carrying data; medians;
"server's s" is the server's own account as above):

| store | \`--chunk-size\` | PATCHes | wall s (runs) | median wall s | MB/s | server CPU s | server's s |
|---|---|---|---|---|---|---|---|
$(chunk_row file "$(mib "$small_chunk")" file-small "$small_chunk")
$(chunk_row file "$(mib "$default_chunk") (default, from above)" file-a "$default_chunk")
$(chunk_row file "$(mib "$large_chunk")" file-large "$large_chunk")
$(chunk_row MinIO "$(mib "$small_chunk")" s3-small "$small_chunk")
$(chunk_row MinIO "$(mib "$default_chunk") (default, from above)" s3-a "$default_chunk")
$(chunk_row MinIO "$(mib "$large_chunk")" s3-large "$large_chunk")
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
