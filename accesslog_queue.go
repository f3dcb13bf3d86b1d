package tcpproxy

import (
	"sync"
	"sync/atomic"
	"time"
)

// offLoop carries log lines off the event loops. A Session's methods run
// on the loop that serves the connection, where nothing may block, and a
// log line is a synchronous zap write: a write(2) to a file or stderr at
// best, a network writer at worst. So they queue what is to be logged and
// one goroutine for the process writes it, in order: a loop connection's
// access log entry (the loopConn itself: no copy, no allocation), and the
// rare lines of a target changing state or a rejection warning. When the
// queue is full the loop writes the line itself, as the goroutine path
// does: a log that cannot keep up slows the loop down rather than losing
// lines.
var offLoop logQueue

// loggable is a line, or a record, to write.
type loggable interface{ writeLog() }

// logFunc is a rare line, written by a function.
type logFunc func()

func (f logFunc) writeLog() { f() }

// logQueueSize bounds the lines waiting: 16 bytes each.
const logQueueSize = 4096

type logQueue struct {
	once    sync.Once
	ch      chan loggable
	pending atomic.Int64 // queued and not yet written
}

// put queues l, starting the writer on first use.
func (q *logQueue) put(l loggable) {
	q.once.Do(q.start)
	q.pending.Add(1)
	select {
	case q.ch <- l:
	default:
		l.writeLog()
		q.pending.Add(-1)
	}
}

func (q *logQueue) start() {
	q.ch = make(chan loggable, logQueueSize)
	go q.run()
}

// run writes the lines; it lives as long as the process.
func (q *logQueue) run() {
	for l := range q.ch {
		l.writeLog()
		q.pending.Add(-1)
	}
}

// flush waits up to within for the lines queued so far to be written.
func (q *logQueue) flush(within time.Duration) {
	deadline := time.Now().Add(within)
	for q.pending.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
}
