// The teacher page: sign in with an API token, upload over tus (resumable: a dropped connection is
// retried, a reloaded page continues when the same file is picked again), follow the transcode, preview
// the result, and manage the teacher's lectures. Text from the server only ever goes into the page
// through textContent.
(function () {
  'use strict';

  var MiB = 1024 * 1024;
  var TOKEN_KEY = 'lectern.token';
  var ENDPOINT = location.origin + '/api/v1/uploads/';
  // 64 MiB per PATCH: a request stays under the body limits of the proxies schools put in front of
  // servers, a failed request re-sends at most that much, and it is over S3's 5 MiB minimum part so the
  // server never has to keep a partial part. A round trip per 64 MiB costs nothing measurable.
  // ?chunk=BYTES lowers it, to watch (or test) a resume with a small file.
  var CHUNK = chunkSize(new URLSearchParams(location.search).get('chunk'));
  // A network drop is retried for about five minutes (the count restarts whenever bytes get through);
  // after that the teacher gets a Resume button.
  var RETRY = [0, 1000, 3000, 5000, 10000, 20000, 30000, 60000, 60000, 60000];

  var $ = function (id) { return document.getElementById(id); };
  var state = {
    token: '',
    signedIn: false,
    lectures: [],
    rows: new Map(),      // lecture id -> row elements
    courses: new Map(),   // course id -> title
    mode: { kind: 'new' },// new | replace (lecture) | resume (lecture, previous tus upload or uploadUrl)
    file: null,
    resumeCheck: Promise.resolve(),
    pickGen: 0,
    transfer: null,       // the running tus upload
    followed: null,       // the lecture whose transcode the job card shows
    hls: null,
    listTimer: 0,
  };

  function chunkSize(v) {
    var n = parseInt(v, 10);
    if (!(n > 0)) return 64 * MiB;
    return Math.min(Math.max(n, 64 * 1024), 1024 * MiB);
  }

  // ---- small helpers ----

  function el(tag, className, text) {
    var e = document.createElement(tag);
    if (className) e.className = className;
    if (text != null) e.textContent = text;
    return e;
  }

  function button(label, onClick, className) {
    var b = el('button', className || 'quiet', label);
    b.type = 'button';
    b.addEventListener('click', onClick);
    return b;
  }

  function say(node, text, kind) {
    node.textContent = text || '';
    node.className = kind === 'err' ? 'err' : kind === 'ok' ? 'ok' : 'muted';
  }

  function msg(text, kind) { say($('msg'), text, kind); }

  function fmtBytes(n) {
    if (n < 1e6) return (n / 1e3).toFixed(0) + ' kB';
    if (n < 1e9) return (n / 1e6).toFixed(1) + ' MB';
    return (n / 1e9).toFixed(2) + ' GB';
  }

  function fmtDuration(s) {
    s = Math.max(0, Math.round(s));
    if (s < 60) return s + ' s';
    if (s < 3600) return Math.floor(s / 60) + ' min ' + String(s % 60).padStart(2, '0') + ' s';
    return Math.floor(s / 3600) + ' h ' + String(Math.floor(s / 60) % 60).padStart(2, '0') + ' min';
  }

  function percent(part, whole) { return whole > 0 ? Math.floor(1000 * part / whole) / 10 : 0; }

  function enc(s) { return encodeURIComponent(s); }

  function titleFromFile(name) {
    return name.replace(/\.[^.]*$/, '').replace(/[_-]+/g, ' ').trim();
  }

  // ---- the API ----

  function ApiError(status, code, message) {
    this.status = status;
    this.code = code;
    this.message = message;
  }
  ApiError.prototype = Object.create(Error.prototype);

  async function api(method, path, body, contentType) {
    var headers = { Authorization: 'Bearer ' + state.token };
    var payload;
    if (body !== undefined) {
      headers['Content-Type'] = contentType || 'application/json';
      payload = contentType ? body : JSON.stringify(body);
    }
    var res;
    try {
      res = await fetch('/api/v1' + path, { method: method, headers: headers, body: payload, cache: 'no-store' });
    } catch (e) {
      throw new ApiError(0, 'network', 'The server cannot be reached: check the connection and try again.');
    }
    var j = null;
    if (res.status !== 204) {
      try { j = await res.json(); } catch (e) { j = null; }
    }
    if (!res.ok) {
      var e = (j && j.error) || {};
      var err = new ApiError(res.status, e.code || 'http_' + res.status, e.message || 'The server answered HTTP ' + res.status + '.');
      if (res.status === 401 && state.signedIn) signOut('Your token is no longer accepted (' + err.message + '). Sign in again.');
      throw err;
    }
    return j;
  }

  // ---- sign in ----

  async function signIn(token) {
    state.token = token;
    var me;
    try {
      me = await api('GET', '/me');
    } catch (e) {
      state.token = '';
      if (e.status === 401) localStorage.removeItem(TOKEN_KEY);
      showSignIn();
      say($('signin-msg'), 'Sign-in failed: ' + e.message, 'err');
      return;
    }
    localStorage.setItem(TOKEN_KEY, token);
    state.signedIn = true;
    $('me').textContent = me.name;
    $('signin').hidden = true;
    $('app').hidden = false;
    say($('signin-msg'), '');
    await refreshCourses();
    refreshList();
  }

  function showSignIn() {
    $('signin').hidden = false;
    $('app').hidden = true;
    $('token').value = '';
  }

  function signOut(why) {
    if (state.transfer) {
      state.transfer.upload.abort();
      state.transfer = null;
    }
    unfollow();
    clearTimeout(state.listTimer);
    state.token = '';
    state.signedIn = false;
    state.lectures = [];
    state.rows.clear();
    $('lectures').textContent = '';
    $('unfinished').textContent = '';
    localStorage.removeItem(TOKEN_KEY);
    resetForm();
    showSignIn();
    say($('signin-msg'), why || '', why ? 'err' : '');
  }

  // ---- choosing the file, and finding an upload of it to continue ----

  function setMode(kind, lecture, extra) {
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

  function pick(file) {
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
  function storedUploads(lectureID) {
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

  function forgetUploads(lectureID) {
    storedUploads(lectureID).forEach(function (s) { localStorage.removeItem(s.key); });
  }

  // ---- uploading ----

  async function startUpload(ev) {
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

  function pause() {
    var t = state.transfer;
    if (!t) return;
    t.upload.abort();
    t.samples = [];
    $('pause').hidden = true;
    $('resume').hidden = false;
    $('rate').textContent = '';
    msg('Paused at ' + $('bar').value + '%. Press Resume; after a reload, pick the same file again to continue.');
  }

  function resume() {
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
        return signOut('Your token is no longer accepted (' + serverMessage(res) + '). Sign in again; the upload continues when you pick the same file.');
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

  function resetForm() {
    $('upload-form').reset();
    state.file = null;
    state.pickGen++;
    state.resumeCheck = Promise.resolve();
    $('picked').textContent = '';
    setMode('new');
  }

  // ---- following a lecture's transcode ----

  function unfollow() {
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
  function follow(id, versionBefore, fresh) {
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

  // ---- the lecture list ----

  async function refreshCourses() {
    try {
      var j = await api('GET', '/courses');
      var list = $('courses');
      list.textContent = '';
      (j.courses || []).forEach(function (c) {
        state.courses.set(c.id, c.title);
        var o = el('option');
        o.value = c.title;
        list.appendChild(o);
      });
    } catch (e) { /* the list shows its own error */ }
  }

  async function refreshList() {
    clearTimeout(state.listTimer);
    if (!state.token) return;
    try {
      var all = [], after = '';
      for (var page = 0; page < 10; page++) {
        var j = await api('GET', '/lectures?limit=100' + (after ? '&after=' + enc(after) : ''));
        all = all.concat(j.lectures || []);
        if (!j.next) break;
        after = j.next;
      }
      all = await withUploads(all);
      if (all.some(function (l) { return !state.courses.has(l.course_id); })) await refreshCourses();
      renderList(all);
      say($('list-msg'), all.length ? '' : 'No lectures yet: upload your first one above.');
    } catch (e) {
      if (!state.token) return;
      say($('list-msg'), 'The list cannot be loaded: ' + e.message, 'err');
    }
    var busy = state.lectures.some(function (l) { return l.status === 'queued' || l.status === 'transcoding'; });
    state.listTimer = setTimeout(refreshList, busy ? 3000 : 15000);
  }

  // withUploads fills in the unfinished upload of the lectures that may have one: the list leaves it out
  // (it costs the server a storage lookup per lecture), so ask for those lectures one by one: the ones
  // still waiting for their video, and those this browser has started an upload for (a replacement).
  async function withUploads(ls) {
    var mine = new Set(storedUploads('').map(function (s) { return s.value.metadata.lecture; }));
    return Promise.all(ls.map(function (l) {
      if (l.upload || (l.status !== 'awaiting_upload' && !mine.has(l.id))) return l;
      return api('GET', '/lectures/' + enc(l.id)).catch(function () { return l; });
    }));
  }

  function describe(l) {
    switch (l.status) {
      case 'awaiting_upload':
        return l.upload
          ? 'Upload stopped at ' + percent(l.upload.offset, l.upload.size) + '% (' + fmtBytes(l.upload.offset) + ' of ' + fmtBytes(l.upload.size) + ')'
          : 'Waiting for its video';
      case 'queued':
        return 'Queued for transcoding' + (l.version > 0 ? ' (students see the previous version meanwhile)' : '');
      case 'transcoding':
        return 'Transcoding ' + Math.floor(l.progress || 0) + '%' + (l.eta_seconds > 0 ? ' · about ' + fmtDuration(l.eta_seconds) + ' left' : '');
      case 'ready':
        return 'Ready' + (l.duration_seconds ? ' · ' + fmtDuration(l.duration_seconds) : '') + (l.captions ? ' · captions' : '') +
          (l.upload ? ' · a replacement upload is unfinished' : '');
      case 'failed':
        return 'Failed: ' + (l.error || 'no reason given');
    }
    return l.status;
  }

  function renderList(ls) {
    state.lectures = ls;
    var ul = $('lectures');
    var seen = new Set();
    ls.forEach(function (l, i) {
      seen.add(l.id);
      var r = updateRow(l);
      if (ul.children[i] !== r.li) ul.insertBefore(r.li, ul.children[i] || null);
    });
    state.rows.forEach(function (r, id) {
      if (!seen.has(id)) { r.li.remove(); state.rows.delete(id); }
    });
    renderUnfinished(ls);
  }

  function updateRow(l) {
    var r = state.rows.get(l.id);
    if (!r) {
      r = { li: el('li'), title: el('div', 'title'), meta: el('div', 'muted'), status: el('div'), actions: el('div', 'actions'), editor: el('div'), key: '' };
      r.li.dataset.id = l.id;
      [r.title, r.meta, r.status, r.actions, r.editor].forEach(function (n) { r.li.appendChild(n); });
      state.rows.set(l.id, r);
    }
    r.lecture = l;
    r.title.textContent = l.title;
    var when = l.created_at ? new Date(l.created_at) : null;
    r.meta.textContent = [state.courses.get(l.course_id) || '', when && !isNaN(when) ? when.toLocaleDateString() : '']
      .filter(Boolean).join(' · ');
    say(r.status, describe(l), l.status === 'failed' ? 'err' : l.status === 'ready' ? 'ok' : '');
    r.status.classList.add('status');
    var key = [l.status, l.version > 0, !!l.upload, !!l.watch_url].join();
    if (key !== r.key) {
      r.key = key;
      renderActions(r);
    }
    return r;
  }

  function renderActions(r) {
    var l = r.lecture, a = r.actions;
    a.textContent = '';
    if (l.version > 0 && l.watch_url) {
      var w = el('a', '', 'Watch');
      w.href = l.watch_url;
      a.appendChild(w);
    }
    if (l.status === 'ready' && l.version > 0) {
      a.appendChild(button('Preview', function () { follow(l.id, l.version, false); scrollTo('job'); }));
    } else if (l.status === 'queued' || l.status === 'transcoding') {
      a.appendChild(button('Progress', function () { follow(l.id, l.version, true); scrollTo('job'); }));
    }
    a.appendChild(button('Rename', function () { openRename(r); }));
    a.appendChild(button('Captions', function () { openCaptions(r); }));
    if (!l.upload) {
      a.appendChild(button(l.status === 'awaiting_upload' ? 'Upload video' : 'Replace video', function () { replace(r.lecture); }));
    }
    a.appendChild(button('Delete', function () { remove(r); }, 'quiet danger'));
  }

  function scrollTo(id) { $(id).scrollIntoView({ behavior: 'smooth', block: 'start' }); }

  function replace(l) {
    if (state.transfer) { msg('Wait for the running upload to finish (or pause it) first.', 'err'); scrollTo('upload'); return; }
    resetForm();
    setMode('replace', l);
    msg('Choose or drop the new video for “' + l.title + '”.');
    scrollTo('upload');
  }

  function editor(r, build) {
    r.editor.textContent = '';
    r.editor.className = 'editor';
    build(r.editor, function close() { r.editor.textContent = ''; r.editor.className = ''; });
  }

  function openRename(r) {
    editor(r, function (box, close) {
      var form = el('form');
      var tl = el('label', '', 'Title '), title = el('input');
      title.required = true;
      title.maxLength = 200;
      title.value = r.lecture.title;
      tl.appendChild(title);
      var dl = el('label', '', 'Description '), desc = el('textarea');
      desc.rows = 2;
      desc.value = r.lecture.description || '';
      dl.appendChild(desc);
      var note = el('p', 'muted');
      var save = el('button', '', 'Save');
      save.type = 'submit';
      var row = el('p', 'row');
      row.append(save, button('Cancel', close));
      form.append(tl, dl, row, note);
      form.addEventListener('submit', async function (ev) {
        ev.preventDefault();
        save.disabled = true;
        try {
          updateRow(await api('PATCH', '/lectures/' + enc(r.lecture.id), { title: title.value.trim(), description: desc.value.trim() }));
          close();
        } catch (e) {
          say(note, e.message, 'err');
          save.disabled = false;
        }
      });
      box.appendChild(form);
      title.focus();
    });
  }

  function openCaptions(r) {
    editor(r, function (box, close) {
      var form = el('form');
      var fl = el('label', '', 'Captions file (.vtt) '), file = el('input');
      file.type = 'file';
      file.accept = '.vtt,text/vtt';
      file.required = true;
      fl.appendChild(file);
      var ll = el('label', '', 'Language '), lang = el('input');
      lang.value = 'en';
      lang.size = 6;
      lang.maxLength = 35;
      ll.appendChild(lang);
      var note = el('p', 'muted', r.lecture.version > 0
        ? 'A new version with these captions is prepared; students see the current one until it is ready.'
        : 'The captions are used when the video is transcoded.');
      var attach = el('button', '', 'Attach');
      attach.type = 'submit';
      var row = el('p', 'row');
      row.append(attach, button('Cancel', close));
      form.append(fl, ll, row, note);
      form.addEventListener('submit', async function (ev) {
        ev.preventDefault();
        var f = file.files[0];
        if (!f) return;
        attach.disabled = true;
        try {
          var l = await api('PUT', '/lectures/' + enc(r.lecture.id) + '/captions?language=' + enc(lang.value.trim() || 'en'), await f.text(), 'text/vtt');
          updateRow(l);
          close();
          refreshList();
        } catch (e) {
          say(note, 'Not attached: ' + e.message, 'err');
          attach.disabled = false;
        }
      });
      box.appendChild(form);
    });
  }

  async function remove(r) {
    var l = r.lecture;
    if (!confirm('Delete “' + l.title + '”? Its video, captions and every version are removed for good, and students can no longer watch it.')) return;
    try {
      await api('DELETE', '/lectures/' + enc(l.id));
    } catch (e) {
      if (e.status !== 404) { say(r.status, 'Not deleted: ' + e.message, 'err'); return; }
    }
    if (state.transfer && state.transfer.lecture.id === l.id) {
      state.transfer.upload.abort();
      state.transfer = null;
      $('transfer').hidden = true;
      $('pause').hidden = $('resume').hidden = true;
      resetForm();
      setBusy(false);
      msg('');
    }
    if ((state.mode.kind === 'replace' || state.mode.kind === 'resume') && state.mode.lecture.id === l.id) resetForm();
    if (state.followed && state.followed.id === l.id) unfollow();
    forgetUploads(l.id);
    r.li.remove();
    state.rows.delete(l.id);
    refreshList();
  }

  function renderUnfinished(ls) {
    var ul = $('unfinished');
    ul.textContent = '';
    var open = ls.filter(function (l) { return l.upload && !(state.transfer && state.transfer.lecture.id === l.id); });
    $('unfinished-card').hidden = open.length === 0;
    open.forEach(function (l) {
      var u = l.upload, li = el('li');
      li.appendChild(el('div', 'title', l.title));
      var names = [u.filename].concat(storedUploads(l.id).map(function (s) { return s.value.metadata.filename; })).filter(Boolean);
      var expires = u.expires_at ? new Date(u.expires_at) : null;
      li.appendChild(el('div', 'muted', percent(u.offset, u.size) + '% uploaded (' + fmtBytes(u.offset) + ' of ' + fmtBytes(u.size) + ')' +
        (names.length ? ' · file “' + names[0] + '”' : '') +
        (expires && !isNaN(expires) ? ' · kept until ' + expires.toLocaleString() : '')));
      var input = el('input');
      input.type = 'file';
      input.accept = 'video/*,audio/*';
      input.hidden = true;
      input.addEventListener('change', function () { continueWith(l, input.files[0]); });
      var actions = el('div', 'actions');
      actions.append(button('Continue with file…', function () { input.click(); }), input);
      li.appendChild(actions);
      ul.appendChild(li);
    });
  }

  // continueWith resumes lecture l's unfinished upload from its server URL, so it also works in a browser
  // that did not start it. The size is the only check the browser can make that it is the same file.
  function continueWith(l, file) {
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

  // ---- wiring ----

  function init() {
    if (!window.tus || !tus.isSupported) {
      say($('signin-msg'), 'The upload library (tus-js-client) is missing on this server: run `make web` there.', 'err');
      return;
    }
    $('signin-form').addEventListener('submit', function (ev) {
      ev.preventDefault();
      var tok = $('token').value.trim();
      if (tok) signIn(tok);
    });
    $('signout').addEventListener('click', function () { signOut(''); });
    $('upload-form').addEventListener('submit', startUpload);
    $('file').addEventListener('change', function () { pick($('file').files[0] || null); });
    $('pause').addEventListener('click', pause);
    $('resume').addEventListener('click', resume);
    $('mode-cancel').addEventListener('click', function () { resetForm(); msg(''); });

    var drop = $('drop');
    drop.addEventListener('dragover', function (ev) { ev.preventDefault(); drop.classList.add('over'); });
    drop.addEventListener('dragleave', function () { drop.classList.remove('over'); });
    drop.addEventListener('drop', function (ev) {
      ev.preventDefault();
      drop.classList.remove('over');
      var f = ev.dataTransfer.files[0];
      if (!f || state.transfer) return;
      try {
        var dt = new DataTransfer();
        dt.items.add(f);
        $('file').files = dt.files;
      } catch (e) { /* the picker just keeps showing its old name */ }
      pick(f);
    });
    // A file dropped next to the zone would make the browser leave the page to show it.
    window.addEventListener('dragover', function (ev) { ev.preventDefault(); });
    window.addEventListener('drop', function (ev) { ev.preventDefault(); });

    setMode('new');
    var saved = localStorage.getItem(TOKEN_KEY);
    if (saved) signIn(saved);
    else showSignIn();
  }

  init();
})();
