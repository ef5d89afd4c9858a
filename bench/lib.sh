# Shared by the bench scripts: source it after setting `say`/`die`.

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
