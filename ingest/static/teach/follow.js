// Following a lecture's transcode in the job card, and the preview player once it is ready.
import { $, state, el, say, fmtDuration, enc, api } from './common.js';
import { updateRow, describe } from './lectures.js';

export function unfollow() {
  if (state.followed) clearTimeout(state.followed.timer);
  state.followed = null;
  if (state.hls) { state.hls.destroy(); state.hls = null; }
  var v = $('preview');
  v.removeAttribute('src');
  v.hidden = true;
  $('job').hidden = true;
}

// follow shows lecture id's progress until it is ready (then the preview) or failed. After an upload
// (fresh) the lecture counts as ready only for a version newer than versionBefore, so a replacement
// does not stop at the version it replaces.
export function follow(id, versionBefore, fresh) {
  unfollow();
  state.followed = { id: id, versionBefore: versionBefore, fresh: fresh, busySeen: false, timer: 0 };
  $('job').hidden = false;
  $('job-title').textContent = '';
  $('job-links').textContent = '';
  say($('job-status'), 'Loading…');
  poll(state.followed);
}

async function poll(f) {
  var l;
  try {
    l = await api('GET', '/lectures/' + enc(f.id));
  } catch (e) {
    if (state.followed !== f) return;
    if (e.status === 404) {
      say($('job-status'), 'This lecture was deleted.', 'err');
      return;
    }
    say($('job-status'), 'Cannot check the progress right now (' + e.message + '); trying again…', 'err');
    f.timer = setTimeout(function () { poll(f); }, 3000);
    return;
  }
  if (state.followed !== f) return;
  updateRow(l);
  $('job-title').textContent = l.title;
  var bar = $('job-bar');
  if (l.status === 'queued' || l.status === 'transcoding') f.busySeen = true;
  var ready = l.status === 'ready' && (!f.fresh || f.busySeen || l.version > f.versionBefore);
  if (ready) {
    bar.hidden = true;
    say($('job-status'), 'Ready' + (l.duration_seconds ? ' · ' + fmtDuration(l.duration_seconds) : '') +
      (l.renditions && l.renditions.length ? ' · ' + l.renditions.length + ' qualities' : '') +
      (l.captions ? ' · captions' : '') + '. This is what students see:', 'ok');
    preview(l);
    return;
  }
  if (l.status === 'failed') {
    bar.hidden = true;
    say($('job-status'), 'Failed: ' + (l.error || 'no reason given') + (l.version > 0 ? ' Students still see the previous version.' : ''), 'err');
    return;
  }
  if (l.status === 'transcoding') {
    bar.hidden = false;
    bar.value = l.progress || 0;
    say($('job-status'), 'Transcoding: ' + Math.floor(l.progress || 0) + '%' +
      (l.eta_seconds > 0 ? ' · about ' + fmtDuration(l.eta_seconds) + ' left' : ''));
  } else if (l.status === 'queued' || (l.status === 'ready' && f.fresh)) {
    bar.hidden = false;
    bar.value = 0;
    say($('job-status'), 'Queued: waiting for a transcoder…');
  } else {
    bar.hidden = true;
    say($('job-status'), describe(l));
  }
  f.timer = setTimeout(function () { poll(f); }, 1500);
}

function preview(l) {
  var v = $('preview');
  v.hidden = false;
  var links = $('job-links');
  links.textContent = '';
  if (l.watch_url) {
    var a = el('a', '', 'Open the student page');
    a.href = l.watch_url;
    links.appendChild(a);
  }
  if (state.hls) { state.hls.destroy(); state.hls = null; }
  if (window.Hls && Hls.isSupported()) {
    var h = new Hls();
    h.on(Hls.Events.ERROR, function (_, d) {
      if (!d.fatal) return;
      if (d.type === Hls.ErrorTypes.NETWORK_ERROR) { h.startLoad(); return; }
      if (d.type === Hls.ErrorTypes.MEDIA_ERROR) { h.recoverMediaError(); return; }
      say($('job-status'), 'The preview cannot play: ' + d.details, 'err');
    });
    h.loadSource(l.playback_url);
    h.attachMedia(v);
    state.hls = h;
  } else if (v.canPlayType('application/vnd.apple.mpegurl')) {
    v.src = l.playback_url;
  } else {
    say($('job-status'), 'Ready. This browser cannot play the preview (no HLS support); open the student page in another browser.', 'ok');
  }
}
