package postgres

import (
	"errors"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// redact returns err with the URL's password, should a message ever carry
// it, replaced. pgx's connection errors name user, database and host only;
// this is the belt to those braces.
func redact(err error, url string) error {
	if err == nil {
		return nil
	}
	pc, perr := pgxpool.ParseConfig(url)
	if perr != nil || pc.ConnConfig.Password == "" || !strings.Contains(err.Error(), pc.ConnConfig.Password) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), pc.ConnConfig.Password, "[redacted]"))
}

// poolCollector reports the pool's statistics at scrape time: the
// database's saturation signal (connections in use against the maximum,
// and how often and how long requests waited for one).
type poolCollector struct {
	pool                                                    *pgxpool.Pool
	conns, maxConns, acquires, waits, waitSeconds, canceled *prometheus.Desc
}

func newPoolCollector(pool *pgxpool.Pool) *poolCollector {
	return &poolCollector{
		pool: pool,
		conns: prometheus.NewDesc("golden_db_pool_connections",
			"Connections in the PostgreSQL pool, by state: acquired (in use by a request), idle, constructing.", []string{"state"}, nil),
		maxConns: prometheus.NewDesc("golden_db_pool_max_connections",
			"Most connections the PostgreSQL pool opens (--db-max-conns).", nil, nil),
		acquires: prometheus.NewDesc("golden_db_pool_acquires_total",
			"Connections handed to requests by the PostgreSQL pool.", nil, nil),
		waits: prometheus.NewDesc("golden_db_pool_acquire_waits_total",
			"Acquisitions that found no idle connection and had to wait for one.", nil, nil),
		waitSeconds: prometheus.NewDesc("golden_db_pool_acquire_wait_seconds_total",
			"Time requests spent waiting for a PostgreSQL connection.", nil, nil),
		canceled: prometheus.NewDesc("golden_db_pool_canceled_acquires_total",
			"Acquisitions given up because the request's context ended first.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.conns, c.maxConns, c.acquires, c.waits, c.waitSeconds, c.canceled} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.pool.Stat()
	ch <- prometheus.MustNewConstMetric(c.conns, prometheus.GaugeValue, float64(s.AcquiredConns()), "acquired")
	ch <- prometheus.MustNewConstMetric(c.conns, prometheus.GaugeValue, float64(s.IdleConns()), "idle")
	ch <- prometheus.MustNewConstMetric(c.conns, prometheus.GaugeValue, float64(s.ConstructingConns()), "constructing")
	ch <- prometheus.MustNewConstMetric(c.maxConns, prometheus.GaugeValue, float64(s.MaxConns()))
	ch <- prometheus.MustNewConstMetric(c.acquires, prometheus.CounterValue, float64(s.AcquireCount()))
	ch <- prometheus.MustNewConstMetric(c.waits, prometheus.CounterValue, float64(s.EmptyAcquireCount()))
	ch <- prometheus.MustNewConstMetric(c.waitSeconds, prometheus.CounterValue, s.EmptyAcquireWaitTime().Seconds())
	ch <- prometheus.MustNewConstMetric(c.canceled, prometheus.CounterValue, float64(s.CanceledAcquireCount()))
}
