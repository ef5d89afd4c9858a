// Slide chapters: the lecture's chapters.vtt (one cue per slide; the cue identifier is the path of the
// slide's thumbnail, relative to the file) as a clickable list and as marks on the seek bar.

// vttSeconds reads a WebVTT timestamp, hh:mm:ss.ttt or mm:ss.ttt; NaN when it is not one.
export function vttSeconds(s) {
  var m = /^(?:(\d+):)?(\d{2}):(\d{2})\.(\d{3})$/.exec(s.trim());
  if (!m) return NaN;
  return (+(m[1] || 0)) * 3600 + (+m[2]) * 60 + (+m[3]) + (+m[4]) / 1000;
}

// parseChapters returns [{start, end, title, thumb}] from WebVTT text, in file order; cues without a
// readable timing line are skipped.
export function parseChapters(text) {
  var out = [];
  text.replace(/\r\n?/g, '\n').split(/\n\n+/).forEach(function (block) {
    var lines = block.split('\n').filter(function (l) { return l !== ''; });
    var i = lines.findIndex(function (l) { return l.indexOf('-->') >= 0; });
    if (i < 0) return;
    var times = lines[i].split('-->');
    var start = vttSeconds(times[0]), end = vttSeconds(times[1].trim().split(/\s+/)[0]);
    if (isNaN(start)) return;
    out.push({ start: start, end: end, title: lines.slice(i + 1).join(' ') || 'Chapter ' + (out.length + 1), thumb: i > 0 ? lines[i - 1] : '' });
  });
  return out;
}

export function clock(t) {
  t = Math.max(0, Math.floor(t || 0));
  var h = Math.floor(t / 3600), m = Math.floor(t / 60) % 60, s = t % 60;
  return (h ? h + ':' + String(m).padStart(2, '0') : m) + ':' + String(s).padStart(2, '0');
}

// loadChapters fetches url and fills list (an <ol>) with one button per chapter. seek(t) is
// called when a chapter is picked. Returns the chapters, or [] when there are none or the file
// cannot be read (the player works without them).
export async function loadChapters(url, list, seek) {
  var chapters;
  try {
    var resp = await fetch(url);
    if (!resp.ok) return [];
    chapters = parseChapters(await resp.text());
  } catch (e) {
    return [];
  }
  list.textContent = '';
  chapters.forEach(function (c, n) {
    var li = document.createElement('li');
    var b = document.createElement('button');
    b.type = 'button';
    b.dataset.start = c.start;
    if (c.thumb) {
      var img = document.createElement('img');
      img.src = new URL(c.thumb, new URL(url, location.href)).href;
      img.alt = '';
      img.loading = 'lazy';
      b.appendChild(img);
    }
    var label = document.createElement('span');
    label.textContent = c.title + ' · ' + clock(c.start);
    b.appendChild(label);
    b.addEventListener('click', function () { seek(c.start); });
    li.appendChild(b);
    list.appendChild(li);
    c.item = li;
    c.index = n;
  });
  return chapters;
}

// placeMarks puts one mark per chapter start (after the first) on the seek bar, once the duration is known.
export function placeMarks(chapters, marks, duration) {
  marks.textContent = '';
  if (!(duration > 0)) return;
  chapters.forEach(function (c) {
    if (c.start <= 0 || c.start >= duration) return;
    var m = document.createElement('span');
    m.className = 'mark';
    m.style.left = (100 * c.start / duration) + '%';
    m.title = c.title;
    marks.appendChild(m);
  });
}

// currentChapter is the index of the chapter playing at t, -1 before the first.
export function currentChapter(chapters, t) {
  var n = -1;
  chapters.forEach(function (c, i) { if (c.start <= t + 0.05) n = i; });
  return n;
}
