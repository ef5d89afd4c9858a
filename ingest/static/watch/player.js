// The student player (/watch/{id}): hls.js with automatic and manual quality, playback speed, captions,
// slide chapters (list and seek-bar marks), resume from the last position, keyboard shortcuts, CMCD on
// every request (the edges read the session id and prefetch the next-object hint), and bounded
// recovery from network and media errors before a message that says what to do. Browsers with native
// HLS and no Media Source (older iPhones) play the same playlist without the quality menu.
// When the playback URL is a router's, the player moves to another edge when its own stops answering
// (see "routing" below).
import { loadChapters, placeMarks, currentChapter, clock } from './chapters.js';

var $ = function (id) { return document.getElementById(id); };
var root = $('player'), video = $('video'), status = $('status');
var src = root.dataset.src, id = root.dataset.id;
var RESUME_KEY = 'lectern.resume.' + id, SPEED_KEY = 'lectern.speed', CAPTIONS_KEY = 'lectern.captions';
var SPEEDS = [0.75, 1, 1.25, 1.5, 1.75, 2];
var MAX_RETRIES = 3; // per kind, reset whenever a fragment plays
var hls = null, chapters = [], failed = false, ccOn = false, firstFrameMs = 0;

// stored and store read and write localStorage, which a private window or a strict setting can refuse:
// resume and the remembered choices are conveniences, never a reason to fail.
function stored(key) {
  try { return localStorage.getItem(key); } catch (e) { return null; }
}
function store(key, value) {
  try {
    if (value === null) localStorage.removeItem(key);
    else localStorage.setItem(key, value);
  } catch (e) { /* full or refused */ }
}

function say(msg, cls) {
  status.textContent = msg;
  status.className = cls || 'muted';
}

// fail shows a message instead of the player's state and stops loading: never a spinner forever.
function fail(msg) {
  failed = true;
  say(msg, 'err');
  if (hls) hls.stopLoad();
  video.pause();
  root.classList.add('failed');
}

function duration() {
  return isFinite(video.duration) && video.duration > 0 ? video.duration : +root.dataset.duration || 0;
}

function seek(t) {
  video.currentTime = Math.min(Math.max(0, t), Math.max(0, duration() - 0.1));
}

// --- resume -------------------------------------------------------------------------------------

function savedPosition() {
  var t = parseFloat(stored(RESUME_KEY));
  var d = +root.dataset.duration || 0;
  return t > 5 && (!d || t < d - 5) ? t : 0;
}

var lastSave = 0;
function savePosition(force) {
  if (!force && Date.now() - lastSave < 3000) return;
  var t = video.currentTime, d = duration();
  if (!(t > 0)) return;
  lastSave = Date.now();
  store(RESUME_KEY, video.ended || (d && t > d - 5) ? null : t.toFixed(1)); // finished: start over next time
}

// --- controls -----------------------------------------------------------------------------------

var play = $('play'), seekBar = $('seek'), time = $('time'), mute = $('mute'), speed = $('speed'),
  quality = $('quality'), cc = $('cc'), fs = $('fs');

function togglePlay() {
  if (failed) return;
  if (video.paused || video.ended) video.play().catch(function () {});
  else video.pause();
}

function setSpeed(r) {
  video.defaultPlaybackRate = r; // loading the media resets playbackRate to it
  video.playbackRate = r;
  speed.value = String(r);
  store(SPEED_KEY, String(r));
}

function stepSpeed(dir) {
  var i = SPEEDS.indexOf(video.playbackRate);
  if (i < 0) i = 1;
  setSpeed(SPEEDS[Math.min(Math.max(i + dir, 0), SPEEDS.length - 1)]);
}

// setCaptions shows or hides the captions; remember says it is the student's choice, kept for next time.
function setCaptions(on, remember) {
  ccOn = on;
  if (remember) store(CAPTIONS_KEY, on ? 'on' : 'off');
  cc.setAttribute('aria-pressed', String(on));
  if (hls) {
    hls.subtitleDisplay = on;
    hls.subtitleTrack = on ? Math.max(0, hls.subtitleTrack) : -1;
  }
  for (var i = 0; i < video.textTracks.length; i++) {
    var tt = video.textTracks[i];
    if (tt.kind === 'subtitles' || tt.kind === 'captions') tt.mode = on ? 'showing' : 'hidden';
  }
}

function toggleFullscreen() {
  if (document.fullscreenElement) { document.exitFullscreen(); return; }
  if (root.requestFullscreen) root.requestFullscreen().catch(function () {});
  else if (video.webkitEnterFullscreen) video.webkitEnterFullscreen(); // iPhone: only the video can
}

function levelName(l) {
  return l.height ? l.height + 'p' : Math.round(l.bitrate / 1000) + ' kb/s';
}

function fillQuality() {
  quality.textContent = '';
  var auto = new Option('Auto', '-1');
  quality.add(auto);
  hls.levels.map(function (l, i) { return { l: l, i: i }; })
    .sort(function (a, b) { return (b.l.height - a.l.height) || (b.l.bitrate - a.l.bitrate); })
    .forEach(function (x) { quality.add(new Option(levelName(x.l), String(x.i))); });
  quality.value = '-1';
  quality.hidden = hls.levels.length < 2;
}

play.addEventListener('click', togglePlay);
video.addEventListener('click', togglePlay);
mute.addEventListener('click', function () { video.muted = !video.muted; });
speed.addEventListener('change', function () { setSpeed(+speed.value); speed.blur(); }); // keys work again
quality.addEventListener('change', function () { if (hls) hls.currentLevel = +quality.value; quality.blur(); });
cc.addEventListener('click', function () { setCaptions(!ccOn, true); });
fs.addEventListener('click', toggleFullscreen);
var dragging = false;
seekBar.addEventListener('input', function () { dragging = true; time.textContent = clock(+seekBar.value) + ' / ' + clock(duration()); });
seekBar.addEventListener('change', function () { dragging = false; seek(+seekBar.value); });

video.addEventListener('play', function () { play.textContent = 'Pause'; play.setAttribute('aria-label', 'Pause'); });
video.addEventListener('pause', function () { play.textContent = 'Play'; play.setAttribute('aria-label', 'Play'); savePosition(true); });
video.addEventListener('volumechange', function () { mute.setAttribute('aria-pressed', String(video.muted)); mute.textContent = video.muted ? 'Unmute' : 'Mute'; });
video.addEventListener('ratechange', function () { speed.value = String(video.playbackRate); });
video.addEventListener('durationchange', function () {
  seekBar.max = String(duration());
  placeMarks(chapters, $('marks'), duration());
});
video.addEventListener('timeupdate', function () {
  var t = video.currentTime;
  if (!dragging) seekBar.value = String(t);
  time.textContent = clock(t) + ' / ' + clock(duration());
  var n = currentChapter(chapters, t);
  chapters.forEach(function (c, i) { c.item.classList.toggle('now', i === n); });
  savePosition(false);
});
video.addEventListener('playing', function () { if (!failed) say(''); });
// Time to first frame, from the navigation's start: measured by the browser tests and benchmarks.
video.addEventListener('playing', function () { firstFrameMs = performance.now(); }, { once: true });
video.addEventListener('canplay', function () { if (!failed && status.textContent === 'Loading…') say(''); });
video.addEventListener('waiting', function () { if (!failed) say('Loading…'); });
video.addEventListener('ended', function () { savePosition(true); });
window.addEventListener('pagehide', function () { savePosition(true); });
document.addEventListener('visibilitychange', function () { if (document.hidden) savePosition(true); });

document.addEventListener('keydown', function (e) {
  if (e.ctrlKey || e.metaKey || e.altKey || failed) return;
  var tag = e.target.tagName;
  if (tag === 'SELECT' || tag === 'TEXTAREA') return;
  if (tag === 'INPUT' && (e.target.type !== 'range' || e.key.indexOf('Arrow') === 0)) return; // the seek bar's own arrows
  if (tag === 'BUTTON' && (e.key === ' ' || e.key === 'Enter')) return; // the button's own click
  var t = video.currentTime;
  switch (e.key) {
    case ' ': case 'k': togglePlay(); break;
    case 'j': seek(t - 10); break;
    case 'l': seek(t + 10); break;
    case 'ArrowLeft': seek(t - 5); break;
    case 'ArrowRight': seek(t + 5); break;
    case 'f': toggleFullscreen(); break;
    case 'c': if (!cc.hidden) setCaptions(!ccOn, true); break;
    case 'm': video.muted = !video.muted; break;
    case '>': stepSpeed(1); break;
    case '<': stepSpeed(-1); break;
    default: return;
  }
  e.preventDefault();
});

// --- routing ------------------------------------------------------------------------------------
// With --playback-base naming a router (docs/playback.md), the multivariant playlist comes back by a
// 302 from the student's edge, and hls.js resolves the playlists and segments against the URL it was
// finally read from, so all of them load from that edge. When that edge stops answering (a fatal
// network error, or two failed loads in a row) the player asks the router again in its JSON form with
// failed={edge} (the router leaves that edge out and checks it at once), sends every later request to
// the new edge and restarts loading at the playhead: what is buffered stays, playback goes on. A playback
// URL that is no router's (an edge, the same host) is never redirected, and none of this happens.
var route = { first: '', edge: '', failures: 0, asking: null };

// baseOf is the part of a playback URL before /hls/{lecture}/ (and before /s/{token}/ when signed).
function baseOf(u) {
  var p = u.pathname, i = p.indexOf('/hls/' + id + '/');
  return i < 0 ? null : u.origin + p.slice(0, i).replace(/\/s\/[^\/]+$/, '');
}

// edgeOf is the edge base URL of url, the final URL of the playback URL src after a redirect; '' when
// src was not redirected elsewhere.
function edgeOf(url) {
  var a = baseOf(new URL(src, location.href)), b = baseOf(new URL(url, location.href));
  return a !== null && b !== null && a !== b ? b : '';
}

// onEdge is url moved to the current edge: hls.js keeps the URLs of the first edge's playlists.
function onEdge(url) {
  if (!route.first || route.edge === route.first || url.indexOf(route.first + '/') !== 0) return url;
  return route.edge + url.slice(route.first.length);
}

// reroute asks the router for another edge than the current one; it resolves to whether it got one.
function reroute() {
  if (route.asking) return route.asking;
  var failed = route.edge;
  var url = src + (src.indexOf('?') < 0 ? '?' : '&') + 'format=json&failed=' + encodeURIComponent(failed);
  route.asking = fetch(url, { cache: 'no-store' })
    .then(function (r) { return r.ok ? r.json() : null; })
    .then(function (d) {
      if (!d || !d.edge || d.edge === failed) return false;
      route.edge = String(d.edge).replace(/\/+$/, '');
      route.failures = 0;
      window.lecternRoute = { edge: route.edge, failed: failed, at: video.currentTime };
      return true;
    })
    .catch(function () { return false; })
    .then(function (ok) { route.asking = null; return ok; });
  return route.asking;
}

// edgeTrouble says whether an hls.js error is a load the edge failed: no answer, a timeout or a 5xx
// (not a load the player itself aborted, nor a 4xx, which is about the link).
function edgeTrouble(d) {
  var code = d.response && d.response.code;
  return !!route.first && d.type === Hls.ErrorTypes.NETWORK_ERROR && /Load(Error|TimeOut)$/.test(d.details) &&
    !(code >= 400 && code < 500);
}

// --- playback -----------------------------------------------------------------------------------

var EXPIRED = 'This link has expired, reload the course page for a new one.';
var GONE = 'This lecture is no longer available: it may have been deleted or replaced. Go back to the course page.';
var BROKEN = 'This lecture cannot be played right now. Check your connection and reload the page.';

function startHls(startAt) {
  hls = new Hls({
    startPosition: startAt > 0 ? startAt : -1,
    // CMCD on every request, as the CMCD query argument: the edge counts sessions by sid and
    // prefetches the next object named in nor.
    cmcd: { contentId: id },
    // Requests go to the edge the router gave last (opening the request here is how hls.js lets a
    // page change its URL).
    xhrSetup: function (xhr, url) {
      var to = onEdge(url);
      xhr.lecternEdge = route.edge; // which edge an error came from
      if (to !== url) xhr.open('GET', to, true);
    },
  });
  window.lecternHls = hls;
  var retries = { network: 0, media: 0 };
  hls.on(Hls.Events.MANIFEST_PARSED, fillQuality);
  hls.on(Hls.Events.LEVEL_SWITCHED, function (_, d) {
    var l = hls.levels[d.level];
    quality.options[0].text = hls.autoLevelEnabled && l ? 'Auto (' + levelName(l) + ')' : 'Auto';
  });
  hls.on(Hls.Events.SUBTITLE_TRACKS_UPDATED, function () {
    cc.hidden = hls.subtitleTracks.length === 0;
    setCaptions(ccOn);
  });
  hls.on(Hls.Events.MANIFEST_LOADED, function (_, d) {
    if (!route.first) route.first = route.edge = edgeOf(d.url);
  });
  hls.on(Hls.Events.FRAG_LOADED, function () { route.failures = 0; });
  hls.on(Hls.Events.FRAG_BUFFERED, function () { retries.network = retries.media = 0; });
  hls.on(Hls.Events.ERROR, function (_, d) {
    if (failed) return;
    var code = d.response && d.response.code;
    // A signed link past its expiry (or a key rotated away) is refused by the edge with 403: no retry
    // can help, the course page mints a new link.
    if (code === 401 || code === 403) { fail(EXPIRED); return; }
    var via = d.networkDetails && d.networkDetails.lecternEdge;
    if (edgeTrouble(d) && via !== undefined && via !== route.edge) {
      // A request sent to an edge already left (in flight when the player moved): its retry goes to
      // the new edge; a fatal one restarts loading there.
      if (d.fatal) hls.startLoad(video.currentTime);
      return;
    }
    if (edgeTrouble(d) && (d.fatal ? retries.network < MAX_RETRIES : ++route.failures >= 2)) {
      // Loading restarts at the playhead on the new edge at once, rather than at hls.js's next retry
      // (a second or more away); what is buffered stays. A fatal error counts with the other retries,
      // so that edges failing in turn still end in a message.
      if (d.fatal) retries.network++;
      reroute().then(function (ok) {
        if (failed) return;
        if (ok) {
          hls.stopLoad();
          hls.startLoad(video.currentTime);
        } else if (d.fatal) {
          recover(d);
        }
      });
      return;
    }
    if (d.fatal) recover(d);
  });
  // recover handles a fatal error: a bounded number of retries, then a message.
  function recover(d) {
    var code = d.response && d.response.code;
    if (code === 404 || code === 410) { fail(GONE); return; }
    if (d.type === Hls.ErrorTypes.NETWORK_ERROR && retries.network < MAX_RETRIES) {
      retries.network++;
      say('Connection trouble, retrying…');
      setTimeout(function () { if (!failed) hls.startLoad(); }, 1000 * retries.network);
      return;
    }
    if (d.type === Hls.ErrorTypes.MEDIA_ERROR && retries.media < MAX_RETRIES) {
      retries.media++;
      if (retries.media === 2) hls.swapAudioCodec();
      hls.recoverMediaError();
      return;
    }
    fail(BROKEN);
  }
  hls.loadSource(src);
  hls.attachMedia(video);
}

function start() {
  var saved = savedPosition();
  var sp = parseFloat(stored(SPEED_KEY));
  if (SPEEDS.indexOf(sp) >= 0) setSpeed(sp);
  ccOn = stored(CAPTIONS_KEY) === 'on';
  if (saved) {
    var note = $('resume');
    $('resume-at').textContent = clock(saved);
    note.hidden = false;
    $('restart').addEventListener('click', function () { seek(0); note.hidden = true; });
  }
  if (window.Hls && Hls.isSupported()) {
    startHls(saved);
  } else if (video.canPlayType('application/vnd.apple.mpegurl')) {
    quality.hidden = true;
    video.addEventListener('loadedmetadata', function () {
      if (saved) seek(saved);
      var has = false;
      for (var i = 0; i < video.textTracks.length; i++) has = has || /subtitles|captions/.test(video.textTracks[i].kind);
      cc.hidden = !has;
      setCaptions(ccOn);
    }, { once: true });
    video.addEventListener('error', function () { fail(BROKEN); });
    video.src = src;
  } else {
    fail('This browser cannot play the lecture (no HLS or Media Source support). Try a current Chrome, Firefox, Edge or Safari.');
    return;
  }
  say('Loading…');
  // hls.js gives up on its own after its load timeouts; this covers a stream that loads but never plays.
  setTimeout(function () {
    if (!failed && !firstFrameMs && video.readyState < 2) say('The lecture is taking long to start. Check your connection, or reload the page.', 'err');
  }, 20000);
  if (root.dataset.chapters) {
    loadChapters(root.dataset.chapters, $('chapter-list'), function (t) { seek(t); video.play().catch(function () {}); })
      .then(function (cs) {
        chapters = cs;
        $('chapters').hidden = cs.length === 0;
        placeMarks(chapters, $('marks'), duration());
      });
  }
}

window.lecternPlayer = { chapters: function () { return chapters; }, firstFrameMs: function () { return firstFrameMs; } };
start();
