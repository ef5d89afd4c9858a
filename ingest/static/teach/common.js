// Shared by the teacher page's modules: the page's state, DOM helpers, formatting and the API client.
// Text from the server only ever goes into the page through textContent.

export var $ = function (id) { return document.getElementById(id); };

export var state = {
  token: '',
  signedIn: false,
  lectures: [],
  rows: new Map(),       // lecture id -> row elements
  courses: new Map(),    // course id -> title
  mode: { kind: 'new' }, // new | replace (lecture) | resume (lecture, previous tus upload or uploadUrl)
  file: null,
  resumeCheck: Promise.resolve(),
  pickGen: 0,
  transfer: null,        // the running tus upload
  followed: null,        // the lecture whose transcode the job card shows
  hls: null,
  listTimer: 0,
};

var onSignedOut = function () {};

// signedOut tells the page that the token stopped working; main.js decides what that does.
export function signedOut(why) { onSignedOut(why); }

export function whenSignedOut(fn) { onSignedOut = fn; }

export function el(tag, className, text) {
  var e = document.createElement(tag);
  if (className) e.className = className;
  if (text != null) e.textContent = text;
  return e;
}

export function button(label, onClick, className) {
  var b = el('button', className || 'quiet', label);
  b.type = 'button';
  b.addEventListener('click', onClick);
  return b;
}

export function say(node, text, kind) {
  node.textContent = text || '';
  node.className = kind === 'err' ? 'err' : kind === 'ok' ? 'ok' : 'muted';
}

export function msg(text, kind) { say($('msg'), text, kind); }

export function fmtBytes(n) {
  if (n < 1e6) return (n / 1e3).toFixed(0) + ' kB';
  if (n < 1e9) return (n / 1e6).toFixed(1) + ' MB';
  return (n / 1e9).toFixed(2) + ' GB';
}

export function fmtDuration(s) {
  s = Math.max(0, Math.round(s));
  if (s < 60) return s + ' s';
  if (s < 3600) return Math.floor(s / 60) + ' min ' + String(s % 60).padStart(2, '0') + ' s';
  return Math.floor(s / 3600) + ' h ' + String(Math.floor(s / 60) % 60).padStart(2, '0') + ' min';
}

export function percent(part, whole) { return whole > 0 ? Math.floor(1000 * part / whole) / 10 : 0; }

export function enc(s) { return encodeURIComponent(s); }

// scrollTo brings section id to the top: smoothly, unless the reader asked the system for less motion.
export function scrollTo(id) {
  var still = window.matchMedia && window.matchMedia('(prefers-reduced-motion: reduce)').matches;
  $(id).scrollIntoView({ behavior: still ? 'auto' : 'smooth', block: 'start' });
}

function ApiError(status, code, message) {
  this.status = status;
  this.code = code;
  this.message = message;
}
ApiError.prototype = Object.create(Error.prototype);

export async function api(method, path, body, contentType) {
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
    if (res.status === 401 && state.signedIn) signedOut('Your token is no longer accepted (' + err.message + '). Sign in again.');
    throw err;
  }
  return j;
}
