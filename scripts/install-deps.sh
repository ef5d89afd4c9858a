#!/usr/bin/env bash
# Installs what a fresh Debian machine with Go needs, and nothing that is already there.
#   install-deps.sh run    ffmpeg (the worker's transcoder) and npm packages' prerequisites
#   install-deps.sh test   the above plus PostgreSQL, Chromium (player tests) and a MinIO server (go install)
#   install-deps.sh minio  only the MinIO server (for bench/scale.sh)
set -euo pipefail
what=${1:-run}

sudo_=()
[ "$(id -u)" = 0 ] || sudo_=(sudo)
apt_updated=""
apt_install() { # packages...
  local missing=()
  for p in "$@"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "install-deps: installing ${missing[*]}"
  if [ -z "$apt_updated" ]; then "${sudo_[@]}" apt-get update -qq; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive "${sudo_[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

install_minio() {
  local minio
  minio=$(go env GOPATH)/bin/minio
  if [ ! -x "$minio" ]; then
    echo "install-deps: building the MinIO server with go install (about 3 minutes, once)"
    (cd /tmp && GOFLAGS= go install github.com/minio/minio@latest)
  fi
}

command -v go >/dev/null || { echo "install-deps: Go is required (https://go.dev/doc/install)" >&2; exit 1; }
if [ "$what" = minio ]; then
  install_minio
  exit 0
fi
apt_install ffmpeg
command -v npm >/dev/null || apt_install nodejs npm

if [ "$what" = test ]; then
  apt_install postgresql chromium
  install_minio
fi
