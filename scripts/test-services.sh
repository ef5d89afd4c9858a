#!/usr/bin/env bash
# Starts the real servers the tests need on loopback (MinIO, PostgreSQL), runs the command given as
# arguments with LECTERN_TEST_* variables pointing at them, then stops the servers and removes their data.
#   scripts/test-services.sh go test ./...
# An already running PostgreSQL can be used instead: set LECTERN_TEST_POSTGRES_URL before calling.
set -euo pipefail

work=$(mktemp -d /tmp/lectern-test-services.XXXXXX)
chmod 755 "$work"
pids=()
pgdata=""
cleanup() {
  set +e
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  if [ -n "$pgdata" ]; then runuser -u postgres -- "$pgbin/pg_ctl" -D "$pgdata" -m fast -w stop >/dev/null 2>&1; fi
  wait 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# Below the kernel's ephemeral range: a port there can be the local end of some test's connection,
# which no probe sees but which makes the server's bind fail ("address already in use").
ephemeral_lo=$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
freeport() { # a loopback port nothing listens on
  local p
  while :; do
    p=$((10000 + RANDOM % (ephemeral_lo - 10000)))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
}

waitport() { # host port what
  for _ in $(seq 1 150); do
    if (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; then return 0; fi
    sleep 0.2
  done
  echo "test-services: $3 did not start on $1:$2; its log:" >&2
  cat "$4" >&2 || true
  exit 1
}

# --- MinIO -------------------------------------------------------------------------------------------
minio=${MINIO_BIN:-$(go env GOPATH)/bin/minio}
if [ ! -x "$minio" ]; then
  echo "test-services: MinIO server not found at $minio (run: make deps-test)" >&2
  exit 1
fi
s3port=$(freeport)
mkdir -p "$work/minio"
MINIO_ROOT_USER=lectern MINIO_ROOT_PASSWORD=lectern-secret-key MINIO_BROWSER=off \
  "$minio" server --quiet --address "127.0.0.1:$s3port" "$work/minio" >"$work/minio.log" 2>&1 &
pids+=($!)
waitport 127.0.0.1 "$s3port" MinIO "$work/minio.log"
export LECTERN_TEST_S3_URL="s3://?endpoint=127.0.0.1:$s3port&access_key=lectern&secret_key=lectern-secret-key&secure=false&region=us-east-1"

# --- PostgreSQL --------------------------------------------------------------------------------------
if [ -z "${LECTERN_TEST_POSTGRES_URL:-}" ]; then
  pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  if [ -z "$pgbin" ]; then
    echo "test-services: PostgreSQL server not installed (run: make deps-test)" >&2
    exit 1
  fi
  pgport=$(freeport)
  pgdata="$work/pg"
  mkdir -p "$pgdata"
  runas=()
  if [ "$(id -u)" = 0 ]; then chown postgres "$pgdata"; runas=(runuser -u postgres --); fi
  "${runas[@]}" "$pgbin/initdb" -D "$pgdata" -U lectern --auth=trust -E UTF8 >"$work/initdb.log" 2>&1 || { cat "$work/initdb.log" >&2; exit 1; }
  "${runas[@]}" "$pgbin/pg_ctl" -D "$pgdata" -w -l "$pgdata/log" \
    -o "-c listen_addresses=127.0.0.1 -p $pgport -k $pgdata -c fsync=off -c max_connections=200" start >/dev/null \
    || { cat "$pgdata/log" >&2; exit 1; }
  export LECTERN_TEST_POSTGRES_URL="postgres://lectern@127.0.0.1:$pgport/postgres?sslmode=disable"
fi

export LECTERN_TEST_REQUIRE_SERVICES=1
echo "test-services: MinIO on ${LECTERN_TEST_S3_URL#*endpoint=}; PostgreSQL at ${LECTERN_TEST_POSTGRES_URL}" | sed 's/&access_key.*;/;/'
"$@"
