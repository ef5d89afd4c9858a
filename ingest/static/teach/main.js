// The teacher page (/teach): sign in with an API token, upload over tus (resumable: a dropped connection
// is retried, a reloaded page continues when the same file is picked again), follow the transcode,
// preview the result, and manage the teacher's lectures. The parts: common.js (state, helpers, API),
// upload.js, follow.js and lectures.js; this module signs in and out and wires up the page.
import { $, state, say, msg, api, whenSignedOut } from './common.js';
import { setMode, pick, startUpload, pause, resume, resetForm, stopTransfer } from './upload.js';
import { unfollow } from './follow.js';
import { refreshCourses, refreshList, clearList } from './lectures.js';

var TOKEN_KEY = 'lectern.token';

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
  stopTransfer('');
  unfollow();
  clearList();
  state.token = '';
  state.signedIn = false;
  localStorage.removeItem(TOKEN_KEY);
  resetForm();
  showSignIn();
  say($('signin-msg'), why || '', why ? 'err' : '');
}

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

whenSignedOut(signOut);
init();
