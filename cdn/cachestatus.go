package cdn

import (
	"strconv"
	"strings"
	"time"
)

// cacheStatusName is this cache's name in the Cache-Status field.
const cacheStatusName = "lectern-edge"

// Reasons a request went upstream: the fwd parameter of RFC 9211 §2.2.
const (
	fwdURIMiss  = "uri-miss"  // nothing stored for the key
	fwdVaryMiss = "vary-miss" // an entry for the key, for another variant
	fwdStale    = "stale"     // an entry, stale
	fwdMethod   = "method"    // a method the cache does not answer
)

// cacheStatus is this edge's member of the Cache-Status field (RFC 9211) for one response: how
// the request was handled, in the parameters the RFC registers.
type cacheStatus struct {
	hit       bool   // answered from the cache without going upstream
	fwd       string // why it went upstream; "" for a hit
	fwdStatus int    // the status the upstream answered, 0 when it gave none
	stored    bool   // the response was stored
	// collapsed is 1 when the request was answered by another request's fill, -1 when it waited
	// for one that could not be shared and then went upstream itself.
	collapsed int8
	ttl       bool   // report the entry's remaining freshness (negative when stale)
	detail    string // a token for what the parameters above cannot say
}

// member renders the field member; ttl is the served entry's remaining freshness lifetime.
func (c cacheStatus) member(ttl time.Duration) string {
	var b strings.Builder
	b.WriteString(cacheStatusName)
	if c.hit {
		b.WriteString("; hit")
	}
	if c.fwd != "" {
		b.WriteString("; fwd=" + c.fwd)
	}
	if c.fwdStatus != 0 {
		b.WriteString("; fwd-status=" + strconv.Itoa(c.fwdStatus))
	}
	if c.stored {
		b.WriteString("; stored")
	}
	switch c.collapsed {
	case 1:
		b.WriteString("; collapsed")
	case -1:
		b.WriteString("; collapsed=?0")
	}
	if c.ttl {
		b.WriteString("; ttl=" + strconv.FormatInt(int64(ttl/time.Second), 10))
	}
	if c.detail != "" {
		b.WriteString("; detail=" + c.detail)
	}
	return b.String()
}
