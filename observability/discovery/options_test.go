package discovery

import (
	"testing"

	"github.com/sirupsen/logrus"
)

func TestOptionsNilSafe(t *testing.T) {
	o := newOptions([]Option{nil, WithLogger(nil), WithBeforeDeregister(nil), WithInstanceID("")})
	if o.log != logrus.StandardLogger() || o.beforeDeregister != nil || o.id != "" {
		t.Errorf("nil and empty options changed the defaults: %+v", o)
	}
	if ResolverBuilder(nil, WithLogger(nil)).(*builder).log == nil {
		t.Error("ResolverBuilder has no logger")
	}
}
