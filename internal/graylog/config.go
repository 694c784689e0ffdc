package graylog

import (
	"fmt"
	"strings"

	"github.com/spf13/pflag"

	"github.com/golden-stack/golden/internal/baseurl"
	"github.com/golden-stack/golden/observability/config"
)

// Config holds the settings to reach and authenticate to Graylog.
//
// Exactly one way to authenticate must be set: a password (directly or, to
// keep it out of the process list, from a file) for User, or an access token.
type Config struct {
	URL          string
	User         string
	Password     string
	PasswordFile string
	Token        string
}

// DefaultConfig returns the settings of a local Graylog: http://localhost:9000
// as admin, with no password or token yet.
func DefaultConfig() Config {
	return Config{URL: "http://localhost:9000", User: "admin"}
}

// String describes the settings with the password and token masked, so a
// Config that is printed or logged leaks nothing.
func (c Config) String() string {
	mask := func(s string) string {
		if s == "" {
			return `""`
		}
		return "[redacted]"
	}
	return fmt.Sprintf("graylog.Config{URL:%q User:%q Password:%s PasswordFile:%q Token:%s}",
		c.URL, c.User, mask(c.Password), c.PasswordFile, mask(c.Token))
}

// RegisterFlags adds --graylog-url, --graylog-user, --graylog-password,
// --graylog-password-file and --graylog-token to fs.
func (c *Config) RegisterFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.URL, "graylog-url", c.URL, "Graylog base URL (API and web interface)")
	fs.StringVar(&c.User, "graylog-user", c.User, "Graylog user for --graylog-password")
	fs.StringVar(&c.Password, "graylog-password", c.Password, "Graylog password (prefer --graylog-password-file or $"+config.EnvName("graylog-password")+": flags show in the process list)")
	fs.StringVar(&c.PasswordFile, "graylog-password-file", c.PasswordFile, "file holding the Graylog password (one line)")
	fs.StringVar(&c.Token, "graylog-token", c.Token, "Graylog access token, instead of a user and password")
}

// Validate checks the settings. Messages never contain the password or token.
func (c *Config) Validate(v *config.Validator) {
	_, err := baseurl.Parse(c.URL)
	v.Check(err == nil, "graylog-url", "%v", err)

	hasPassword := c.Password != "" || c.PasswordFile != ""
	hasToken := strings.TrimSpace(c.Token) != ""
	v.Check(c.Token == "" || hasToken, "graylog-token", "is blank")
	v.Check(c.Password == "" || c.PasswordFile == "", "graylog-password", "set either it or %s, not both", config.Setting("graylog-password-file"))
	v.Check(!(hasPassword && hasToken), "graylog-token", "set either a token or a password (%s / %s), not both",
		config.Setting("graylog-password"), config.Setting("graylog-password-file"))
	v.Check(hasPassword || c.Token != "", "graylog-password", "Graylog needs credentials: set it, %s or %s",
		config.Setting("graylog-password-file"), config.Setting("graylog-token"))
	if hasPassword {
		v.Check(strings.TrimSpace(c.User) != "", "graylog-user", "must be set with a password")
	}
	if c.PasswordFile != "" {
		v.FileExists("graylog-password-file", c.PasswordFile)
	}
}

// NewClient returns a client for these settings, reading the password file
// if one is set. Call it after Validate.
func (c *Config) NewClient(opts ...Option) (*Client, error) {
	var auth Option
	switch {
	case c.Token != "":
		auth = WithToken(strings.TrimSpace(c.Token))
	case c.PasswordFile != "":
		pw, err := config.ReadPasswordFile(c.PasswordFile)
		if err != nil {
			return nil, config.SettingError("graylog-password-file", err)
		}
		auth = WithBasicAuth(c.User, pw)
	case c.Password != "":
		auth = WithBasicAuth(c.User, c.Password)
	default:
		return nil, fmt.Errorf("%s: Graylog needs credentials: set it, %s or %s", config.Setting("graylog-password"),
			config.Setting("graylog-password-file"), config.Setting("graylog-token"))
	}
	cl, err := New(c.URL, append([]Option{auth}, opts...)...)
	if err != nil {
		return nil, config.SettingError("graylog-url", err)
	}
	return cl, nil
}
