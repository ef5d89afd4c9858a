#!/usr/bin/env bash
# Router decisions per second over loopback HTTP: `lectern router` on one core (GOMAXPROCS=1, pinned
# to CPU 0) with 186 edges in the twelve default regions (15-16 each, weights 1-3, a /16 of clients
# each), wrk on the other core asking for 1000 lectures from clients spread over the regions
# (X-Forwarded-For from a trusted 127.0.0.1). The edges' /readyz are files served by python3's
# http.server, probed once at start (--probe-interval 1h: a router pegged at 100% of its one core
# answers probes late, and edges it took out would shrink the work per decision). Prints wrk's
# summary; ~15 s.
#   bench/router-http.sh            (CONNS=32 SECS=5 by default)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; rm -rf "$work"' EXIT

regions=(seoul busan-ulsan daegu-gangwon incheon-chungbuk gwangju-daejeon gyeonggi-elementary-1
  gyeonggi-elementary-2 gyeonggi-middle-overseas-general gyeongnam gyeongbuk-jeju sejong-chungnam jeonbuk-jeonnam)
{
  echo '{"default": "seoul", "regions": {'
  n=0
  for i in "${!regions[@]}"; do
    per=$((186 / 12 + (i < 186 % 12 ? 1 : 0)))
    edges=()
    for ((k = 0; k < per; k++)); do
      mkdir -p "$work/www/e$n" && touch "$work/www/e$n/readyz"
      edges+=("{\"url\": \"http://127.0.0.1:18090/e$n\", \"weight\": $((1 + n % 3))}")
      n=$((n + 1))
    done
    sep=,; [ "$i" -eq 11 ] && sep=
    next=${regions[$(((i + 1) % 12))]}
    echo "\"${regions[$i]}\": {\"edges\": [$(IFS=,; echo "${edges[*]}")], \"prefixes\": [\"10.$((100 + i)).0.0/16\"], \"neighbours\": [\"$next\"]}$sep"
  done
  echo '}}'
} >"$work/regions.json"

(cd "$work/www" && exec python3 -m http.server 18090 --bind 127.0.0.1 >/dev/null 2>&1) &
pids+=($!)
(cd "$root" && go build -o "$work/lectern" ./cmd/lectern)
GOMAXPROCS=1 taskset -c 0 "$work/lectern" router --listen 127.0.0.1:18095 --regions "$work/regions.json" \
  --trust-forwarded-for 127.0.0.1 --probe-interval 1h --log-level warn &
pids+=($!)
for _ in $(seq 100); do curl -fso /dev/null http://127.0.0.1:18095/readyz && break; sleep 0.1; done
cat >"$work/spread.lua" <<'LUA'
local n = 0
request = function()
  n = n + 1
  local path = string.format("/hls/lec-%06d/v1/master.m3u8", n % 1000)
  local xff = string.format("10.%d.%d.%d", 100 + n % 12, math.floor(n / 256) % 256, n % 256)
  return wrk.format("GET", path, {["X-Forwarded-For"] = xff})
end
LUA
curl -s -o /dev/null -w 'sample: %{http_code} %{redirect_url}\n' -H 'X-Forwarded-For: 10.104.0.1' http://127.0.0.1:18095/hls/lec-000001/v1/master.m3u8
taskset -c 1 wrk -t1 -c"${CONNS:-32}" -d"${SECS:-5}s" -s "$work/spread.lua" http://127.0.0.1:18095/
curl -s http://127.0.0.1:18095/metrics | grep -E '^lectern_router_(spills|fallbacks|no_edge)_total|^lectern_router_unhealthy_edges\{region="seoul"\}'
