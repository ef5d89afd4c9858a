// Package cdn is Lectern's edge: a caching reverse proxy that sits in front of any HTTP upstream (the
// origin, or another edge) and serves students from memory, and from disk when it has a disk tier.
// It also holds the router that sends each student to an edge (see Router).
//
// # Cache semantics
//
// The edge is a shared cache in the sense of RFC 9111, reduced to what HLS delivery needs today:
//
//   - Only GET and HEAD use the cache. HEAD is answered from a stored GET response; a HEAD miss is
//     forwarded as HEAD and not stored, and a HEAD that finds a stale entry revalidates it like a
//     GET (a conditional GET upstream, RFC 9111 §4.3.5), then is answered from it. Other methods
//     are forwarded untouched. A 2xx or 3xx answer to any method but GET, HEAD, OPTIONS and TRACE
//     (the safe ones; RFC 9111 §4.4 counts methods of unknown safety as unsafe) invalidates the
//     stored response for its URL, and those for the URLs its Location and Content-Location name
//     when they have the request's own origin (scheme, host and port; relative ones always do).
//     An error answer invalidates nothing.
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
//     only with explicit freshness, as they are not heuristically cacheable; 206 and 501 are, but
//     fills never ask for ranges and no 5xx is stored): a redirect (the origin's entry point to a lecture's newest version) is served from
//     memory with its Location, and a 404 the upstream marks fresh is negative caching.
//   - CDN-Cache-Control (RFC 9213) targets CDN caches such as this one: when a response has a valid,
//     non-empty one, its directives replace Cache-Control and Expires for every decision above, so
//     an upstream can give browsers max-age=5 and edges max-age=30 (the edge can be purged, browsers
//     cannot). It is parsed as a Structured Fields Dictionary; an invalid one is ignored. Clients get
//     Cache-Control unchanged, and CDN-Cache-Control too, for any CDN cache after this one.
//   - Age is the upstream's Age plus the request's round trip plus the time since the response
//     arrived. Date is not used for age, so a skewed upstream clock cannot make entries stale early.
//   - A fresh entry is served with Age. A stale one is revalidated with If-None-Match and
//     If-Modified-Since: a 304 refreshes its headers and freshness, a 200 replaces it. A 304 whose
//     strong ETag is not the stored one's updates nothing (§4.3.4): the object is fetched again whole.
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
//     An entry that must not be served stale and cannot be revalidated, because the upstream cannot
//     be reached or does not answer in time, gets the edge's own 504 (RFC 9111 §5.2.2.2); an
//     upstream's 5xx answer is passed on as it is.
//   - Client conditionals (If-None-Match, If-Modified-Since, If-Range) and a Range are answered from the
//     stored object (304, 206, 416) by http.ServeContent. Fills never forward them: the edge always
//     fetches the whole object, so one fill serves every later range. A Range in a unit other than
//     bytes is ignored (RFC 9110 §14.2) and the whole object sent.
//   - Request cache directives are advisory (RFC 9111 §5.2.1). only-if-cached is honoured: a
//     request that no fresh entry (or one under stale-while-revalidate) can answer gets the edge's
//     own 504 without the upstream being asked. So is no-store: such a request is answered from a
//     fresh entry as usual, and otherwise forwarded as it is (no fill), its answer not stored. Those that would send a request upstream in spite
//     of a fresh entry (no-cache, max-age, min-fresh, Pragma: no-cache) are ignored: a reload in
//     one browser must not turn into origin traffic for a whole region. max-stale is ignored too:
//     stale entries are served only as the upstream allows.
//
// # Request collapsing
//
// Concurrent misses of one key make exactly one upstream fetch (a fill); the others join it as its
// waiters. The fill runs detached from the client that started it (its leader), so that client
// going away does not fail the others, and is bounded by Config.FillTimeout instead (headers and
// body). A stale-while-revalidate revalidation is a fill of its own, run in the background with no
// client, which waiters join like any other. Requests with Authorization never join or lead a
// collapsed fill.
//
// Config.NoCollapse (lectern edge --collapse=false) turns collapsing off, for benchmarks and
// diagnosis: every miss then makes its own fill, which still streams and stores as below.
//
// A fill streams. As soon as the upstream's response headers are in and show a response fit to
// share (storable, or an upstream 5xx that is not private, even a no-store one, since it is never
// kept beyond the fill) whose Content-Length is within Config.MaxObjectBytes, they are published
// to the waiters, and a goroutine of the fill's own reads the body into one buffer. The leader and
// every waiter write the headers, with that Content-Length, then the body from the buffer as it
// grows, each at its own pace and woken by the fill (no polling); a request that joins in the
// middle starts with what is there already, and a slow client delays only itself. A waiter whose
// Vary'd headers ask for another variant makes its own request instead. A request with a Range or
// conditionals waits for the whole object and is answered from it by http.ServeContent, as from
// the cache. When the body is complete, the buffer becomes the cache entry without a copy (memory
// tier, then the disk tier's write, unless a purge ran meanwhile); its last bytes reach the
// streaming requests only once it is stored, so a client that has the whole body finds it cached.
// On a streamed response, Cache-Status says stored when the fill means to store it.
//
// A complete response (a revalidation's 304, stale-if-error, or a body of unknown length, which is
// read whole, up to MaxObjectBytes, before anyone is answered, since only its end tells whether it
// fits) is handed to every waiter at once. A response not fit to share (uncacheable, larger than
// MaxObjectBytes) goes to the leader alone, streamed as it arrives, and each waiter makes its own
// request as soon as the headers show it (X-Cache: BYPASS, collapsed=?0).
//
// Failed fills are not cached and fail fast. A fill that fails before its headers answers the leader
// and every waiter at once (unless stale-if-error lets them all have the stale entry): with 502 Bad
// Gateway when the upstream could not be reached or hung up, 504 Gateway Timeout when it did not
// answer within FillTimeout (or the transport's own timeouts). Either answer says Cache-Control:
// no-store. A fill that fails
// in the middle of the body (a reset, a body shorter than its Content-Length, FillTimeout) stores
// nothing: the requests streaming it have their connection dropped, so that their clients see a
// truncated response, never a complete-looking one, and those that had not begun (waiting for the
// whole object) get 502 or 504. The next request starts a new fill. A response that goes to one
// client alone (uncacheable, oversized, pass-through) is cut off the same way when its upstream
// breaks off, chunked or not.
//
// Waiting is bounded. A fill takes at most Config.MaxWaiters waiters (default 10000); a request
// beyond that is answered 503 with Retry-After: 1 at once. A waiter waits at most
// Config.WaitTimeout (default 5 s) for its response to begin (the headers, or the whole response
// when it cannot be streamed), then is answered 504 with Retry-After: 1 while the fill goes on; a
// waiter whose client leaves is gone at once. Each frees its place. Both refusals carry a
// Cache-Status member saying why (see Headers); [Stats] counts them in CollapseRefused and
// CollapseTimeouts.
//
// Memory: a fill's buffer is allocated to the upstream's Content-Length, so it holds at most
// MaxObjectBytes, and it becomes the cached body. What fills hold outside the memory tier's bound is
// therefore at most MaxObjectBytes per fill in progress, and fills are bounded in number: a client's
// miss holds one of Config.MaxFills slots (see Overload) until its fill ends, the body read to the
// end even when the leader's client has left, and a stale-while-revalidate revalidation, which
// takes no slot, is one per stale key at most. There is no separate byte budget. A purged fill's
// buffer stays alive until the requests streaming it finish.
//
// # Memory tier
//
// Entries live in an otter W-TinyLFU cache bounded in bytes (body plus headers plus a fixed overhead
// per entry). Objects larger than Config.MaxObjectBytes are streamed from upstream to the client
// without being stored: the Content-Length decides up front; a response of unknown length is
// buffered up to the limit and streamed onward once it passes it.
//
// # Disk tier
//
// With Config.DiskDir set, a disk tier bounded by Config.DiskBytes sits under the memory tier. A
// GET or HEAD looks in memory, then on disk, then fills; an entry read from disk is put back in
// memory (unless a purge ran meanwhile) and, when fresh, answered with X-Cache: HIT and
// Cache-Status "lectern-edge; hit; ttl=N; detail=disk" (a stale one takes the usual stale paths).
// Every response stored in memory (a fill, a revalidation) is also written to disk unless its file
// would exceed DiskBytes, in the background: the fill only hands the entry over (the file is
// written by a goroutine of its own), at most 32 writes run at once, and a write beyond that is
// skipped and counted.
//
// Each key has one file, named by the hex SHA-256 of the key under a directory named by its first
// two hex digits. A file holds a fixed prefix (magic, format version, lengths), a JSON meta (the key,
// status, stored headers, response time, initial age, lifetime, Vary'd headers and the request's
// values for them), the body, and a CRC32C of everything before it. It is written as a temp file in
// the same directory, synced, and renamed into place, so a reader sees the old file or the new one,
// never a part. A read checks the length, the checksum and the key; a file that fails (truncated,
// damaged, another key's file under this name) is deleted, counted in Stats.DiskCorrupt, never
// served, and the request is a miss that refetches the object. The directory itself is not synced
// after the rename: a crash may lose the newest files, which are then fetched again.
//
// An in-memory index (key, size, recency) serves lookups, purges and the byte bound. At start-up
// it is rebuilt from the directory: temp files are deleted, every entry's prefix and meta are read
// (not its body) and a file whose lengths do not add up to its size, whose meta does not parse or
// whose key does not hash to its name is deleted and counted; the rest are ordered by modification
// time, which each disk read refreshes. Beyond DiskBytes the least recently used files are deleted
// (Stats.DiskEvictions). Recency is that of disk reads and writes: an object served from memory
// alone ages on disk and may be evicted there first. A new Edge on the same directory serves what
// the last one stored, with its age and freshness carried over; [Edge.Close] waits for the writes
// in flight. The directory belongs to one edge at a time.
//
// Purges and invalidations reach the disk tier too: [Edge.Purge] deletes the files of matching keys
// from the index (no walk of the directory), and a write is renamed into place only if no purge has
// run since its fill read the purge generation, and no later write, invalidation or purge of its key
// has replaced or cancelled it; otherwise its temp file is deleted. So a purged object is not served
// from disk again, by this edge or after a restart.
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
//	lectern-edge; hit; ttl=53; detail=disk             a fresh entry read from the disk tier
//	lectern-edge; hit; ttl=-5; detail=stale-while-revalidate
//	lectern-edge; fwd=uri-miss; fwd-status=200; stored; ttl=60
//	lectern-edge; fwd=uri-miss; fwd-status=200; stored; ttl=60; detail=peer   fetched from a peer
//	lectern-edge; fwd=stale; fwd-status=304; stored; ttl=60   a revalidated entry
//	lectern-edge; fwd=stale; fwd-status=503; ttl=-10; detail=stale-if-error
//	lectern-edge; fwd=uri-miss; fwd-status=200; stored; collapsed; ttl=60   answered by another's fill
//	lectern-edge; fwd=uri-miss; fwd-status=200; collapsed=?0   waited, could not share, went itself
//	lectern-edge; fwd=method; fwd-status=201           a method the cache does not answer
//	lectern-edge; fwd=uri-miss; collapsed=?0; detail=too-many-waiters   503: Config.MaxWaiters
//	lectern-edge; fwd=uri-miss; collapsed=?0; detail=wait-timeout       504: Config.WaitTimeout
//
// fwd is uri-miss (nothing stored for the key), vary-miss (another variant stored) or stale; stored
// is absent when the response was not kept; fwd-status is absent when the upstream gave no answer.
// Answers the edge makes up itself (its 502 and 504, the 403 of signed playback, 405, the probes
// and the purge endpoint) describe no upstream or stored response and carry no member, as RFC 9211
// §2 asks (and peers tell them apart from the upstream's answers by that; see Peer group). The two
// refusals of a waiter above are the exception: they say why the request was not collapsed, and,
// having no fwd-status, still count as the edge's own errors for a peer.
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
// # Prefetch
//
// With Config.Prefetch = N, the edge learns each rendition's segment list from the media playlists it
// serves (parsed by internal/hls; relative URIs only) and, when a playlist or one of its segments is
// answered 200, fetches the following N segments into the cache through the ordinary fill path, so a
// student playing in order finds every segment after the first already there, and the fills collapse
// with students' own requests. A CMCD "nor" (next object request) hint, in the CMCD query argument or
// the CMCD-Request header, is fetched too. Prefetch is the first work shed: it runs on at most 4
// slots and a prefetch that finds none free is dropped, not queued. Prefetch fills count as misses;
// lectern_edge_prefetches_total counts them, prefetch_used_total those a client then asked for,
// prefetch_wasted_total those evicted first and prefetch_shed_total those dropped.
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
// # Peer group
//
// The edges of one region form a peer group (Config.Peers, every edge given the same list of base
// URLs, and Config.Self, this edge's entry in it), so that the region fetches each object from the
// upstream once however many edges its students are spread over. Each cache key (the path and
// query above) has an owner among the peers by rendezvous hashing (package internal/rendezvous),
// which every edge computes alike with no coordination; an edge that leaves moves only its own keys,
// to the next-ranked peers.
//
// A fill (a miss, or a stale entry's revalidation, with its conditionals) goes to the peers in the
// key's rank order, down to this edge itself: the owner fetches from the upstream, and a non-owner
// sends the owner a plain GET of the same path and query, marked Lectern-Peer: 1. An edge answers a
// marked request like any client's (from its cache, or through its own collapsed fill) but sends
// its fill to its upstream, never to another peer: a request crosses at most one peer hop, so loops
// are impossible, and the owner's collapsing turns the misses of the whole region into one upstream
// fetch. The owner streams its fill to the peers' requests as to any client; a requesting edge reads
// a body that fits the cache whole before using it (so that a peer dying mid-body is the peer's
// failure, below), and then hands it to its own waiters at once. A marked request does not join a
// fill of this edge that is waiting on a peer: while an edit of the membership has reached one edge
// and not yet another, each may rank the other first for a key, and their fills would wait on each
// other; it fetches from the upstream on its own instead. The marker is not forwarded upstream.
// What a peer answers is stored like an upstream
// response: it carries the upstream's headers with the peer's Age (which counts toward ours), Via
// and Cache-Status member, after which this edge appends its own member with detail=peer:
//
//	lectern-edge; fwd=uri-miss; fwd-status=200; stored; ttl=60                the owner's
//	lectern-edge; fwd=uri-miss; fwd-status=200; stored; ttl=60; detail=peer   ours
//
// A peer that fails is skipped without an error reaching the client: the next-ranked peer is
// asked, and when this edge comes next in the ranking, the upstream. Failing means no connection
// within Config.PeerDialTimeout (250 ms: a peer that is down or unreachable, whose connects hang
// rather than being refused, costs that much and no more), no response headers within
// Config.PeerTimeout (2 s from the start of the request), a body cut short (bodies that fit the cache
// are read before the answer is used, so a peer dying mid-body is still its failure), or an error
// answer of the peer's own making, recognized by the absence of the peer's Cache-Status member (its
// 502 for an unreachable upstream, a 403 for a wrong peer secret) or, for a 5xx, of fwd-status
// naming that status. A 5xx the owner relays from its upstream is the upstream's answer and is
// treated as one (stale-if-error applies), so an origin outage neither marks healthy peers down nor
// multiplies origin requests by the number of peers. A failed peer is marked down for
// Config.PeerDownFor (5 s) and skipped without being tried meanwhile; when the owner dies, the
// next-ranked peer is the owner in everyone's eyes after one failed attempt each, and the region
// fetches each object once again. Requests with the client's own Authorization (whose answers may
// be private) and HEAD misses with nothing stored go straight upstream; pass-through methods are not the group's
// business either.
//
// Prefetch goes through the fill path, so it too asks the owners. An edge does not prefetch after
// answering a peer's request: the edge whose client asked prefetches for it, and the owner's memory
// is not filled with the following segments, which other peers own.
//
// With Config.PeerSecret, peer requests carry Authorization: Bearer PeerSecret in place of
// anything else (never the origin credential), and an edge honours the marker only with that
// secret; the secret is then removed from the request, so the peer's request collapses with
// anonymous clients and its answer is stored. A keyed edge (signed playback) serves the plain /hls/
// path a peer asks for only with the secret: the requesting edge verified its client's token, and
// the owner needs no token of its own. A keyed edge in a group must have a PeerSecret. Without one,
// the marker is taken at its word; all it can do is keep a request from being forwarded to a peer.
//
// A purge reaches the edges of a region one after another, so a peer may still hold what this edge
// has just purged. The edge remembers its purges (ten minutes, at most 1024) and does not use a
// peer's answer for a purged key when its Age (plus the round trip and a second, as Age counts
// whole seconds) reaches back to the purge: it may be the purged object. The upstream is asked
// instead, and the peer is not marked down.
//
// [Stats] counts PeerFetches (not in UpstreamFetches), PeerErrors and PeersMarkedDown.
//
// The membership can change while the edge serves. An edge in Config.DrainingPeers owns no keys:
// they are ranked over the other peers, so its keys go to their next-ranked peers exactly as if it
// had left, and nothing else moves. It is still a member otherwise: it asks the owners for its own
// clients' misses (ranking every owner before itself), and answers the peers that have not seen the
// change yet. Draining is how an edge is taken out (the router sends it no new students either);
// its cache then stops being the region's. [Edge.SetPeers] replaces Config.Peers and
// Config.DrainingPeers at once: the membership is one immutable value behind an atomic pointer, so
// a fill ranks its key over the membership it started with, and requests in flight are neither
// failed nor held back. A peer that stays keeps its down mark. Keys are ranked over the base URLs as
// the lists spell them, so every edge must be given the same spelling.
//
// `lectern edge --peers URL,URL,... --self URL [--peer-secret S]` gives a static group. With
// `--regions FILE --region NAME --self URL` instead, the group is the region's edges in the region
// map (below), and [Edge.FollowRegionMap] applies edits to the file within a second, without a
// restart. Ownership ignores the edges' weights, which are the router's: they size the share of
// students an edge is sent, not of keys.
//
// # Region map
//
// The region map is a JSON file, the router's configuration and the edges' peer groups at once
// (read by [LoadRegionMap], followed by [WatchRegionMap]). Lectern ships the twelve regions (see
// [DefaultRegionMapJSON], cdn/regions.default.json) with their neighbours, no client networks and
// one placeholder edge, http://127.0.0.1:8082 in seoul, for a single machine:
//
//	{
//	  "default": "seoul",
//	  "regions": {
//	    "seoul": {
//	      "edges": [
//	        {"url": "http://10.1.0.2:8082"},
//	        {"url": "http://10.1.0.3:8082", "weight": 2},
//	        {"url": "http://10.1.0.4:8082", "drain": true}
//	      ],
//	      "prefixes": ["10.1.0.0/16", "2001:db8:1::/48"],
//	      "neighbours": ["gyeonggi-elementary-1", "incheon-chungbuk"],
//	      "schools": ["Seoul Dongil Middle School", "7010057"]
//	    },
//	    "busan-ulsan": {"edges": [], "neighbours": ["gyeongnam"]}
//	  }
//	}
//
// Regions are keyed by name (lowercase letters, digits and hyphens: a DNS label). An edge has a base
// URL (http or https, no query), a weight (its share of the region's capacity, above 0, default 1)
// and drain (default false). prefixes are the client networks the region serves, in CIDR notation
// without host bits; neighbours are the regions that serve its students when it cannot, nearest
// first; default is the region of clients in no region's networks. schools are the schools the
// region serves, spelled as teachers are registered with them (`lectern teacher add NAME --school
// SCHOOL`): ingest, given the same file, puts the region of a lecture's teacher's school in the
// lecture's playback tokens, and the router takes a token's region before the client's network.
// Edges, prefixes and schools are optional, so a region can be declared before it has any. Any object may carry a "comment" string.
//
// The file is checked whole and refused whole, with every fault listed by the path of the value
// at fault and what to write instead (regions.seoul.edges[1].weight: 0: a weight ... must be above
// 0; to take an edge out of service, set "drain": true): a syntax error (by line and column), an
// unknown or repeated field, a wrong type, a missing url or default, a region name that is not a
// DNS label, an edge listed twice (in one region or two; spellings that differ only in case, a
// default port or a trailing slash count as one), a weight not above 0, a prefix that is not CIDR,
// has host bits set or is in two regions, a school that is empty, has spaces around it or is in
// two regions, a neighbour that is not a region or is the region itself.
// Overlapping prefixes of different lengths are allowed, for the router to resolve by longest match.
// A followed file is re-read every second and compared by content (a Kubernetes ConfigMap update
// swaps a symlink, which a watch on the old file would miss); an edit that still does not parse at
// the next read (the first may have caught it mid-write), or that drops the edge or its region, is
// logged once and the map in use stays.
//
// # Router
//
// [Router] (`lectern router`) answers a student's playback URL, /s/{token}/hls/{lecture}/... or
// /hls/{lecture}/..., with a 302 to the same path and query on an edge, token kept (the edge verifies
// it), Cache-Control: no-store. With ?format=json or Accept: application/json it answers
// {"edge": ..., "region": ..., "url": ..., "fallback": true|absent} instead, for apps. A player loads the
// multivariant playlist through the router; the playlist's relative URIs then resolve on the edge.
//
// The student's region is, in order: the region claim of the playback token (verified with
// RouterConfig.PlaybackKeys; ingest, given the same map, sets it to the region whose "schools" list
// the school of the lecture's teacher), when it names a region of the map; the region whose
// prefixes hold the client's address, longest prefix first; the map's default.
// The client's address is the connection's peer, or, from a proxy in RouterConfig.TrustForwardedFor,
// the rightmost X-Forwarded-For address that is not a trusted proxy. Without playback keys tokens are
// not read. A token that does not verify is 403 (one answer for every reason, as on the edge); a path
// that is no playback URL is 404; a method other than GET or HEAD is 405.
//
// Within the region the edge is chosen by weighted rendezvous hashing on the lecture id: each edge
// scores -weight/ln(u), u uniform from the hash of its URL and the lecture, so a lecture ranks the
// edges the same way for every student (its segments stay hot on its first edges) and an edge ranks
// first for a share of lectures proportional to its weight. Load is bounded (consistent hashing with
// bounded loads): each edge counts the students sent to it, halved every RouterConfig.SessionHalfLife
// (1 minute), so the count weighs the sessions of the last minutes; an edge may hold
// ceil(LoadFactor x (the region's sessions + 1) x its weight / the region's weights) with LoadFactor
// 1.25, and a student who would pass that goes to the next edge of the lecture's ranking (a spill).
// A student is counted once per playlist (.m3u8) asked of the router, which a player does once per
// playback start (and again after a failure); other objects asked of it, the course page's posters
// or the player's chapters and captions, are routed the same way without counting as a session.
//
// Edges that drain get no students. Every RouterConfig.ProbeInterval (2 s) each edge's /readyz is
// asked (16 at a time, 1 s timeout); DownAfter (2) failures in a row, errors and timeouts alike, take
// the edge out of service, one 2xx answer puts it back. The passive signal is the players': a player
// that could not reach an edge asks the router again with failed={edge URL}; that answer leaves the
// edge out, and the edge is probed at once (at most once a second per edge, since anyone can send
// the argument), out of service if that probe fails too. A region with no edge in service sends its
// students to its neighbours' edges, nearest first (not the neighbours' neighbours); with none there
// either the answer is 503 with Retry-After: 5.
//
// The map is compiled into an immutable table behind an atomic pointer: [Router.SetRegionMap] (and
// [Router.FollowRegionMap], which follows the file like an edge does) builds the next table and swaps
// it in, so a request decides on one table, never waits for an edit and never fails because of one.
// Edges keep their health and counts across edits (they are known by canonical URL); an edge an edit
// adds is out of service until its first probe, made at once, answers; at start-up every edge is in
// service until its probes say otherwise. Metrics: lectern_router_decisions_total{region,edge},
// lectern_router_edge_sessions{region,edge}, lectern_router_edge_up{region,edge},
// lectern_router_unhealthy_edges{region} (not draining, out of service), lectern_router_spills_total,
// lectern_router_fallbacks_total, lectern_router_no_edge_total, lectern_router_denied_total,
// lectern_router_failure_reports_total and lectern_router_region_source_total{source} (token, address,
// default). A decision costs about 0.3 µs with 186 edges in twelve regions (docs/benchmarks.md).
//
// # Probes and metrics
//
// /healthz answers 200 while the process runs; /readyz answers 200 while the upstream's /healthz does.
// [Stats] holds plain atomic counters; [Edge.Collector] exports them to Prometheus. Per tier
// (label tier="memory" or "disk"), lectern_edge_tier_hits_total and lectern_edge_tier_misses_total
// count GET and HEAD hits and misses, and the _bytes_total series the body bytes written for them:
// a request counts as a hit in the tier that had its fresh entry and as a miss in each tier it
// looked in before (both, when it went upstream). The disk tier adds lectern_edge_disk_bytes,
// lectern_edge_disk_entries, lectern_edge_disk_evictions_total, lectern_edge_disk_corrupt_total and
// counters of failed and skipped writes. lectern_edge_upstream_seconds and lectern_edge_peer_seconds
// are histograms of the time to an upstream's or a peer's response headers.
//
// # Overload
//
// Two loads are counted: client GET and HEAD requests being answered (bounded by Config.MaxRequests)
// and upstream fills in progress (Config.MaxFills). Work is admitted by priority, lowest first:
//
//   - prefetch, only while both loads are under half of their bounds;
//   - the first request of a new session, while both are under three quarters;
//   - everything else, up to the bounds: the playlists and next segments of sessions already playing.
//
// A session is its CMCD session id (sid, CTA-5004, from the CMCD query argument or the CMCD-Session
// header): the first request with an id this edge has not admitted in the last two minutes is a new
// session's, later ones are playing. Without CMCD, a multivariant playlist (.../master.m3u8), which a
// player loads once at start, counts as a new session and any other request as playing. A request
// from a peer of the group counts as playing (it is another edge's client's miss).
//
// A shed request gets 503 with Cache-Control: no-store and Retry-After (2 s for a new session, 1 s
// for a playing one); nothing about it is stored. Hits only count against MaxRequests; a request that
// joins a fill already in progress costs the upstream nothing and is never refused for fills (only
// Config.MaxWaiters bounds those). A shed
// prefetch is simply not made. lectern_edge_shed_total{priority} counts them, and
// lectern_edge_requests_in_flight and lectern_edge_fills_in_flight show the loads.
//
// Memory: the memory tier is bounded in bytes (Config.MemoryBytes), each fill buffers at most
// Config.MaxObjectBytes, and `lectern edge` gives the Go runtime a soft memory limit of the tier plus an
// eighth plus 64 MiB (unless GOMEMLIMIT is set), so the heap is collected before it doubles.
package cdn
