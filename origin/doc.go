// Package origin serves published HLS objects from object storage over HTTP, in the form that caches
// (the edges, and browsers) can keep for as long as possible.
//
// # Requests
//
// The only object route is GET or HEAD /hls/{lecture}/v{n}/{path...}, read from the storage key
// hls/{lecture}/v{n}/{path...}. The path is checked before storage is touched: a lecture id is
// [a-z0-9]+, a version is v[1-9][0-9]*, and every further segment is non-empty, made of [A-Za-z0-9._-]
// and does not start with a dot (so "." and ".." never reach storage). Anything else is a 404, the same
// answer as a missing object, so probing the key space learns nothing and costs no storage call.
//
// /healthz answers 200 while the process runs; /readyz answers 200 only while storage answers a Ping,
// so a load balancer stops sending traffic to an origin that cannot read objects.
//
// # Caching
//
// Everything under v{n}/ is immutable once published (a new upload makes v{n+1}), so every object is
// served with Cache-Control: public, max-age=31536000, immutable, a strong ETag taken from storage and
// Last-Modified. A 404 is cacheable for ten seconds only: an object that is being published may appear
// shortly, and a brief negative cache still absorbs a burst of requests for a missing key.
// Conditional requests (If-None-Match, If-Modified-Since, If-Match, If-Unmodified-Since) are answered
// from the object's attributes, and a single byte range is read from storage with a ranged read; a
// multi-range or malformed Range header is ignored and the whole object sent, as RFC 9110 allows.
//
// Storage failures other than not-found are a 503 with Retry-After, never cached, so a short storage
// outage does not become a long negative cache entry at the edges.
//
// # Browsers
//
// Players fetch segments from other origins, so every /hls response carries
// Access-Control-Allow-Origin: * and exposes the headers a player reads; an OPTIONS preflight is
// answered locally with 204.
//
// # Metrics
//
// [Stats] holds plain atomic counters; [Server.Collector] exports them to Prometheus without the
// package registering anything globally.
package origin
