package graylog

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// SearchRequest is a search over the last Range of messages.
type SearchRequest struct {
	// Query is in Graylog's (Lucene) syntax; quote values with Phrase.
	Query string
	// Range is how far back to search, rounded up to whole seconds.
	Range time.Duration
	// Limit is the most messages returned.
	Limit int
	// Sort is "field:asc" or "field:desc"; empty means Graylog's default.
	Sort string
	// Fields, when set, are the message fields wanted.
	Fields []string
}

// SearchResult is the answer of a search.
type SearchResult struct {
	Query string `json:"query"`
	// TotalResults counts every match, which is more than len(Messages)
	// when the limit cut the answer.
	TotalResults int             `json:"total_results"`
	Messages     []SearchMessage `json:"messages"`
	From         string          `json:"from"`
	To           string          `json:"to"`
}

// SearchMessage is one message found.
type SearchMessage struct {
	Index string `json:"index"`
	// Message holds the fields, without the leading "_" of GELF additional
	// fields; numbers are json.Number.
	Message map[string]any `json:"message"`
}

// SearchRelative runs GET /api/search/universal/relative, the search API
// present and not deprecated in Graylog 5 and 6.
func (c *Client) SearchRelative(ctx context.Context, req SearchRequest) (*SearchResult, error) {
	if strings.TrimSpace(req.Query) == "" {
		return nil, fmt.Errorf("graylog: search: empty query")
	}
	if req.Range <= 0 {
		return nil, fmt.Errorf("graylog: search: range must be greater than 0, got %s", req.Range)
	}
	if req.Limit <= 0 {
		return nil, fmt.Errorf("graylog: search: limit must be greater than 0, got %d", req.Limit)
	}
	q := url.Values{}
	q.Set("query", req.Query)
	q.Set("range", strconv.FormatInt(RangeSeconds(req.Range), 10))
	q.Set("limit", strconv.Itoa(req.Limit))
	if req.Sort != "" {
		q.Set("sort", req.Sort)
	}
	if len(req.Fields) > 0 {
		q.Set("fields", strings.Join(req.Fields, ","))
	}
	var res SearchResult
	if err := c.do(ctx, http.MethodGet, "/api/search/universal/relative", q, nil, &res); err != nil {
		return nil, err
	}
	if res.Messages == nil {
		res.Messages = []SearchMessage{}
	}
	return &res, nil
}

// SearchURL returns the web interface's link to the results of query over
// the last rng, e.g. BASE/search?q=request_id%3A%22abc%22&rangetype=relative&from=86400.
func (c *Client) SearchURL(query string, rng time.Duration) string {
	u := c.endpoint("/search", nil)
	// Built by hand: url.Values.Encode would sort the keys, and the
	// documented link has q first.
	u.RawQuery = "q=" + url.QueryEscape(query) + "&rangetype=relative&from=" + strconv.FormatInt(RangeSeconds(rng), 10)
	return u.String()
}

// RangeSeconds converts a relative range to the whole seconds Graylog
// takes, rounding up so nothing asked for is left out. Zero means "all
// time" to Graylog, so the result is at least 1.
func RangeSeconds(d time.Duration) int64 {
	s := int64((d + time.Second - 1) / time.Second)
	return max(s, 1)
}

// Phrase quotes s as one phrase term in a Graylog query, escaping the
// characters that would end it: field:"value".
func Phrase(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
	return `"` + r.Replace(s) + `"`
}
