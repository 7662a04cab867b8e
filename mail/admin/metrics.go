package admin

import (
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"mailgate/mail"
)

// Metrics are the process's Prometheus metrics. It implements
// mail.Observer: give it to every generation's mail.Options.Observer.
// Labels are server (the listen entry's text) and protocol, plus one
// bounded label per metric where it says so (outcome, reason, direction,
// result): never a login or a client address.
type Metrics struct {
	reg *prometheus.Registry

	accepted        *prometheus.CounterVec
	active          *prometheus.GaugeVec
	logins          *prometheus.CounterVec
	authLatency     *prometheus.HistogramVec
	upstreamConnect *prometheus.HistogramVec
	upstreamLogin   *prometheus.HistogramVec
	ended           *prometheus.CounterVec
	bytes           *relayedBytes
	tlsHandshakes   *prometheus.CounterVec
	tlsFailures     *prometheus.CounterVec
	reloads         *prometheus.CounterVec
	lastReload      prometheus.Gauge
}

var _ mail.Observer = (*Metrics)(nil)

var sp = []string{"server", "protocol"}

// NewMetrics registers mailgate's metrics (and Go's runtime and process
// collectors) in a registry of their own. version goes to
// mailgate_build_info.
func NewMetrics(version string) *Metrics {
	r := prometheus.NewRegistry()
	f := func(c prometheus.Collector) prometheus.Collector { r.MustRegister(c); return c }
	// auth_http and upstream latencies: milliseconds to tens of seconds
	// (auth_http_timeout and timeout default to 60s).
	buckets := []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}
	m := &Metrics{
		reg: r,
		accepted: f(prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mailgate_connections_accepted_total",
			Help: "Client connections accepted."}, sp)).(*prometheus.CounterVec),
		active: f(prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "mailgate_connections_active",
			Help: "Client connections open (every state, relayed ones included)."}, sp)).(*prometheus.GaugeVec),
		logins: f(prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mailgate_logins_total",
			Help: "Login attempts by outcome: ok, invalid (auth_http refused), tempfail (refused with Auth-Wait or a 4xx code), auth_error, upstream_error."},
			append(sp, "outcome"))).(*prometheus.CounterVec),
		authLatency: f(prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "mailgate_auth_http_duration_seconds",
			Help: "Time spent in auth_http exchanges per login attempt (Auth-Wait pauses excluded).", Buckets: buckets}, sp)).(*prometheus.HistogramVec),
		upstreamConnect: f(prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "mailgate_upstream_connect_duration_seconds",
			Help: "Time to connect to the upstream, for logins that succeeded.", Buckets: buckets}, sp)).(*prometheus.HistogramVec),
		upstreamLogin: f(prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "mailgate_upstream_login_duration_seconds",
			Help: "Time of the upstream login after the connect, for logins that succeeded.", Buckets: buckets}, sp)).(*prometheus.HistogramVec),
		ended: f(prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mailgate_sessions_ended_total",
			Help: "Sessions ended by reason: client_closed, upstream_closed, timeout, shutdown, error, panic, admin."},
			append(sp, "reason"))).(*prometheus.CounterVec),
		bytes: f(&relayedBytes{ended: map[mail.Labels][2]int64{}, desc: prometheus.NewDesc("mailgate_relayed_bytes_total",
			"Bytes relayed, live sessions included, by direction: up (client to upstream), down (upstream to client).",
			append(sp, "direction"), nil)}).(*relayedBytes),
		tlsHandshakes: f(prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mailgate_tls_handshakes_total",
			Help: "Client TLS handshakes (implicit TLS and STARTTLS), successful or not."}, sp)).(*prometheus.CounterVec),
		tlsFailures: f(prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mailgate_tls_handshake_failures_total",
			Help: "Client TLS handshakes that failed, by reason: timeout, eof, not_tls, version, cipher, certificate, error."},
			append(sp, "reason"))).(*prometheus.CounterVec),
		reloads: f(prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mailgate_config_reloads_total",
			Help: "Configuration reloads (HUP) by result: ok, failed."}, []string{"result"})).(*prometheus.CounterVec),
		lastReload: f(prometheus.NewGauge(prometheus.GaugeOpts{Name: "mailgate_config_last_reload_success_timestamp_seconds",
			Help: "When the configuration was last loaded successfully (start or reload), in seconds since the epoch."})).(prometheus.Gauge),
	}
	f(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "mailgate_panics_recovered_total",
		Help: "Panics contained by the engine (the connection closed, the process went on); each is a bug to report."},
		func() float64 { return float64(mail.PanicsRecovered()) }))
	f(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "mailgate_connections_refused_total",
		Help:        "Client connections closed at accept, by reason: worker_connections (the limit was reached).",
		ConstLabels: prometheus.Labels{"reason": "worker_connections"}},
		func() float64 { return float64(mail.ConnectionsRefused()) }))
	f(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "mailgate_build_info",
		Help:        "Always 1; the labels name the build.",
		ConstLabels: prometheus.Labels{"version": version, "goversion": runtime.Version()}},
		func() float64 { return 1 }))
	for _, o := range []string{"ok", "failed"} {
		m.reloads.WithLabelValues(o) // both results show from the start
	}
	m.lastReload.SetToCurrentTime()
	f(collectors.NewGoCollector())
	f(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the metrics in Prometheus's text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// CountLive makes mailgate_relayed_bytes_total read the sessions of reg
// (the registry every generation reports to): the bytes of live sessions
// count as the relay copies them, not only once a session ends. Without
// it, only the sessions that ended (Relayed) count.
func (m *Metrics) CountLive(reg *mail.Registry) { m.bytes.live.Store(reg) }

// relayedBytes is mailgate_relayed_bytes_total: the registry's totals
// (ended sessions plus the live ones' counters, which the relay updates
// as it copies: nothing more is done per chunk), or without a registry
// the totals of ended sessions.
type relayedBytes struct {
	desc *prometheus.Desc
	live atomic.Pointer[mail.Registry]

	mu    sync.Mutex
	ended map[mail.Labels][2]int64
}

func (c *relayedBytes) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *relayedBytes) Collect(ch chan<- prometheus.Metric) {
	var totals map[mail.Labels][2]int64
	if reg := c.live.Load(); reg != nil {
		totals = reg.RelayedBytes()
	} else {
		c.mu.Lock()
		totals = make(map[mail.Labels][2]int64, len(c.ended))
		for l, t := range c.ended {
			totals[l] = t
		}
		c.mu.Unlock()
	}
	for l, t := range totals {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.CounterValue, float64(t[0]), l.Server, l.Protocol, "up")
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.CounterValue, float64(t[1]), l.Server, l.Protocol, "down")
	}
}

func (c *relayedBytes) add(l mail.Labels, up, down int64) {
	if c.live.Load() != nil {
		return // the registry counts them
	}
	c.mu.Lock()
	t := c.ended[l]
	c.ended[l] = [2]int64{t[0] + up, t[1] + down}
	c.mu.Unlock()
}

// Registry is the Prometheus registry (tests gather from it).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Reloaded counts a configuration reload; ok false: the old
// configuration went on serving.
func (m *Metrics) Reloaded(ok bool) {
	if !ok {
		m.reloads.WithLabelValues("failed").Inc()
		return
	}
	m.reloads.WithLabelValues("ok").Inc()
	m.lastReload.SetToCurrentTime()
}

// Accepted implements mail.Observer.
func (m *Metrics) Accepted(l mail.Labels) {
	m.accepted.WithLabelValues(l.Server, l.Protocol).Inc()
	m.active.WithLabelValues(l.Server, l.Protocol).Inc()
}

// Ended implements mail.Observer.
func (m *Metrics) Ended(l mail.Labels, r mail.EndReason) {
	m.active.WithLabelValues(l.Server, l.Protocol).Dec()
	m.ended.WithLabelValues(l.Server, l.Protocol, string(r)).Inc()
}

// TLSHandshake implements mail.Observer.
func (m *Metrics) TLSHandshake(l mail.Labels, failure string) {
	m.tlsHandshakes.WithLabelValues(l.Server, l.Protocol).Inc()
	if failure != "" {
		m.tlsFailures.WithLabelValues(l.Server, l.Protocol, failure).Inc()
	}
}

// Login implements mail.Observer.
func (m *Metrics) Login(l mail.Labels, o mail.LoginOutcome, authHTTP time.Duration) {
	m.logins.WithLabelValues(l.Server, l.Protocol, string(o)).Inc()
	if authHTTP > 0 {
		m.authLatency.WithLabelValues(l.Server, l.Protocol).Observe(authHTTP.Seconds())
	}
}

// Upstream implements mail.Observer.
func (m *Metrics) Upstream(l mail.Labels, connect, login time.Duration) {
	m.upstreamConnect.WithLabelValues(l.Server, l.Protocol).Observe(connect.Seconds())
	m.upstreamLogin.WithLabelValues(l.Server, l.Protocol).Observe(login.Seconds())
}

// Relayed implements mail.Observer.
func (m *Metrics) Relayed(l mail.Labels, up, down int64) {
	m.bytes.add(l, up, down)
}
