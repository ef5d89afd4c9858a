// The teacher's lectures: the list with its actions (rename, captions, replace, delete) and the
// unfinished uploads.
import { $, state, el, button, say, fmtBytes, fmtDuration, percent, enc, scrollTo, api } from './common.js';
import { follow, unfollow } from './follow.js';
import { replace, continueWith, storedUploads, forgetUploads, stopTransfer } from './upload.js';

export async function refreshCourses() {
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

export async function refreshList() {
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

export function describe(l) {
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

export function updateRow(l) {
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
  stopTransfer(l.id);
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

// clearList forgets the signed-out teacher's lectures.
export function clearList() {
  clearTimeout(state.listTimer);
  state.lectures = [];
  state.rows.clear();
  $('lectures').textContent = '';
  $('unfinished').textContent = '';
  $('unfinished-card').hidden = true;
}
