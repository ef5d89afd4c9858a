# Shared by the bench scripts. need_debs calls `say`, which each script defines before using it.

# need_debs PKG:CHECK... installs each Debian package PKG whose CHECK (a shell test) fails, e.g.
#   need_debs "ffmpeg:command -v ffmpeg && command -v ffprobe" "time:[ -x /usr/bin/time ]"
need_debs() {
  local missing=() spec
  for spec in "$@"; do
    eval "${spec#*:}" >/dev/null 2>&1 || missing+=("${spec%%:*}")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "installing ${missing[*]}"
  local sudo_=(); [ "$(id -u)" = 0 ] || sudo_=(sudo)
  "${sudo_[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# parse_write SCRIPT ARGS...: the bench scripts' one option. Sets write=1 for --write (or when WRITE=1
# is in the environment), prints SCRIPT's header comment for -h/--help, refuses anything else.
parse_write() {
  local script=$1 arg; shift
  write=${WRITE:-0}
  for arg in "$@"; do
    case $arg in
      --write) write=1 ;;
      -h | --help) sed -n '2,/^set -euo/p' "$script" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
      *) echo "usage: $script [--write]" >&2; exit 2 ;;
    esac
  done
}

# build_lectern ROOT WORK: sets lectern, the binary to measure ($LECTERN, or one built from ROOT into
# WORK), and lectern_version, what it was built from: the commit, "-dirty" when the tree has changes
# outside docs/ (--write edits docs/), or what $LECTERN says of itself.
build_lectern() {
  local root=$1 work=$2
  lectern_version=$(cd "$root" && { git describe --always 2>/dev/null || echo unknown; })
  (cd "$root" && git diff --quiet HEAD -- . ':!docs' 2>/dev/null) || lectern_version=$lectern_version-dirty
  if [ -n "${LECTERN:-}" ]; then
    lectern=$LECTERN
    lectern_version=$("$lectern" version | awk '{ print $2 }')
    say "using $lectern ($lectern_version)"
  else
    say "building lectern ($lectern_version)"
    (cd "$root" && go build -o "$work/lectern" ./cmd/lectern)
    lectern=$work/lectern
  fi
}

# cached_lecture ROOT WORK SECS SIZE: sets clip, a lecture made by bench/gen-lecture.sh (SECS seconds,
# WxH SIZE), cached under $BENCH_CACHE (default $TMPDIR/lectern-bench): the generator is deterministic.
cached_lecture() {
  local root=$1 work=$2 secs=$3 size=$4 cache=${BENCH_CACHE:-${TMPDIR:-/tmp}/lectern-bench}
  clip=$cache/lecture-${secs}s-$size.mp4
  [ -s "$clip" ] && return 0
  mkdir -p "$cache"
  say "generating a ${secs} s $size lecture (bench/gen-lecture.sh) into $clip"
  timeout 600 bash "$root/bench/gen-lecture.sh" "$work/lecture.mp4" "$secs" "$size"
  mv "$work/lecture.mp4" "$clip"
}
