package canary

import (
	"fmt"
	"strings"
)

// The tracks an instance runs on.
const (
	// Stable is the default track: the released version.
	Stable = "stable"
	// Canary is the track of a version being tried on a slice of requests.
	Canary = "canary"
)

// MetaTrack is the Consul service Meta key that holds an instance's track;
// Prometheus relabels it into the "track" label.
const MetaTrack = "track"

// CheckTrack returns an error unless track is Stable or Canary.
func CheckTrack(track string) error {
	if track != Stable && track != Canary {
		return fmt.Errorf("%q is not %s or %s", track, Stable, Canary)
	}
	return nil
}

// TrackOf returns the track in an instance's Consul Meta: Stable when it is
// missing or unknown, so that an instance from before tracks counts as
// stable.
func TrackOf(meta map[string]string) string {
	if meta[MetaTrack] == Canary {
		return Canary
	}
	return Stable
}

// CheckService returns an error unless name is a service name the routing
// metadata can carry: 1-63 lowercase letters, digits and '-'.
func CheckService(name string) error {
	if name == "" || len(name) > 63 {
		return fmt.Errorf("service name %q must be 1 to 63 characters", name)
	}
	if strings.Trim(name, "abcdefghijklmnopqrstuvwxyz0123456789-") != "" {
		return fmt.Errorf("service name %q may hold only lowercase letters, digits and '-'", name)
	}
	return nil
}
