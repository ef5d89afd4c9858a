// Uploading over tus with tus-js-client: a new lecture, a replacement video, or the rest of an upload
// that stopped (found through this browser's record of it, or the server's upload URL).
import { $, state, msg, fmtBytes, fmtDuration, percent, enc, scrollTo, api, signedOut } from './common.js';
import { follow } from './follow.js';
import { refreshList } from './lectures.js';

var MiB = 1024 * 1024;
var ENDPOINT = location.origin + '/api/v1/uploads/';
// 64 MiB per PATCH: a request stays under the body limits of the proxies schools put in front of
// servers, a failed request re-sends at most that much, and it is over S3's 5 MiB minimum part so the
// server never has to keep a partial part. A round trip per 64 MiB costs nothing measurable.
// ?chunk=BYTES lowers it, to watch (or test) a resume with a small file.
var CHUNK = chunkSize(new URLSearchParams(location.search).get('chunk'));
// A network drop is retried for about five minutes (the count restarts whenever bytes get through);
// after that the teacher gets a Resume button.
var RETRY = [0, 1000, 3000, 5000, 10000, 20000, 30000, 60000, 60000, 60000];

function chunkSize(v) {
  var n = parseInt(v, 10);
  if (!(n > 0)) return 64 * MiB;
  return Math.min(Math.max(n, 64 * 1024), 1024 * MiB);
}

function titleFromFile(name) {
  return name.replace(/\.[^.]*$/, '').replace(/[_-]+/g, ' ').trim();
}

export function setMode(kind, lecture, extra) {
  state.mode = Object.assign({ kind: kind, lecture: lecture }, extra || {});
  var meta = $('meta-fields');
  var isNew = kind === 'new';
  meta.disabled = !isNew;
  meta.hidden = !isNew;
  $('mode-note').hidden = isNew;
  if (kind === 'replace') {
    $('upload-heading').textContent = 'Replace the video';
    $('mode-text').textContent = 'New video for “' + lecture.title + '”. Students keep watching the current version until the new one is ready.';
    $('start').textContent = 'Upload new video';
  } else if (kind === 'resume') {
    var u = lecture.upload;
    $('upload-heading').textContent = 'Continue an upload';
    $('mode-text').textContent = 'This file was partly uploaded for “' + lecture.title + '”' +
      (u ? ' (' + percent(u.offset, u.size) + '%, ' + fmtBytes(u.offset) + ' of ' + fmtBytes(u.size) + ')' : '') +
      '. Uploading continues where it stopped.';
    $('start').textContent = 'Continue upload';
  } else {
    $('upload-heading').textContent = 'Upload a lecture';
    $('start').textContent = 'Upload';
  }
}

export function pick(file) {
  if (state.transfer) return;
  state.file = file;
  $('picked').textContent = file ? file.name + ' · ' + fmtBytes(file.size) : '';
  msg('');
  if (!file) return;
  if (state.mode.kind === 'new' && !$('title').value.trim()) $('title').value = titleFromFile(file.name);
  var gen = ++state.pickGen;
  var within = state.mode.kind === 'replace' ? state.mode.lecture.id : '';
  state.resumeCheck = findResumable(file, within).then(function (found) {
    if (gen !== state.pickGen) return;
    if (found) {
      setMode('resume', found.lecture, { previous: found.previous });
    } else if (state.mode.kind === 'resume') {
      setMode('new');
    }
  }, function (e) {
    if (gen === state.pickGen) msg('Could not check for an unfinished upload of this file: ' + e.message, 'err');
  });
}

// findResumable returns the newest unfinished upload this browser started for file (within one lecture
// when only is set) whose lecture still waits for it. Entries whose lecture is gone or done are dropped.
async function findResumable(file, only) {
  var prev = await new tus.Upload(file, { endpoint: ENDPOINT }).findPreviousUploads();
  prev.sort(function (a, b) { return Date.parse(b.creationTime) - Date.parse(a.creationTime); });
  for (var i = 0; i < prev.length; i++) {
    var p = prev[i];
    var id = p.metadata && p.metadata.lecture;
    if (!id) { localStorage.removeItem(p.urlStorageKey); continue; }
    if (only && id !== only) continue;
    var l;
    try {
      l = await api('GET', '/lectures/' + enc(id));
    } catch (e) {
      if (e.status === 404) { localStorage.removeItem(p.urlStorageKey); continue; }
      throw e;
    }
    if (l.upload || l.status === 'awaiting_upload') return { lecture: l, previous: p };
    localStorage.removeItem(p.urlStorageKey);
  }
  return null;
}

// storedUploads are the tus-js-client entries (its localStorage "tus::" keys) of one lecture, or of
// every lecture when lectureID is empty.
export function storedUploads(lectureID) {
  var out = [];
  for (var i = 0; i < localStorage.length; i++) {
    var key = localStorage.key(i);
    if (key.indexOf('tus::') !== 0) continue;
    try {
      var v = JSON.parse(localStorage.getItem(key));
      if (v && v.metadata && v.metadata.lecture && (!lectureID || v.metadata.lecture === lectureID)) out.push({ key: key, value: v });
    } catch (e) { /* not ours */ }
  }
  return out;
}

export function forgetUploads(lectureID) {
  storedUploads(lectureID).forEach(function (s) { localStorage.removeItem(s.key); });
}

export async function startUpload(ev) {
  ev.preventDefault();
  if (state.transfer) return;
  var file = state.file;
  if (!file) { msg('Choose or drop a video or audio file first.', 'err'); return; }
  if (file.size === 0) { msg('This file is empty (0 bytes): choose the recording itself.', 'err'); return; }
  setBusy(true);
  try {
    await state.resumeCheck;
    var mode = state.mode, lecture;
    if (mode.kind === 'new') {
      lecture = await createLecture();
    } else {
      lecture = mode.lecture;
    }
    begin(file, lecture, mode);
  } catch (e) {
    setBusy(false);
    msg(e.message, 'err');
  }
}

async function createLecture() {
  var captions = $('captions').files[0];
  msg('Creating the lecture…');
  var lecture = await api('POST', '/lectures', {
    title: $('title').value.trim(), course: $('course').value.trim(),
    description: $('description').value.trim(), profile: $('profile').value,
  });
  if (captions) {
    try {
      lecture = await api('PUT', '/lectures/' + enc(lecture.id) + '/captions?language=' + enc($('caption-lang').value.trim() || 'en'),
        await captions.text(), 'text/vtt');
    } catch (e) {
      // Without its captions the teacher would have to find and fix this lecture later: undo instead.
      await api('DELETE', '/lectures/' + enc(lecture.id)).catch(function () {});
      throw new Error('The captions file was not accepted: ' + e.message + ' Nothing was uploaded: fix the file or leave it out.');
    }
  }
  refreshList();
  return lecture;
}

function begin(file, lecture, mode) {
  var t = { file: file, lecture: lecture, samples: [], versionBefore: lecture.version || 0 };
  var opts = {
    endpoint: ENDPOINT,
    chunkSize: CHUNK,
    retryDelays: RETRY,
    metadata: { lecture: lecture.id, filename: file.name, filetype: file.type || 'application/octet-stream' },
    headers: { Authorization: 'Bearer ' + state.token },
    removeFingerprintOnSuccess: true,
    onShouldRetry: shouldRetry,
    onProgress: function (sent, total) { progress(t, sent, total); },
    onSuccess: function () { uploaded(t); },
    onError: function (err) { failed(t, err); },
  };
  if (mode.kind === 'resume' && !mode.previous && lecture.upload) opts.uploadUrl = new URL(lecture.upload.url, location.origin).href;
  t.upload = new tus.Upload(file, opts);
  if (mode.kind === 'resume' && mode.previous) t.upload.resumeFromPreviousUpload(mode.previous);
  state.transfer = t;

  var from = mode.kind === 'resume' && lecture.upload ? lecture.upload.offset : 0;
  $('transfer').hidden = false;
  $('bar').value = percent(from, file.size);
  $('pct').textContent = percent(from, file.size) + '% · ' + fmtBytes(from) + ' of ' + fmtBytes(file.size);
  $('rate').textContent = '';
  $('pause').hidden = false;
  $('resume').hidden = true;
  msg(from > 0
    ? 'Continuing “' + lecture.title + '” from ' + percent(from, file.size) + '% (' + fmtBytes(from) + ' were already on the server)…'
    : 'Uploading “' + lecture.title + '”…');
  t.upload.start();
}

function shouldRetry(err) {
  var status = err.originalResponse ? err.originalResponse.getStatus() : 0;
  // 409: our offset was stale, 423: the upload is still locked by a request the server has not noticed
  // is gone; both clear up on their own. Other 4xx answers will not change by asking again.
  return status === 0 || status >= 500 || status === 409 || status === 423 || status === 429;
}

function progress(t, sent, total) {
  if (state.transfer !== t) return;
  var now = performance.now();
  t.samples.push({ at: now, bytes: sent });
  while (t.samples.length > 2 && now - t.samples[0].at > 5000) t.samples.shift();
  var p = percent(sent, total);
  $('bar').value = p;
  $('pct').textContent = p + '% · ' + fmtBytes(sent) + ' of ' + fmtBytes(total);
  var first = t.samples[0], dt = (now - first.at) / 1000;
  if (sent >= total) {
    $('rate').textContent = '';
    msg('All bytes sent. The server is checking the file…');
  } else if (dt >= 0.5 && sent > first.bytes) {
    var rate = (sent - first.bytes) / dt;
    $('rate').textContent = (rate / 1e6).toFixed(1) + ' MB/s · about ' + fmtDuration((total - sent) / rate) + ' left';
  }
}

export function pause() {
  var t = state.transfer;
  if (!t) return;
  t.upload.abort();
  t.samples = [];
  $('pause').hidden = true;
  $('resume').hidden = false;
  $('rate').textContent = '';
  msg('Paused at ' + $('bar').value + '%. Press Resume; after a reload, pick the same file again to continue.');
}

export function resume() {
  var t = state.transfer;
  if (!t) return;
  $('pause').hidden = false;
  $('resume').hidden = true;
  msg('Uploading “' + t.lecture.title + '”…');
  t.upload.start();
}

function uploaded(t) {
  if (state.transfer !== t) return;
  state.transfer = null;
  $('bar').value = 100;
  $('pct').textContent = '100% · ' + fmtBytes(t.file.size) + ' of ' + fmtBytes(t.file.size);
  $('rate').textContent = '';
  $('pause').hidden = $('resume').hidden = true;
  msg('Upload complete: the file is accepted and queued for transcoding.', 'ok');
  resetForm();
  setBusy(false);
  follow(t.lecture.id, t.versionBefore, true);
  refreshList();
}

function serverMessage(res) {
  try {
    var j = JSON.parse(res.getBody());
    if (j && j.error && j.error.message) return j.error.message;
  } catch (e) { /* not JSON */ }
  return 'HTTP ' + res.getStatus();
}

function failed(t, err) {
  if (state.transfer !== t) return;
  var res = err.originalResponse;
  var status = res ? res.getStatus() : 0;
  var done = true, text;
  switch (status) {
    case 401:
      return signedOut('Your token is no longer accepted (' + serverMessage(res) + '). Sign in again; the upload continues when you pick the same file.');
    case 422:
      text = 'The file was rejected: ' + serverMessage(res);
      forgetUploads(t.lecture.id);
      break;
    case 404:
      text = 'This lecture no longer exists (was it deleted?): ' + serverMessage(res);
      forgetUploads(t.lecture.id);
      break;
    case 410:
      text = 'The unfinished upload expired on the server. Pick the file again to upload it from the start.';
      forgetUploads(t.lecture.id);
      break;
    case 413:
      text = 'The file is too large: ' + serverMessage(res);
      break;
    default:
      // The connection is down (or the server is) for longer than the retries: keep everything.
      done = false;
      text = 'The upload stopped at ' + $('bar').value + '%: ' +
        (status ? serverMessage(res) : 'the server cannot be reached') +
        '. Press Resume when the connection is back (or pick the same file again after a reload).';
  }
  msg(text, 'err');
  $('rate').textContent = '';
  $('pause').hidden = true;
  $('resume').hidden = done;
  if (done) {
    state.transfer = null;
    setBusy(false);
    refreshList();
  }
}

function setBusy(busy) {
  $('start').disabled = busy;
  $('file').disabled = busy;
  $('mode-cancel').disabled = busy;
  if (state.mode.kind === 'new') $('meta-fields').disabled = busy;
}

export function resetForm() {
  $('upload-form').reset();
  state.file = null;
  state.pickGen++;
  state.resumeCheck = Promise.resolve();
  $('picked').textContent = '';
  setMode('new');
}

export function replace(l) {
  if (state.transfer) { msg('Wait for the running upload to finish (or pause it) first.', 'err'); scrollTo('upload'); return; }
  resetForm();
  setMode('replace', l);
  msg('Choose or drop the new video for “' + l.title + '”.');
  scrollTo('upload');
}

// continueWith resumes lecture l's unfinished upload from its server URL, so it also works in a browser
// that did not start it. The size is the only check the browser can make that it is the same file.
export function continueWith(l, file) {
  if (!file) return;
  if (state.transfer) { msg('Wait for the running upload to finish (or pause it) first.', 'err'); return; }
  if (file.size !== l.upload.size) {
    msg('“' + file.name + '” is ' + fmtBytes(file.size) + ' but the unfinished upload of “' + l.title + '” is ' +
      fmtBytes(l.upload.size) + ': pick the same file.', 'err');
    scrollTo('upload');
    return;
  }
  resetForm();
  state.file = file;
  $('picked').textContent = file.name + ' · ' + fmtBytes(file.size);
  setMode('resume', l, { previous: null });
  scrollTo('upload');
  $('upload-form').requestSubmit();
}

// stopTransfer abandons the running upload and the form's lecture when they are lectureID's (deleted),
// or whatever they are when lectureID is empty (signing out).
export function stopTransfer(lectureID) {
  var t = state.transfer, m = state.mode;
  var hit = function (id) { return !lectureID || id === lectureID; };
  if (t && hit(t.lecture.id)) {
    t.upload.abort();
    state.transfer = null;
    $('transfer').hidden = true;
    $('pause').hidden = $('resume').hidden = true;
    setBusy(false);
    msg('');
    resetForm();
  } else if (m.lecture && hit(m.lecture.id)) {
    resetForm();
  }
}
