package tcpproxy

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/caddy-tcpproxy/caddy-tcpproxy/internal/history"
	"github.com/caddy-tcpproxy/caddy-tcpproxy/internal/relay"
)

// The collectors are package-level so that their values survive a config
// reload: Caddy gives every config load a new registry, and each load
// registers these same collectors into it. Each target and app caches its
// own children (see newTargetMetrics), so the data path never hashes label
// values: a metric update costs one atomic add.
const metricsNamespace, metricsSubsystem = "caddy", "tcpproxy"

var (
	targetLabels = []string{"app", "target"}

	connectionsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: metricsNamespace, Subsystem: metricsSubsystem,
		Name: "connections_total",
		Help: "Connections proxied to each target.",
	}, targetLabels)
	activeConnections = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: metricsNamespace, Subsystem: metricsSubsystem,
		Name: "active_connections",
		Help: "Connections to each target being proxied now.",
	}, targetLabels)
	bytesTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: metricsNamespace, Subsystem: metricsSubsystem,
		Name: "bytes_total",
		Help: "Bytes proxied, by direction: upstream is client to target, downstream is target to client.",
	}, []string{"app", "target", "direction"})
	targetHealthy = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: metricsNamespace, Subsystem: metricsSubsystem,
		Name: "target_healthy",
		Help: "1 when the target is healthy, 0 when it is down.",
	}, targetLabels)
	dialErrorsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: metricsNamespace, Subsystem: metricsSubsystem,
		Name: "dial_errors_total",
		Help: "Failed dials to each target while proxying.",
	}, targetLabels)
	dialDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: metricsNamespace, Subsystem: metricsSubsystem,
		Name:    "dial_duration_seconds",
		Help:    "Time to connect to a target, successful dials only.",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
	}, targetLabels)
	rejectedTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: metricsNamespace, Subsystem: metricsSubsystem,
		Name: "rejected_connections_total",
		Help: "Client connections closed without being proxied, by reason: no_healthy_target, dial_failed, max_connections, denied, client_limit, rate_limited, bad_proxy_header.",
	}, []string{"app", "reason"})

	closedTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: metricsNamespace, Subsystem: metricsSubsystem,
		Name: "closed_connections_total",
		Help: "Proxied connections that ended, by reason: normal, client_error, target_error, idle_timeout, half_close_timeout, max_duration, target_down, admin, shutdown.",
	}, []string{"app", "reason"})
	connectionDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: metricsNamespace, Subsystem: metricsSubsystem,
		Name:    "connection_duration_seconds",
		Help:    "How long proxied connections lasted, from accept to close.",
		Buckets: []float64{.001, .01, .1, 1, 10, 60, 300, 1800, 3600, 14400, 86400},
	}, []string{"app"})

	collectors = []prometheus.Collector{
		connectionsTotal, activeConnections, bytesTotal, targetHealthy,
		dialErrorsTotal, dialDuration, rejectedTotal, closedTotal, connectionDuration,
	}
)

// Rejection reasons: the values of the `reason` label are their names.
// They are history.Reason values so that the metric, the access log and
// the status page's history count the same things (appState.countRejection).
const (
	reasonNoHealthyTarget = history.NoHealthyTarget
	reasonMaxConnections  = history.MaxConnections
	reasonDialFailed      = history.DialFailed
)

// registerMetrics adds the collectors to a config's registry. They are
// already there when the registry is shared (a nil registry does nothing).
func registerMetrics(reg prometheus.Registerer) error {
	if reg == nil {
		return nil
	}
	for _, c := range collectors {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return err
			}
		}
	}
	return nil
}

// targetMetrics are one target's children of the collectors.
type targetMetrics struct {
	connections, bytesUp, bytesDown, dialErrors prometheus.Counter
	active, healthy                             prometheus.Gauge
	dialTime                                    prometheus.Observer
}

func newTargetMetrics(app, addr string) targetMetrics {
	m := targetMetrics{
		connections: connectionsTotal.WithLabelValues(app, addr),
		bytesUp:     bytesTotal.WithLabelValues(app, addr, "upstream"),
		bytesDown:   bytesTotal.WithLabelValues(app, addr, "downstream"),
		dialErrors:  dialErrorsTotal.WithLabelValues(app, addr),
		active:      activeConnections.WithLabelValues(app, addr),
		healthy:     targetHealthy.WithLabelValues(app, addr),
		dialTime:    dialDuration.WithLabelValues(app, addr),
	}
	m.healthy.Set(1)
	return m
}

// deleteTargetMetrics stops reporting a target that no config uses.
func deleteTargetMetrics(app, addr string) {
	for _, v := range []*prometheus.MetricVec{
		connectionsTotal.MetricVec, activeConnections.MetricVec,
		dialErrorsTotal.MetricVec, targetHealthy.MetricVec, dialDuration.MetricVec,
	} {
		v.DeleteLabelValues(app, addr)
	}
	bytesTotal.DeleteLabelValues(app, addr, "upstream")
	bytesTotal.DeleteLabelValues(app, addr, "downstream")
}

// appMetrics are one app's counters: rejections and closed connections by
// reason, and the connection durations.
type appMetrics struct {
	rejected [history.NumReasons]prometheus.Counter  // by rejection reason
	closed   [relay.MaxReason + 1]prometheus.Counter // by relay.Reason
	duration prometheus.Observer
}

func newAppMetrics(app string) appMetrics {
	m := appMetrics{duration: connectionDuration.WithLabelValues(app)}
	for r := range history.NumReasons {
		m.rejected[r] = rejectedTotal.WithLabelValues(app, r.String())
	}
	for _, r := range relay.Reasons {
		m.closed[r] = closedTotal.WithLabelValues(app, r.String())
	}
	return m
}

func deleteAppMetrics(app string) {
	for _, v := range []*prometheus.MetricVec{rejectedTotal.MetricVec, closedTotal.MetricVec, connectionDuration.MetricVec} {
		v.DeletePartialMatch(prometheus.Labels{"app": app})
	}
}
