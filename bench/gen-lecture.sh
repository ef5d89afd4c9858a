#!/usr/bin/env bash
# A deterministic, lecture-like source video, standing for a teacher's upload:
#   - light slides (title, bullets, a coloured diagram) that change every 15 s, each one different;
#   - a small "camera" inset (moving testsrc2 picture, 320x180 at 1080p) in the bottom-right corner;
#   - speech-like audio: espeak-ng reading a short lecture text, looped to the duration, over quiet
#     pink room noise, stereo 48 kHz;
#   - encoded at high quality: H.264 High, CRF 17, yuv420p, 30 fps, AAC 192k, +faststart.
# The same arguments give the same frames (the same file with the same ffmpeg/espeak-ng versions).
#
#   bench/gen-lecture.sh OUT.mp4 [SECONDS=120] [WxH=1920x1080]
#
# Needs ffmpeg (libx264, drawtext), espeak-ng and fonts-dejavu-core; installs the last two if missing.
set -euo pipefail

usage() { echo "usage: $0 OUT.mp4 [SECONDS=120] [WxH=1920x1080]" >&2; exit 2; }
[ $# -ge 1 ] && [ $# -le 3 ] || usage
out=$1
secs=${2:-120}
size=${3:-1920x1080}
[[ $secs =~ ^[0-9]+$ ]] && [ "$secs" -ge 1 ] || usage
[[ $size =~ ^([0-9]+)x([0-9]+)$ ]] || usage
W=${BASH_REMATCH[1]} H=${BASH_REMATCH[2]}
[ $((W % 2)) -eq 0 ] && [ $((H % 2)) -eq 0 ] && [ "$H" -ge 180 ] || { echo "gen-lecture: size must be even and at least 180 high" >&2; exit 2; }

fps=30
slide_secs=15
font_dir=/usr/share/fonts/truetype/dejavu

missing=()
command -v ffmpeg >/dev/null || missing+=(ffmpeg)
command -v espeak-ng >/dev/null || missing+=(espeak-ng)
[ -f "$font_dir/DejaVuSans.ttf" ] || missing+=(fonts-dejavu-core)
if [ ${#missing[@]} -gt 0 ]; then
  echo "gen-lecture: installing ${missing[*]}" >&2
  sudo_=(); [ "$(id -u)" = 0 ] || sudo_=(sudo)
  "${sudo_[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
font=$font_dir/DejaVuSans.ttf
bold=$font_dir/DejaVuSans-Bold.ttf

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Sizes scale with the picture height (the numbers are for 1080 lines).
px() { echo $(( $1 * H / 1080 )); }

# --- slides: one PNG each, rendered once, then held for slide_secs in the final graph ---
titles=(
  "Waves: what moves, and what does not"
  "Describing a wave: amplitude, wavelength, period"
  "The wave equation"
  "Superposition and interference"
  "Standing waves on a string"
  "Sound: a longitudinal wave"
  "The Doppler effect"
  "Summary and exercises"
)
bullets=(
  $'A wave carries energy, not matter\nEach particle only oscillates about its rest position\nExamples: ripples on water, a plucked string, sound\nToday: describe, predict, measure'
  $'Amplitude A: the largest displacement from rest\nWavelength \xce\xbb: distance between two crests\nPeriod T and frequency f = 1 / T\nSpeed v = f \xce\xbb  (for every periodic wave)'
  $'y(x, t) = A sin(kx - \xcf\x89t)\nk = 2\xcf\x80 / \xce\xbb   and   \xcf\x89 = 2\xcf\x80 f\nOn a string: v = \xe2\x88\x9a(T / \xce\xbc)\nCheck the units before you trust a formula'
  $'Two waves in the same medium simply add\nIn phase: constructive, amplitudes add up\nHalf a wavelength apart: destructive, they cancel\nNoise-cancelling headphones use exactly this'
  $'Fixed ends reflect the wave back, inverted\nNodes never move, antinodes move the most\nAllowed wavelengths: \xce\xbb(n) = 2L / n\nFrequencies f(n) = n v / 2L: the harmonics'
  $'Air is pushed together and pulled apart\nPressure varies along the direction of travel\nSpeed in air at 20 \xc2\xb0C: about 343 m/s\nLoudness in decibels: 10 log10(I / I0)'
  $'A moving source squeezes the waves ahead of it\nObserved f\' = f (v + v_o) / (v - v_s)\nAmbulance sirens, radar guns, red-shifted galaxies\nWorked example: a car at 30 m/s'
  $'Waves carry energy; v = f \xce\xbb always holds\nSuperposition: interference, standing waves\nExercises 4.1 to 4.7 for next Tuesday\nQuestions? Use the forum or office hours'
)
accents=(0x1F5AA6 0xC0392B 0x27AE60 0x8E44AD 0xD35400 0x16A085 0x2C3E50 0xB7950B)

n_slides=$(( (secs + slide_secs - 1) / slide_secs ))
margin=$(px 96)
for ((i = 0; i < n_slides; i++)); do
  k=$((i % ${#titles[@]}))
  accent=${accents[$k]}
  printf '%s' "${titles[$k]}" >"$tmp/title$i.txt"
  # "\u2022 " bullets, one per line
  while IFS= read -r line; do printf '\xe2\x80\xa2  %s\n' "$line"; done <<<"${bullets[$k]}" >"$tmp/bullets$i.txt"
  printf 'Physics 101 \xc2\xb7 Lecture 4 \xc2\xb7 Waves' >"$tmp/footer$i.txt"
  printf '%d / %d' $((i + 1)) "$n_slides" >"$tmp/page$i.txt"

  # A diagram that differs per slide: a box in a slide-specific place holding bars of slide-specific
  # heights (a stand-in for a chart or figure), in the slide's accent colour.
  dx=$(( W * (62 + (k % 3) * 2) / 100 )) dy=$(px $((290 + (k % 2) * 60)))
  dw=$(( W * (32 - (k % 3) * 3) / 100 )) dh=$(px $((400 - (k % 2) * 60)))
  diagram="drawbox=x=$dx:y=$dy:w=$dw:h=$dh:color=0xE8EEF5:t=fill,drawbox=x=$dx:y=$dy:w=$dw:h=$dh:color=$accent:t=$(px 4)"
  for b in 0 1 2 3 4 5; do
    bh=$(( dh * (15 + ((k * 37 + b * 23 + k * b * 11) % 65)) / 100 ))
    bw=$(( dw / 9 ))
    bx=$(( dx + dw / 12 + b * (dw * 14 / 100) ))
    by=$(( dy + dh - bh - dh / 12 ))
    diagram+=",drawbox=x=$bx:y=$by:w=$bw:h=$bh:color=$accent@0.$((5 + b % 4)):t=fill"
  done

  vf="drawbox=x=0:y=0:w=iw:h=$(px 24):color=$accent:t=fill"
  vf+=",drawtext=fontfile=$bold:textfile=$tmp/title$i.txt:expansion=none:fontsize=$(px 62):fontcolor=0x1A1A1A:x=$margin:y=$(px 110)"
  vf+=",drawbox=x=$margin:y=$(px 205):w=$(px 240):h=$(px 8):color=$accent:t=fill"
  vf+=",drawtext=fontfile=$font:textfile=$tmp/bullets$i.txt:expansion=none:fontsize=$(px 38):line_spacing=$(px 34):fontcolor=0x333333:x=$margin:y=$(px 300)"
  vf+=",$diagram"
  vf+=",drawbox=x=0:y=ih-$(px 64):w=iw:h=$(px 64):color=0xEDEDED:t=fill"
  vf+=",drawtext=fontfile=$font:textfile=$tmp/footer$i.txt:expansion=none:fontsize=$(px 26):fontcolor=0x666666:x=$margin:y=h-$(px 46)"
  vf+=",drawtext=fontfile=$font:textfile=$tmp/page$i.txt:expansion=none:fontsize=$(px 26):fontcolor=0x666666:x=(w-tw)/2:y=h-$(px 46)"
  ffmpeg -hide_banner -loglevel error -nostdin -f lavfi -i "color=c=0xFAFAF7:s=${W}x${H}:d=1" \
    -vf "$vf" -frames:v 1 -y "$tmp/slide$i.png"
done

# --- speech: espeak-ng at a lecturing pace, looped to the duration in the graph below ---
cat >"$tmp/speech.txt" <<'EOF'
Good morning everyone. Today we continue with waves. Remember that a wave carries energy from one place
to another, but the medium itself does not travel with it. Think of a stadium wave: every person only
stands up and sits down again, yet the wave runs all the way around. Let us write this down carefully.
The amplitude is the largest displacement from rest. The wavelength is the distance between two crests.
The period is the time for one full oscillation, and the frequency is one over the period. Multiply the
frequency by the wavelength, and you get the speed of the wave. Please check the units on your own.
Now, what happens when two waves meet? They simply add up. Where crests meet crests, the wave grows;
where a crest meets a trough, they cancel. Keep this picture in mind for the exercises on Tuesday.
EOF
espeak-ng -v en-us -s 150 -p 45 -g 4 -w "$tmp/speech.wav" -f "$tmp/speech.txt"

# --- the final encode: slides held and concatenated, camera inset on top, audio looped and mixed ---
inputs=() graph=""
for ((i = 0; i < n_slides; i++)); do
  d=$(( secs - i * slide_secs )); [ $d -gt $slide_secs ] && d=$slide_secs
  inputs+=(-i "$tmp/slide$i.png")
  # loop= keeps the decoded picture: each slide PNG is decoded once, not once per frame.
  graph+="[$i:v]format=yuv420p,loop=loop=$((d * fps - 1)):size=1:start=0,setpts=N/($fps*TB)[s$i];"
done
for ((i = 0; i < n_slides; i++)); do graph+="[s$i]"; done
cam_w=$(( ($(px 320) + 1) / 2 * 2 )) cam_h=$(( ($(px 180) + 1) / 2 * 2 )) border=$(( $(px 4) / 2 * 2 + 2 ))
graph+="concat=n=$n_slides:v=1:a=0,fps=$fps[slides];"
graph+="[$n_slides:v]pad=w=iw+$((2 * border)):h=ih+$((2 * border)):x=$border:y=$border:color=0x404040[cam];"
graph+="[slides][cam]overlay=x=W-w-$(px 40):y=H-h-$(px 88):shortest=1,format=yuv420p[v];"
graph+="[$((n_slides + 1)):a]aresample=48000,pan=stereo|c0=c0|c1=c0,volume=0.9[speech];"
graph+="[$((n_slides + 2)):a]volume=1[room];"
graph+="[speech][room]amix=inputs=2:duration=first:normalize=0,atrim=duration=$secs[a]"

ffmpeg -hide_banner -loglevel error -nostdin -y \
  "${inputs[@]}" \
  -f lavfi -i "testsrc2=size=${cam_w}x${cam_h}:rate=$fps:duration=$secs" \
  -stream_loop -1 -i "$tmp/speech.wav" \
  -f lavfi -i "anoisesrc=color=pink:amplitude=0.004:seed=42:sample_rate=48000:duration=$secs" \
  -filter_complex "$graph" -map "[v]" -map "[a]" \
  -c:v libx264 -profile:v high -preset fast -crf 17 -pix_fmt yuv420p -r $fps \
  -c:a aac -b:a 192k -ar 48000 -ac 2 \
  -t "$secs" -movflags +faststart -map_metadata -1 -fflags +bitexact -flags:v +bitexact -flags:a +bitexact \
  "$out"
