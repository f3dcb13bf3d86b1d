//go:build linux

package evloop

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"
)

func TestReleasedPoolServesItsConnectionsToTheEnd(t *testing.T) {
	a, err := Acquire()
	if err != nil {
		t.Fatal(err)
	}
	b, err := Acquire()
	if err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Fatal("two Acquires returned two pools")
	}
	if len(a.loops) != runtime.GOMAXPROCS(0) {
		t.Errorf("%d loops, want one per P (%d)", len(a.loops), runtime.GOMAXPROCS(0))
	}
	echo := echoTarget(t)
	f := newFixture(t, a, Timeouts{}, func() *session { return newSession(echo) })
	c, s := f.dial()
	a.Release()
	b.Release() // the last reference: the loops exit once they are empty
	for i := range 3 {
		msg := []byte(fmt.Sprint("after release ", i))
		c.Write(msg)
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("read %q, %v: a released pool cut its connection", got, err)
		}
	}
	c.Close()
	s.wait(t, 5*time.Second)
	waitFor(t, 5*time.Second, "the released loops to exit", func() bool { return exited(a) })

	// A connection offered to the exited pool stays the caller's.
	ln := listen(t)
	defer ln.Close()
	conn, client := acceptOne(t, ln)
	if _, err := a.Proxy(conn, newSession(echo), Timeouts{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Proxy on an exited pool: %v, want ErrClosed", err)
	}
	conn.Close()
	if _, err := client.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("client read %v, want EOF: Close must close a conn no loop took", err)
	}

	c2, err := Acquire()
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Release()
	if c2 == a {
		t.Fatal("Acquire returned the exited pool")
	}
}

func TestCloseAllEndsEveryConnectionBeforeReturning(t *testing.T) {
	ls := testLoops(t, 2)
	ts := newTarget(t)
	f := newFixture(t, ls, Timeouts{}, func() *session { return newSession(ts.target()) })
	var sessions []*session
	for range 5 {
		_, s := f.dial()
		ts.accept(t)
		sessions = append(sessions, s)
	}
	waitFor(t, 5*time.Second, "the connections to be established", func() bool {
		for _, s := range sessions {
			s.mu.Lock()
			n := len(s.connected)
			s.mu.Unlock()
			if n == 0 {
				return false
			}
		}
		return true
	})
	ls.CloseAll(Shutdown)
	if n := ls.Active(); n != 0 {
		t.Fatalf("%d connections active after CloseAll", n)
	}
	for i, s := range sessions {
		select {
		case r := <-s.done:
			if r.r != Shutdown {
				t.Errorf("connection %d: Done(%v), want shutdown", i, r.r)
			}
		default:
			t.Errorf("connection %d: Done not called by the time CloseAll returned", i)
		}
	}
}

func TestManyConnectionsLeaveNothingBehind(t *testing.T) {
	goroutines, fds := runtime.NumGoroutine(), openFDs(t)
	ls, err := start(2)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("load", func(t *testing.T) {
		echo := echoTarget(t)
		f := newFixture(t, ls, Timeouts{Idle: time.Minute}, func() *session { return newSession(echo) })
		const conns, rounds = 200, 10
		var wg sync.WaitGroup
		errs := make(chan error, conns)
		for i := range conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := net.DialTimeout("tcp", f.addr(), 5*time.Second)
				if err != nil {
					errs <- err
					return
				}
				defer c.Close()
				c.SetDeadline(time.Now().Add(20 * time.Second))
				msg := bytes.Repeat([]byte{byte(i)}, 1000+i)
				got := make([]byte, len(msg))
				for range rounds {
					if _, err := c.Write(msg); err != nil {
						errs <- err
						return
					}
					if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, msg) {
						errs <- fmt.Errorf("connection %d: echo %v", i, err)
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		for range conns {
			s := <-f.sessions
			if r := s.wait(t, 10*time.Second); r.r != Normal || r.up != r.down {
				t.Errorf("Done(%v, %d, %d), want normal with equal counts", r.r, r.up, r.down)
			}
		}
		// Active drops once Done has returned.
		waitFor(t, 5*time.Second, "no connection active", func() bool { return ls.Active() == 0 })
	})
	ls.stop()
	waitFor(t, 5*time.Second, "the loops to exit", func() bool { return exited(ls) })
	settle(t, goroutines, fds)
}

func TestCloseWhereEndsOnlyTheMatchingConnections(t *testing.T) {
	ls := testLoops(t, 2)
	ts := newTarget(t)
	f := newFixture(t, ls, Timeouts{}, func() *session { return newSession(ts.target()) })
	var sessions []*session
	for range 6 {
		_, s := f.dial()
		ts.accept(t)
		sessions = append(sessions, s)
	}
	waitFor(t, 5*time.Second, "the connections to be established", func() bool { return ls.Active() == 6 })
	cut := map[*session]bool{sessions[1]: true, sessions[4]: true}
	n := ls.CloseWhere(TargetDown, func(s Session) bool { return cut[s.(*session)] })
	if n != 2 {
		t.Fatalf("CloseWhere closed %d connections, want 2", n)
	}
	for i, s := range sessions {
		select {
		case r := <-s.done:
			if !cut[s] || r.r != TargetDown {
				t.Errorf("connection %d: Done(%v), want it open", i, r.r)
			}
		default:
			if cut[s] {
				t.Errorf("connection %d: Done not called by the time CloseWhere returned", i)
			}
		}
	}
	if n := ls.Active(); n != 4 {
		t.Fatalf("%d connections active, want the 4 not matched", n)
	}
	if n := ls.CloseWhere(Admin, nil); n != 4 {
		t.Fatalf("CloseWhere(nil) closed %d connections, want the other 4", n)
	}
}
