// Package probe runs one health probe against one TCP target: connect,
// optionally write a PROXY protocol LOCAL header and some bytes, and
// optionally wait for expected bytes or an HTTP/1.1 response.
//
// A Check is compiled once per config with New; the Prober it returns is
// read-only and serves any number of concurrent Run calls:
//
//	p, err := probe.New(probe.Check{
//		Timeout: 2 * time.Second,
//		Send:    []byte("info replication\r\n"),
//		Expect:  []byte("role:master"),
//	})
//	if err != nil {
//		return err // a config error: says which value is wrong
//	}
//	err = p.Run(ctx, "10.0.0.1:6379") // nil: healthy; else the last_error
//
// A failed probe's error says what was expected and what came, quoted and
// cut to 64 bytes. Dial errors are returned as the net package made them,
// so IsLocal can tell a failure of this machine (out of descriptors,
// memory or ephemeral ports) from a failure of the target.
package probe
