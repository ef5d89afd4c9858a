#!/usr/bin/env bash
# Cache-hit throughput of Lectern's edge against the anchors (nginx files, nginx proxy_cache, Varnish),
# side by side in one run, all fronting the same HLS files served by nginx on 127.0.0.1:18080.
# Uses the team's shared anchor script (../shared/bench/edge-anchors.sh). Loopback only, bounded in time.
#   bench/edge-hit.sh            (CONNS=32 SECS=5 by default)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
anchors=${ANCHORS:-$root/../shared/bench/edge-anchors.sh}
[ -x "$anchors" ] || [ -f "$anchors" ] || { echo "edge-hit: $anchors not found" >&2; exit 1; }
for p in nginx varnish wrk ffmpeg; do
  command -v "$p" >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx varnish wrk ffmpeg >/dev/null; break; }
done
work=$(mktemp -d); chmod 755 "$work"
trap 'kill $edge_pid 2>/dev/null; rm -rf "$work"' EXIT

# A small two-rung fMP4 HLS tree laid out as the anchor script expects (/0/..., /3/...).
ffmpeg -hide_banner -loglevel error -f lavfi -i testsrc2=size=1280x720:rate=30:duration=12 \
  -filter_complex "[0:v]split=2[a][b];[b]scale=-2:360[c]" -map "[a]" -map "[c]" \
  -c:v libx264 -preset veryfast -g 60 -keyint_min 60 -sc_threshold 0 \
  -f hls -hls_time 6 -hls_playlist_type vod -hls_segment_type fmp4 \
  -hls_segment_filename "$work/%v/seg_%05d.m4s" -var_stream_map "v:0 v:1" "$work/%v/index.m3u8"
mv "$work/1" "$work/3"
# The issue's sizes: a ~400 KB segment (a 720p lecture at ~550 kb/s, 6 s) and a ~80 KB one (slides).
head -c 409600 /dev/urandom >"$work/0/seg400k.m4s"
head -c 81920 /dev/urandom >"$work/0/seg80k.m4s"

(cd "$root" && go build -o "$work/lectern" ./cmd/lectern)
"$work/lectern" edge --listen 127.0.0.1:18083 --upstream http://127.0.0.1:18080 --log-level warn &
edge_pid=$!
PATHS=${PATHS:-"/0/seg400k.m4s /0/seg80k.m4s /0/index.m3u8 /0/seg_00001.m4s /3/seg_00001.m4s"} \
  OURS=http://127.0.0.1:18083 bash "$anchors" "$work"
