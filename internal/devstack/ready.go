package devstack

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// HTTPReady returns a check that succeeds when GET url answers 200.
func HTTPReady(url string) func() error {
	client := &http.Client{Timeout: 2 * time.Second}
	return func() error {
		resp, err := client.Get(url)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		return nil
	}
}

// tcpReady succeeds when addr accepts a TCP connection.
func tcpReady(addr string) func() error {
	return func() error {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return err
		}
		return c.Close()
	}
}

// ConsulLeader returns a check that succeeds once the Consul agent at addr
// has elected a leader (a dev agent elects itself within seconds).
func ConsulLeader(addr string) func() error {
	client := &http.Client{Timeout: 2 * time.Second}
	return func() error {
		resp, err := client.Get("http://" + addr + "/v1/status/leader")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var leader string
		if err := json.NewDecoder(resp.Body).Decode(&leader); err != nil || leader == "" {
			return fmt.Errorf("consul has no leader yet (%s)", resp.Status)
		}
		return nil
	}
}

// all succeeds when every check does, checked in order.
func all(checks ...func() error) func() error {
	return func() error {
		var errs []error
		for _, c := range checks {
			if err := c(); err != nil {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	}
}
