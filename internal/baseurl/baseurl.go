// Package baseurl checks the base URLs that golden's tools are pointed at
// (the gateway for loadgen, Graylog, Jaeger): http or https, a host, and
// nothing that would be printed unsafely or ignored.
package baseurl

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// Parse checks that raw is an http or https base URL with a host and
// without credentials (they belong in their own settings, where they are
// not printed), query or fragment, and returns it without a trailing slash.
func Parse(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error repeats the whole input; only the reason is useful.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("%q is not a URL: %w", raw, err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("%q must start with http:// or https://", raw)
	case u.Host == "":
		return nil, fmt.Errorf("%q has no host", raw)
	case u.User != nil:
		return nil, fmt.Errorf("%q must not contain credentials; give them as flags", u.Redacted())
	case u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
		return nil, fmt.Errorf("%q must not have a query or fragment", raw)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u, nil
}
