package testbackend

import (
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// Alertmanager is a real Alertmanager started by StartAlertmanager.
type Alertmanager struct {
	// URL is the server's base URL.
	URL string
	*Process
}

// StartAlertmanager runs Alertmanager with the configuration file config
// (templates resolve relative to it) on free loopback ports, as a single
// instance without clustering, until the test ends.
func StartAlertmanager(t testing.TB, config string) *Alertmanager {
	t.Helper()
	bin := Binary(t, "alertmanager")
	addr := "127.0.0.1:" + strconv.Itoa(FreePort(t))
	a := &Alertmanager{URL: "http://" + addr}
	a.Process = Start(t, bin,
		"--config.file="+config,
		"--storage.path="+filepath.Join(t.TempDir(), "data"),
		"--web.listen-address="+addr,
		"--cluster.listen-address=", // no gossip: one instance
		"--log.level=warn",
	)
	a.WaitFor(t, time.Minute, HTTPReady(a.URL+"/-/ready"))
	return a
}
