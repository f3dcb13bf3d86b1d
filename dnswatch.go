package tcpproxy

import (
	"context"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-tcpproxy/caddy-tcpproxy/internal/discovery"
)

// firstLookupWait bounds how long App.Start waits for the first DNS
// answers of the targets no previous config knew, so that an app whose
// targets all come from DNS does not start with none. After it the app
// serves with what it has, and later answers fill it in.
const firstLookupWait = 2 * time.Second

// The DNS timeouts: one query to one resolver (then the next is asked),
// and one lookup with every retry. Variables, so that tests of a server
// that never answers stay short.
var (
	dnsQueryTimeout  = discovery.DefaultTimeout
	dnsLookupTimeout = discovery.DefaultLookupTimeout
)

// watch looks the set's DNS targets up in the background, at once and
// then every dns_refresh, until ctx ends; wg counts its goroutines. The
// returned channel is closed once every DNS target that had no records
// yet has had its first answer or failure (at once when there is none).
func (s *targetSet) watch(ctx context.Context, wg *sync.WaitGroup, logger *zap.Logger) <-chan struct{} {
	if len(s.sources) == 0 {
		return closedChan
	}
	servers, _ := discovery.ParseResolvers(s.resolvers) // validated
	cfg := discovery.Config{
		Resolver: discovery.NewResolver(servers, dnsQueryTimeout),
		Refresh:  time.Duration(s.refresh),
		Timeout:  dnsLookupTimeout,
	}
	for _, src := range s.sources {
		cfg.Sources = append(cfg.Sources, src.src)
	}
	w := discovery.NewWatcher(cfg, s.watchHandler(logger))
	s.mu.Lock()
	seeded := true
	for _, src := range s.sources {
		if src.known {
			w.Seed(src.src.Spec, src.recs)
		} else {
			seeded = false
		}
	}
	s.mu.Unlock()
	wg.Go(func() { w.Run(ctx) })
	if seeded {
		return closedChan
	}
	return w.Ready()
}

var closedChan = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

// watchHandler applies the watcher's news to the set and logs it: a
// change at info, the first failure of a streak at warn (the last good
// set stays), the following ones at debug, the recovery at info.
func (s *targetSet) watchHandler(logger *zap.Logger) discovery.Handler {
	return discovery.Handler{
		Change: func(spec string, recs []discovery.Record) {
			added, removed, reweighted, ok := s.update(spec, recs)
			if !ok {
				return
			}
			logger.Info("DNS targets changed", zap.String("app", s.app), zap.String("source", spec),
				zap.Int("records", len(recs)), zap.Int("added", added), zap.Int("removed", removed),
				zap.Int("reweighted", reweighted))
		},
		Fail: func(spec string, err error, streakStart bool) {
			level := zap.DebugLevel
			if streakStart {
				level = zap.WarnLevel
			}
			logger.Log(level, "DNS lookup failed: keeping the last good targets", zap.String("app", s.app),
				zap.String("source", spec), zap.Int("records", len(s.records(spec))), zap.Error(err))
		},
		Recover: func(spec string, failures int) {
			logger.Info("DNS lookup recovered", zap.String("app", s.app), zap.String("source", spec),
				zap.Int("failed_lookups", failures))
		},
	}
}

// records returns the last good set of a source.
func (s *targetSet) records(spec string) []discovery.Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	if src := s.source(spec); src != nil {
		return src.recs
	}
	return nil
}
