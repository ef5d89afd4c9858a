package catalog

import (
	"context"
	"sync/atomic"
)

// testHooks let the conformance suite (package catalogtest) force failures at points no real input can
// reach. Production code never sets them; a nil hook costs one atomic load.
type testHooks struct {
	enqueue atomic.Pointer[func(context.Context) error]
	event   atomic.Pointer[func(context.Context) error]
}

func (h *testHooks) afterEventInsert(ctx context.Context) error {
	if f := h.event.Load(); f != nil {
		return (*f)(ctx)
	}
	return nil
}

// SetEventHookForTesting makes every change that records a webhook event (PublishVersion, FailLecture,
// RejectUpload) call f inside its transaction, after the change and the event insert, just before
// commit; an error from f aborts the transaction. Tests use it to prove that a rolled-back change leaves
// no event. Pass nil to remove it. Never use it outside tests.
func SetEventHookForTesting(c *Catalog, f func(context.Context) error) {
	if f == nil {
		c.hooks.event.Store(nil)
		return
	}
	c.hooks.event.Store(&f)
}

func (h *testHooks) afterEnqueueInsert(ctx context.Context) error {
	if f := h.enqueue.Load(); f != nil {
		return (*f)(ctx)
	}
	return nil
}

// SetEnqueueHookForTesting makes EnqueueTranscode call f inside its transaction, after the lecture update
// and the job insert, just before commit; an error from f aborts the transaction. It exists so tests can
// prove that such a failure leaves neither the status change nor the job behind. Pass nil to remove it.
// Never use it outside tests.
func SetEnqueueHookForTesting(c *Catalog, f func(context.Context) error) {
	if f == nil {
		c.hooks.enqueue.Store(nil)
		return
	}
	c.hooks.enqueue.Store(&f)
}

// QueryStringsForTesting runs a raw read-only query selecting ONE text column and returns its values. It
// exists so tests can inspect what is really stored, e.g. that teacher tokens are kept only as hashes.
// Never use it outside tests.
func QueryStringsForTesting(ctx context.Context, c *Catalog, query string, args ...any) ([]string, error) {
	rs, err := c.b.db().query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []string
	for rs.Next() {
		var s string
		if err := rs.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rs.Err()
}
