package graylog

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// NodeInfo is the answer of GET /api/: who answered.
type NodeInfo struct {
	ClusterID string `json:"cluster_id"`
	NodeID    string `json:"node_id"`
	Version   string `json:"version"`
	Tagline   string `json:"tagline"`
}

// Info asks the API who it is; it succeeds once Graylog serves its API.
func (c *Client) Info(ctx context.Context) (NodeInfo, error) {
	var info NodeInfo
	if err := c.do(ctx, http.MethodGet, "/api/", nil, nil, &info); err != nil {
		return NodeInfo{}, err
	}
	if info.Version == "" {
		return NodeInfo{}, &Error{Method: http.MethodGet, Path: "/api/", Message: "the answer has no Graylog version: is this Graylog?", base: c.base.String(), err: ErrNotJSON}
	}
	return info, nil
}

// WaitReady polls Info until Graylog answers, pausing longer after each
// failure (see WithPollInterval), for at most maxWait: Graylog takes minutes
// to start. It gives up at once on ErrAuthentication, which waiting cannot
// fix, and returns an error with the last failure when maxWait runs out.
func (c *Client) WaitReady(ctx context.Context, maxWait time.Duration) (NodeInfo, error) {
	if maxWait <= 0 {
		return NodeInfo{}, fmt.Errorf("graylog: wait must be greater than 0, got %s", maxWait)
	}
	wctx, cancel := context.WithTimeout(ctx, maxWait)
	defer cancel()
	pause := c.pollFirst
	var lastErr error
	// The count is bounded by maxWait: every round either returns or waits.
	for attempt := 1; ; attempt++ {
		info, err := c.Info(wctx)
		if err == nil {
			return info, nil
		}
		if errors.Is(err, ErrAuthentication) || ctx.Err() != nil {
			return NodeInfo{}, err
		}
		if wctx.Err() == nil || lastErr == nil {
			lastErr = err
		}
		if c.waiting != nil && wctx.Err() == nil {
			c.waiting(attempt, err)
		}
		select {
		case <-ctx.Done():
			return NodeInfo{}, fmt.Errorf("graylog at %s: waiting for the API: %w", c.base, ctx.Err())
		case <-wctx.Done():
			return NodeInfo{}, fmt.Errorf("graylog at %s: API not ready after %s (%d attempts); last error: %w", c.base, maxWait, attempt, lastErr)
		case <-time.After(pause):
		}
		pause = min(2*pause, c.pollMax)
	}
}
