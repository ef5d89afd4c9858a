#!/usr/bin/env bash
# Time to first frame of the student player in headless Chromium over loopback (issue 7: cold edge
# cache < 1 s, warm < 300 ms, median of 5), with nginx serving the same published HLS files to a bare
# hls.js page as the anchor. Builds lectern and bench/ttff, makes a lecture with bench/gen-lecture.sh
# (cached under $TMPDIR/lectern-bench, it is deterministic), then bench/ttff starts ingest, worker,
# origin, one edge and the router as separate processes on 127.0.0.1:18300-18304 (nginx on 18305),
# uploads and transcodes the lecture, and runs RUNS rounds of cold edge / warm edge / anchor, each in a
# fresh Chromium with a fresh profile. Prints a Markdown section; with --write (or WRITE=1) it also
# replaces the section "## Time to first frame" in docs/benchmarks.md. About 1-2 minutes on 2 cores (the
# transcode is half of it); everything is killed on exit, and bench/ttff gives up after TIMEOUT.
#
#   bench/ttff.sh [--write]
# Environment: RUNS (5), SECS (60: the lecture's length), SIZE (1920x1080), TIMEOUT (20m), NGINX (1; 0
# skips the anchor), LECTERN (a prebuilt binary instead of `go build`), KEEP (1: keep the work directory
# with the roles' logs).
set -euo pipefail

section="## Time to first frame"
. "$(dirname "$0")/lib.sh"
parse_write "$0" "$@"
root=$(cd "$(dirname "$0")/.." && pwd)
runs=${RUNS:-5}
secs=${SECS:-60}
size=${SIZE:-1920x1080}

say() { echo "ttff-bench: $*" >&2; }
die() { say "$*"; exit 1; }

need_debs "ffmpeg:command -v ffmpeg && command -v ffprobe" "nginx:command -v nginx" \
  "chromium:command -v chromium || command -v chromium-browser || command -v google-chrome"
[ -f "$root/internal/web/node_modules/hls.js/dist/hls.min.js" ] || (cd "$root" && make web)

work=$(mktemp -d "${TMPDIR:-/tmp}/lectern-ttff-bench.XXXXXX")
bench_pid=""
cleanup() {
  set +e
  [ -z "$bench_pid" ] || { kill "$bench_pid" 2>/dev/null; wait "$bench_pid" 2>/dev/null; }
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

build_lectern "$root" "$work"
(cd "$root" && go build -o "$work/ttff" ./bench/ttff)

cached_lecture "$root" "$work" "$secs" "$size"

nginx_flag=true
[ "${NGINX:-1}" = 1 ] || nginx_flag=false
keep_flag=false
[ "${KEEP:-0}" = 1 ] && keep_flag=true
# In the background and waited for, so that the INT/TERM trap runs at once and stops it (it then
# stops the roles, nginx and Chromium it started, which also die with it).
"$work/ttff" -lectern "$lectern" -assets "$root/internal/web/node_modules" -clip "$clip" -runs "$runs" \
  -nginx="$nginx_flag" -keep="$keep_flag" -timeout "${TIMEOUT:-20m}" -version "$lectern_version" \
  -command "bash bench/ttff.sh --write" -md "$work/report.md" &
bench_pid=$!
wait "$bench_pid" || die "bench/ttff failed"
bench_pid=""

if [ "$write" = 1 ]; then
  python3 "$root/bench/write-section.py" "$root/docs/benchmarks.md" "$work/report.md" "$section"
  say "wrote the section to docs/benchmarks.md (add a reading by hand)"
fi
