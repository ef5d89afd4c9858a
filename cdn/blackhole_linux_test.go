package cdn

import (
	"net"
	"syscall"
	"testing"
	"time"
)

// blackholeAddr returns a loopback address that takes no connection: a listener whose accept queue
// is full and is never accepted from. Linux drops the SYNs that arrive at a full queue, so a connect
// hangs as it would towards a host that is down or firewalled, instead of being refused at once.
func blackholeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	raw, err := ln.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	// listen(2) again on a listening socket only changes its backlog: 0 leaves room for one.
	var lerr error
	if err := raw.Control(func(fd uintptr) { lerr = syscall.Listen(int(fd), 0) }); err != nil || lerr != nil {
		t.Fatal(err, lerr)
	}
	addr := ln.Addr().String()
	for range 8 {
		c, err := net.DialTimeout("tcp4", addr, 500*time.Millisecond)
		if err != nil {
			return addr // this connect hung: the queue is full
		}
		t.Cleanup(func() { c.Close() })
	}
	t.Skip("could not fill the listen queue of a loopback listener")
	return ""
}
