// Package cdn is Lectern's edge: a caching reverse proxy that sits in front of any HTTP upstream (the
// origin, or another edge) and serves students from memory.
//
// # Cache semantics
//
// The edge is a shared cache in the sense of RFC 9111, reduced to what HLS delivery needs today:
//
//   - Only GET and HEAD use the cache. HEAD is answered from a stored GET response; a HEAD miss is
//     forwarded as HEAD and not stored. Other methods are forwarded untouched, and a successful unsafe
//     method (POST, PUT, DELETE, PATCH) invalidates the stored response for its URL.
//   - The cache key is the URL path and query, without CMCD data: CMCD= query arguments (CTA-5004,
//     which players fill with per-request buffer and throughput figures) are removed, the rest of the
//     query kept in its order and spelling, and the upstream is sent the same stripped URL. CMCD
//     request headers (CMCD-Request and the like) are forwarded; like any header they are not part of
//     the key. Requests do not differ by method, host or headers, except through Vary: one variant per
//     key is kept, and a request whose Vary'd headers differ from the stored variant is a miss that
//     replaces it.
//   - A response is stored only when it has a freshness lifetime and carries none of no-store,
//     no-cache, private, Set-Cookie or Vary: *. A response to a request with Authorization is stored
//     only when it says public, s-maxage or must-revalidate. The lifetime is explicit when the
//     response has s-maxage, else max-age, else Expires minus Date (an invalid Expires means already
//     stale). Without any of them, a response with a heuristically cacheable status (RFC 9110 §15.1)
//     and a Last-Modified before its Date gets a heuristic lifetime (RFC 9111 §4.2.2): a tenth of
//     Date minus Last-Modified, at most a day. Its age counts exactly as for explicit freshness
//     (upstream Age included), so an upstream Age larger than the heuristic makes it stale at once.
//     Stored statuses are 200, 203, 204, 300, 301, 302, 307, 308, 404, 405, 410 and 414 (302 and 307
//     only with explicit freshness, as they are not heuristically cacheable; 501 is, but no 5xx is
//     stored): a redirect (the origin's entry point to a lecture's newest version) is served from
//     memory with its Location, and a 404 the upstream marks fresh is negative caching.
//   - CDN-Cache-Control (RFC 9213) targets CDN caches such as this one: when a response has a valid,
//     non-empty one, its directives replace Cache-Control and Expires for every decision above, so
//     an upstream can give browsers max-age=5 and edges max-age=30 (the edge can be purged, browsers
//     cannot). It is parsed as a Structured Fields Dictionary; an invalid one is ignored. Clients get
//     Cache-Control unchanged, and CDN-Cache-Control too, for any CDN cache after this one.
//   - Age is the upstream's Age plus the request's round trip plus the time since the response
//     arrived. Date is not used for age, so a skewed upstream clock cannot make entries stale early.
//   - A fresh entry is served with Age. A stale one is revalidated with If-None-Match and
//     If-Modified-Since: a 304 refreshes its headers and freshness, a 200 replaces it.
//   - Stale entries are served only as RFC 5861 allows, reading stale-while-revalidate=N and
//     stale-if-error=N from the governing field (CDN-Cache-Control when it has a valid one, else
//     Cache-Control), and never when that field says must-revalidate, proxy-revalidate or s-maxage
//     (s-maxage carries proxy-revalidate's meaning for a shared cache, RFC 9111 §5.2.2.10, so
//     "s-maxage=10, stale-while-revalidate=30" gets no stale serving here). Within N seconds past
//     its freshness, an entry under stale-while-revalidate is served at once, with its true Age
//     (X-Cache: STALE), and a background fill revalidates it; that fill is the key's one fill, so
//     further stale requests start no other, and requests that cannot use the entry wait for it. A
//     request with Authorization, which never leads a shared fill, revalidates in line instead.
//     Under stale-if-error, when a fill's upstream cannot be reached or answers 500, 502, 503 or
//     504, the stale entry (within N seconds past its freshness) is served instead of the error, to
//     the fill's leader and its waiters, and stays stored; the next request tries the upstream again.
//   - Client conditionals (If-None-Match, If-Modified-Since, If-Range) and a Range are answered from the
//     stored object (304, 206, 416) by http.ServeContent. Fills never forward them: the edge always
//     fetches the whole object, so one fill serves every later range.
//   - Request cache directives (no-cache, max-age=0) are ignored, as RFC 9111 permits: a reload in one
//     browser must not turn into origin traffic for a whole region.
//
// # Request collapsing
//
// Concurrent misses of one key make exactly one upstream fetch (a fill); the others wait for it, each
// bounded by its own request context. The fill runs detached from the client that started it, so that
// client going away does not fail the others, and is bounded by Config.FillTimeout instead. A failed
// fill fails every waiter at once with 502 (unless stale-if-error lets them all have the stale
// entry) and is not cached. A stale-while-revalidate revalidation is a fill of its own, run in the
// background with no client, which waiters join like any other. Waiters are handed the response only
// when it is fit to share: storable, or an upstream 5xx that is not private (even a no-store one,
// since it is never kept beyond the fill), which fails them fast. Otherwise, as for an uncacheable
// or oversized response, each waiter makes its own request (X-Cache: BYPASS). Requests with
// Authorization never join or lead a collapsed fill.
//
// In this version waiters receive the complete object; streaming a fill to its waiters as it arrives
// is later work.
//
// # Memory tier
//
// Entries live in an otter W-TinyLFU cache bounded in bytes (body plus headers plus a fixed overhead
// per entry). Objects larger than Config.MaxObjectBytes are streamed from upstream to the client
// without being stored: the Content-Length decides up front; a response of unknown length is
// buffered up to the limit and streamed onward once it passes it.
//
// # Headers
//
// Hop-by-hop headers (Connection and the headers it names, Keep-Alive, TE, Trailer,
// Transfer-Encoding, Upgrade, Proxy-*) are dropped in both directions. Via: 1.1 lectern-edge is added
// in both directions, and X-Cache says how a response was produced: HIT (fresh entry), REVALIDATED
// (stale entry refreshed by a 304), STALE (stale entry served under stale-while-revalidate or
// stale-if-error), MISS (fetched by a fill) or BYPASS (not eligible for the cache).
//
// Cache-Status (RFC 9211) says the same in the standard's terms, as a member "lectern-edge" appended
// after any members the upstream sent (a parent edge's, say), on every response that comes from the
// upstream or the cache:
//
//	lectern-edge; hit; ttl=53                          a fresh entry (ttl: seconds of freshness left)
//	lectern-edge; hit; ttl=-5; detail=stale-while-revalidate
//	lectern-edge; fwd=uri-miss; fwd-status=200; stored; ttl=60
//	lectern-edge; fwd=stale; fwd-status=304; stored; ttl=60   a revalidated entry
//	lectern-edge; fwd=stale; fwd-status=503; ttl=-10; detail=stale-if-error
//	lectern-edge; fwd=uri-miss; fwd-status=200; stored; collapsed; ttl=60   answered by another's fill
//	lectern-edge; fwd=uri-miss; fwd-status=200; collapsed=?0   waited, could not share, went itself
//	lectern-edge; fwd=method; fwd-status=201           a method the cache does not answer
//
// fwd is uri-miss (nothing stored for the key), vary-miss (another variant stored) or stale; stored
// is absent when the response was not kept; fwd-status is absent when the upstream gave no answer.
// Answers the edge makes up itself (its 502, the 403 of signed playback, 405, the probes and the
// purge endpoint) describe no upstream or stored response and carry no member, as RFC 9211 §2 asks.
//
// # Purge
//
// [Edge.Purge] drops cached objects by prefix ("/hls/LECTURE/", ending in "/") or by exact path (with
// any query string), for ingest when a lecture is deleted or replaced. Remote edges accept it as
// POST /_lectern/purge with Authorization: Bearer Config.PurgeSecret and a JSON body
// {"prefix": "/hls/ID/"} or {"path": "/hls/ID/v1/master.m3u8"}, answering {"purged": N}; with no
// secret configured the endpoint is 404. The protocol lives in package internal/purge, which the
// origin serves too. [HTTPPurger] and [LocalPurger] are the [Purger]s ingest calls.
// A purge also detaches fills in flight for its keys: what they fetched is still handed to the
// requests already waiting, but never stored, and later requests start a new fill.
//
// # Signed playback
//
// With Config.PlaybackKeys set, students' requests carry a token (package internal/playtoken) as a
// path segment: /s/{token}/hls/{lecture}/... The token is verified for that lecture and the current
// time, then removed: the request is cached and forwarded as /hls/{lecture}/..., so every student
// shares one cached copy and the upstream never sees a token. Any failure is one plain 403
// ("forbidden", no detail), and so is a plain /hls/ request. Only GET, HEAD and OPTIONS are accepted
// under /s/. Without keys, /s/ is 404 and /hls/ is served to anyone, as a plain shared cache. Logs show
// the tokenless path.
//
// # Credential to the origin
//
// A keyed origin serves unsigned /hls/ paths only to its edges. With Config.OriginSecret set, every
// request the edge sends upstream (fills, revalidations, pass-through, the readiness probe) carries
// Authorization: Bearer OriginSecret, replacing whatever the client sent, so a client's guess never
// reaches the origin as a credential. The cache rules above still read the client's own request: the
// credential neither makes responses private to one client nor stops collapsing. The secret is never
// logged. Edges of a tiered deployment fetching from a keyed parent edge are later work.
//
// # Probes and metrics
//
// /healthz answers 200 while the process runs; /readyz answers 200 while the upstream's /healthz does.
// [Stats] holds plain atomic counters; [Edge.Collector] exports them to Prometheus.
package cdn
