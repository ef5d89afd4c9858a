// Package origin serves published HLS objects from object storage over HTTP to the edges (and, with a
// token, to students directly), in the form caches can keep as long as possible, reading storage as
// little as it can and never falling over.
//
// # Requests
//
// Objects are GET or HEAD /hls/{lecture}/v{n}/{path...}, read from the storage key of the same name.
// The path is checked before storage is touched: a lecture id is [a-z0-9]+, a version is v[1-9][0-9]*,
// and every further segment is non-empty, made of [A-Za-z0-9._-] and does not start with a dot (so
// "." and ".." never reach storage), and nothing in it may be percent-encoded (so one object has one
// URL, and one entry in every cache). Anything else is a 404, the same answer as a missing object, so
// probing the key space learns nothing and costs no storage call.
//
// /hls/{lecture}/master.m3u8 is the one unversioned entry point: a 302 to v{n}/master.m3u8, n the
// newest version whose master playlist is stored (publishing uploads the master last, so that version
// is complete). The Location is relative, so a signed /s/{token}/ prefix carries over.
//
// /healthz answers 200 while the process runs; /readyz answers 200 only while storage answers a Ping.
// Neither is limited or needs a credential. POST /_lectern/purge (with Config.PurgeSecret) drops what
// the origin holds in memory for a lecture, the same request the edges accept.
//
// # Caching
//
// Everything under v{n}/ is immutable once published (a new upload makes v{n+1}), so every object is
// served with Cache-Control: public, max-age=31536000, immutable, a strong ETag taken from storage and
// Last-Modified. Conditional requests are answered from those (304, or 412 for If-Match), a single byte
// range is a 206 (416 when unsatisfiable), and a multi-range or malformed Range header is ignored and
// the whole object sent, as RFC 9110 allows. Nothing varies by request header, so there is no Vary.
//
// The entry point is the only answer that changes when a lecture is replaced: browsers keep it 5 s
// (Cache-Control: max-age=5, stale-while-revalidate=30) and edges 30 s (CDN-Cache-Control, RFC 9213:
// edges are many and close to the origin, browsers are not). A 404 is public for 10 s: long enough to
// absorb a burst of requests for a bad link, short enough that an object published a moment later
// shows up. A 503 or 403 is no-store.
//
// # Shield
//
// A whole-object GET that misses the hot cache joins the one storage read in progress for its key, or
// starts it. The read runs apart from any client (the first one leaving does not fail the others) and
// fills a buffer that every waiting request streams from as the bytes arrive: N concurrent misses cost
// one storage read, and the first byte reaches every waiter as soon as storage sends it. The finished
// object goes into the hot cache, an otter (W-TinyLFU) cache bounded in bytes, which keeps what many
// edges ask for (the newest segments and playlists of the lectures playing now) over one-off reads. A
// missing object is remembered for the 404's 10 s too. HEAD, ranged GETs and objects larger than
// Config.MaxHotObject read storage per request.
//
// # Overload
//
// Storage calls take one of Config.MaxStorageReads slots. When all are busy a request waits in a queue
// of at most Config.MaxQueue for at most Config.QueueTimeout, then gets 503 with Retry-After: 1; a full
// queue answers at once. Fills in progress buffer at most Config.MaxFillBytes together (beyond it, 503),
// so memory is bounded by the hot cache, that budget and the connections. After five storage failures
// in a row a breaker answers misses 503 (Retry-After: 2) without calling storage for a second, then
// lets calls through again; the first success closes it. Hot hits are served throughout, and service
// returns by itself when storage does.
//
// # Access
//
// With Config.PlaybackKeys set, students may come directly with /s/{token}/hls/{lecture}/... (the
// token design of internal/playtoken); their answers are Cache-Control: private, because a shared cache
// that does not understand tokens must not go on serving a token URL after the token expires. Plain
// /hls/ requests then need an edge's credential (Authorization: Bearer one of Config.EdgeSecrets):
// edges verify students' tokens, strip them, and fetch with their own credential, so the origin never
// sees student tokens from edges. Every failure is the same bare 403, and tokens never reach the logs.
//
// # Metrics
//
// [Stats] holds plain atomic counters; [Server.Collector] exports them to Prometheus (requests by kind
// and status, bytes out, storage calls and their latency, hot-cache hits, misses and size, collapsed
// requests, storage slots in use, 503s by reason, 403s) without registering anything globally.
package origin
