#!/usr/bin/env bash
# Edge memory against its bound: fill the memory tier three times over with distinct ~400 KB
# segments (16 clients at once), then report the process's resident memory (now and peak) against
# the target RSS <= 1.2 x --memory + 100 MB. The upstream is nginx serving one file; each request has
# its own query string, so each is its own cache entry. Loopback only, about a minute.
#   bash bench/edge-memory.sh            (MEMORY=256MiB ROUNDS=3 by default)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/bench/lib.sh"
say() { echo "edge-memory: $*" >&2; }
need_debs "nginx:command -v nginx" "curl:command -v curl"
memory_mib=${MEMORY_MIB:-256}
rounds=${ROUNDS:-3}
size=409600

work=$(mktemp -d); chmod 755 "$work"
cleanup() { kill "${edge_pid:-}" 2>/dev/null || true; [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
mkdir -p "$work/files"
head -c $size /dev/urandom >"$work/files/seg.m4s"
cat >"$work/nginx.conf" <<NG
worker_processes 1; user root; pid $work/nginx.pid; error_log $work/error.log;
events { worker_connections 1024; }
http { access_log off; sendfile on; keepalive_requests 100000;
  server { listen 127.0.0.1:18180; root $work/files;
    location / { add_header Cache-Control "public, max-age=31536000, immutable"; } } }
NG
nginx -c "$work/nginx.conf"

(cd "$root" && go build -o "$work/lectern" ./cmd/lectern)
"$work/lectern" edge --listen 127.0.0.1:18183 --upstream http://127.0.0.1:18180 --memory "${memory_mib}MiB" \
  --prefetch 0 --log-level warn &
edge_pid=$!
for _ in $(seq 50); do curl -fso /dev/null http://127.0.0.1:18183/healthz && break; sleep 0.1; done

bound=$((memory_mib * 1024 * 1024))
n=$(( (bound * rounds + size - 1) / size ))
say "fetching $n distinct segments of $size bytes ($rounds x the ${memory_mib} MiB memory tier)"
start=$(date +%s.%N)
seq "$n" | xargs -P16 -I{} curl -fso /dev/null "http://127.0.0.1:18183/seg.m4s?n={}"
took=$(echo "$(date +%s.%N) - $start" | bc)
rss_kib=$(awk '/^VmRSS/{print $2}' "/proc/$edge_pid/status")
hwm_kib=$(awk '/^VmHWM/{print $2}' "/proc/$edge_pid/status")
metric() { curl -fs http://127.0.0.1:18183/metrics | awk -v m="$1" '$1==m{printf "%d", $2}'; }
cache=$(metric lectern_edge_cache_bytes); evictions=$(metric lectern_edge_evictions_total)
fetches=$(metric lectern_edge_upstream_fetches_total)
target_mib=$(( memory_mib * 12 / 10 + 100 ))
echo "memory tier bound: ${memory_mib} MiB; filled with $n x $size B = $((n * size / 1048576)) MiB in ${took%????} s"
echo "upstream fetches: $fetches; evictions: $evictions; memory tier now: $((cache / 1048576)) MiB"
echo "RSS after the fill: $((rss_kib / 1024)) MiB; peak RSS: $((hwm_kib / 1024)) MiB; target: <= $target_mib MiB"
