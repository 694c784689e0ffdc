// Package config loads a service's settings from command-line flags and
// GOLDEN_* environment variables and validates them at start.
//
// Every setting is a pflag flag; its environment twin is GOLDEN_ followed by
// the flag name in upper case with dashes as underscores (--grpc-addr is
// GOLDEN_GRPC_ADDR). A flag given on the command line wins over the
// environment. Errors always name the setting, in both spellings, so an
// operator can find the bad value whichever way it was set.
package config

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

// EnvPrefix starts the name of every environment variable golden reads.
const EnvPrefix = "GOLDEN_"

// EnvName returns the environment variable that sets the flag named flag.
func EnvName(flag string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// ApplyEnv sets every flag of fs that was not given on the command line from
// its environment variable, when that is set. lookup is os.LookupEnv outside
// tests. All bad values are reported together, each naming its variable.
func ApplyEnv(fs *pflag.FlagSet, lookup func(string) (string, bool)) error {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	var errs []error
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Changed {
			return
		}
		env := EnvName(f.Name)
		v, ok := lookup(env)
		if !ok {
			return
		}
		if err := fs.Set(f.Name, v); err != nil {
			errs = append(errs, fmt.Errorf("%s (--%s): invalid value %q: %w", env, f.Name, v, unwrapSetError(err)))
		}
	})
	return errors.Join(errs...)
}

// unwrapSetError drops pflag's own "invalid argument ... for flag" prefix,
// which would repeat what the caller's message already says.
func unwrapSetError(err error) error {
	var numErr *strconv.NumError
	if errors.As(err, &numErr) {
		return numErr.Err
	}
	return err
}

// Validator collects validation errors of settings, each prefixed with the
// setting's name, and reports them all at once.
type Validator struct {
	errs []error
}

// Check records msg against setting when ok is false.
func (v *Validator) Check(ok bool, setting, msg string, args ...any) {
	if !ok {
		v.errs = append(v.errs, SettingError(setting, fmt.Errorf(msg, args...)))
	}
}

// Addr checks that value is a host:port listen or dial address with a
// numeric port; an empty host is allowed (all interfaces).
func (v *Validator) Addr(setting, value string) {
	_, port, err := net.SplitHostPort(value)
	if err != nil {
		v.Check(false, setting, "%q is not host:port", value)
		return
	}
	n, err := strconv.Atoi(port)
	v.Check(err == nil && n >= 0 && n <= 65535, setting, "%q has an invalid port", value)
}

// Positive checks that a duration is greater than zero.
func (v *Validator) Positive(setting string, d time.Duration) {
	v.Check(d > 0, setting, "must be greater than 0, got %s", d)
}

// FileExists checks that path names a readable regular file.
func (v *Validator) FileExists(setting, path string) {
	if path == "" {
		v.Check(false, setting, "must be set")
		return
	}
	st, err := os.Stat(path)
	switch {
	case err != nil:
		v.Check(false, setting, "cannot read %q: %v", path, errors.Unwrap(err))
	case !st.Mode().IsRegular():
		v.Check(false, setting, "%q is not a regular file", path)
	}
}

// Err returns all recorded errors as one *Invalid, or nil.
func (v *Validator) Err() error {
	if len(v.errs) == 0 {
		return nil
	}
	return &Invalid{Errs: v.errs}
}

// Invalid is one or more settings whose values are wrong (each a
// *BadSetting, as a rule), found before anything was started. Commands exit
// with the usage status, 2, for it.
type Invalid struct {
	Errs []error
}

// Error lists the errors, one a line.
func (e *Invalid) Error() string { return errors.Join(e.Errs...).Error() }

// Unwrap returns the errors, for errors.As and errors.Is.
func (e *Invalid) Unwrap() []error { return e.Errs }

// Setting formats a flag name with its environment variable for messages:
// "--grpc-addr (GOLDEN_GRPC_ADDR)".
func Setting(flag string) string {
	return fmt.Sprintf("--%s (%s)", flag, EnvName(flag))
}

// BadSetting is an error caused by the value of one setting. A command that
// sets a service's settings from flags of its own (`golden all`) renames
// the setting with Rename, so that the message names the flag its user gave.
type BadSetting struct {
	// Flag is the setting's flag name, without dashes.
	Flag string
	Err  error
}

// SettingError returns err as caused by the setting flag.
func SettingError(flag string, err error) error { return &BadSetting{Flag: flag, Err: err} }

func (e *BadSetting) Error() string { return Setting(e.Flag) + ": " + e.Err.Error() }

func (e *BadSetting) Unwrap() error { return e.Err }

// Rename returns err with every BadSetting in it, joined or at the top,
// naming flags[Flag] instead of Flag where flags has it.
func Rename(err error, flags map[string]string) error {
	switch e := err.(type) { //nolint:errorlint // deliberate: only the top or a join's members; errors.As would drop wrappers
	case *Invalid:
		renamed := make([]error, len(e.Errs))
		for i, x := range e.Errs {
			renamed[i] = Rename(x, flags)
		}
		return &Invalid{Errs: renamed}
	case *BadSetting:
		if to, ok := flags[e.Flag]; ok {
			return &BadSetting{Flag: to, Err: e.Err}
		}
		return e
	case interface{ Unwrap() []error }:
		errs := e.Unwrap()
		renamed := make([]error, len(errs))
		for i, x := range errs {
			renamed[i] = Rename(x, flags)
		}
		return errors.Join(renamed...)
	}
	return err
}

// Hostname returns this machine's host name, the default of the settings
// that name the host (--advertise-addr, --gelf-host), or "localhost" when
// the system does not know it.
func Hostname() string {
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "localhost"
}
