package canaryguard

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"

	"github.com/golden-stack/golden/observability/canary"
	"github.com/golden-stack/golden/observability/safetext"
)

// DefaultAlertName is the alert the handler acts on unless WithAlertNames
// says otherwise.
const DefaultAlertName = "GoldenCanaryWorseThanStable"

// PayloadVersion is the only Alertmanager webhook payload version accepted:
// a later one may change the meaning of the fields read here.
const PayloadVersion = "4"

// MaxBodyBytes bounds a notification's body. Alertmanager's are a few KiB
// per alert; the bound keeps a caller from making the handler buffer
// without end.
const MaxBodyBytes = 1 << 20

// RollbackTimeout bounds each call of Rollback, so that a hung store cannot
// hold the request (and Alertmanager's retry) forever.
const RollbackTimeout = 10 * time.Second

// MaxReasonBytes is about the longest reason passed to Rollback (longer
// ones are cut, with "..." appended): it is stored and shown, not read in
// full.
const MaxReasonBytes = 300

// maxSecretBytes bounds the shared secret; a longer one is a wrong file.
const maxSecretBytes = 4096

// The values of the label result of golden_canary_guard_notifications_total.
const (
	resultUnauthorized  = "unauthorized"
	resultBadRequest    = "bad_request"
	resultRolledBack    = "rolled_back"
	resultAlreadyStable = "already_stable"
	resultIgnored       = "ignored"
	resultFailed        = "failed"
)

var results = []string{resultUnauthorized, resultBadRequest, resultRolledBack, resultAlreadyStable, resultIgnored, resultFailed}

// Rollback sets service's canary weight to 0 and records why; changed is
// false when it was already 0. It is called with a context bounded by
// RollbackTimeout that does not end when Alertmanager hangs up, so that a
// rollback once begun is finished. It must be safe for concurrent use:
// notifications may arrive together.
type Rollback func(ctx context.Context, service, reason string) (changed bool, err error)

type options struct {
	log        logrus.FieldLogger
	reg        prometheus.Registerer
	alertNames []string
}

// Option configures the handler.
type Option func(*options)

// WithLogger sets the logger of rollbacks, failures and refused requests. A
// nil l keeps logrus's standard logger.
func WithLogger(l logrus.FieldLogger) Option {
	return func(o *options) {
		if l != nil {
			o.log = l
		}
	}
}

// WithRegisterer registers golden_canary_guard_rollbacks_total and
// golden_canary_guard_notifications_total on r. A nil r, like the default,
// registers nothing.
func WithRegisterer(r prometheus.Registerer) Option {
	return func(o *options) {
		if r != nil {
			o.reg = r
		}
	}
}

// WithAlertNames sets the alerts that roll a canary back, replacing
// DefaultAlertName: for a rule of one's own that also means "this canary is
// worse". Giving none, or an empty name, makes NewHandler fail.
func WithAlertNames(names ...string) Option {
	return func(o *options) { o.alertNames = names }
}

type handler struct {
	secretSum  [sha256.Size]byte
	rollback   Rollback
	log        logrus.FieldLogger
	alertNames map[string]bool
	timeout    time.Duration

	rollbacks     *prometheus.CounterVec
	notifications *prometheus.CounterVec
}

// NewHandler returns the webhook handler (mount it at POST /alerts). secret
// is the shared secret Alertmanager sends as "Authorization: Bearer
// <secret>": 1 to 4096 printable ASCII characters without spaces, as a
// header can carry them. Registering the metrics may fail when they are
// registered already.
func NewHandler(secret string, rollback Rollback, opts ...Option) (http.Handler, error) {
	if err := checkSecret(secret); err != nil {
		return nil, fmt.Errorf("canaryguard: secret %w", err)
	}
	if rollback == nil {
		return nil, errors.New("canaryguard: no rollback")
	}
	o := options{log: logrus.StandardLogger(), alertNames: []string{DefaultAlertName}}
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	if len(o.alertNames) == 0 {
		return nil, errors.New("canaryguard: no alert names")
	}
	h := &handler{
		secretSum:  sha256.Sum256([]byte(secret)),
		rollback:   rollback,
		log:        o.log,
		alertNames: map[string]bool{},
		timeout:    RollbackTimeout,
		rollbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "golden_canary_guard_rollbacks_total",
			Help: "Total number of canaries rolled back (weight set to 0 from more) by the canary guard, by service and the alert that caused it.",
		}, []string{"service", "alertname"}),
		notifications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "golden_canary_guard_notifications_total",
			Help: "Outcomes of the canary guard's webhook: refused requests (unauthorized, bad_request), and in accepted notifications each ignored alert (ignored) and each service rolled back (rolled_back, already_stable, failed).",
		}, []string{"result"}),
	}
	for _, n := range o.alertNames {
		if n == "" {
			return nil, errors.New("canaryguard: empty alert name")
		}
		h.alertNames[n] = true
	}
	for _, r := range results {
		h.notifications.WithLabelValues(r)
	}
	if o.reg != nil {
		if err := o.reg.Register(h.rollbacks); err != nil {
			return nil, fmt.Errorf("canaryguard: registering metrics: %w", err)
		}
		if err := o.reg.Register(h.notifications); err != nil {
			o.reg.Unregister(h.rollbacks)
			return nil, fmt.Errorf("canaryguard: registering metrics: %w", err)
		}
	}
	return h, nil
}

// checkSecret reports whether s can be a bearer secret. Its errors never
// hold s.
func checkSecret(s string) error {
	switch {
	case s == "":
		return errors.New("is empty")
	case len(s) > maxSecretBytes:
		return fmt.Errorf("is longer than %d bytes", maxSecretBytes)
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return errors.New("holds a space, a control or a non-ASCII character, which a header cannot carry")
		}
	}
	return nil
}

// notification is the part of an Alertmanager webhook payload read here.
type notification struct {
	Version string  `json:"version"`
	Alerts  []alert `json:"alerts"`
}

type alert struct {
	Status      string            `json:"status"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	StartsAt    time.Time         `json:"startsAt"`
}

// target is a service to roll back, with the first alert that named it.
type target struct {
	service, alertname, signal, reason string
}

// ServeHTTP checks the request, then rolls back the canary of each service
// a guarded alert fires for, and answers 503 if any rollback failed.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		h.notifications.WithLabelValues(resultBadRequest).Inc()
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed: POST a notification", http.StatusMethodNotAllowed)
		return
	}
	if why := h.unauthorized(r); why != "" {
		h.notifications.WithLabelValues(resultUnauthorized).Inc()
		h.log.WithFields(logrus.Fields{"remote": r.RemoteAddr, "problem": why}).Warn("canary guard: request refused")
		w.Header().Set("WWW-Authenticate", "Bearer")
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	n, code, msg := decode(w, r)
	if code != 0 {
		h.notifications.WithLabelValues(resultBadRequest).Inc()
		h.log.WithFields(logrus.Fields{"remote": r.RemoteAddr, "problem": msg}).Warn("canary guard: bad notification")
		http.Error(w, msg, code)
		return
	}

	var targets []target
	seen := map[string]bool{}
	for i := range n.Alerts {
		a := &n.Alerts[i]
		name := a.Labels["alertname"]
		if a.Status != "firing" || !h.alertNames[name] {
			h.notifications.WithLabelValues(resultIgnored).Inc()
			continue
		}
		service := a.Labels["service"]
		if canary.CheckService(service) != nil {
			h.notifications.WithLabelValues(resultIgnored).Inc()
			h.log.WithFields(logrus.Fields{"alertname": name, "service": safetext.Line(service, 64)}).
				Warn("canary guard: alert ignored: its service label is not a service name")
			continue
		}
		if seen[service] {
			continue
		}
		seen[service] = true
		targets = append(targets, target{
			service:   service,
			alertname: name,
			signal:    safetext.Line(a.Labels["signal"], 64),
			reason:    reason(name, a),
		})
	}

	var failed []string
	for _, t := range targets {
		if err := h.roll(r.Context(), t); err != nil {
			failed = append(failed, t.service)
		}
	}
	if len(failed) > 0 {
		http.Error(w, "rollback failed for "+strings.Join(failed, ", ")+"; retry", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, "ok\n")
}

// unauthorized returns why r lacks the right credentials, for the log, or
// "" when it has them.
func (h *handler) unauthorized(r *http.Request) string {
	values := r.Header.Values("Authorization")
	switch {
	case len(values) == 0:
		return "no Authorization header"
	case len(values) > 1:
		return "more than one Authorization header"
	}
	scheme, token, ok := strings.Cut(values[0], " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "Authorization is not Bearer"
	}
	// Hashes first, so that the comparison takes the same time whatever
	// the length of what was presented.
	got := sha256.Sum256([]byte(token))
	if subtle.ConstantTimeCompare(got[:], h.secretSum[:]) != 1 {
		return "wrong secret"
	}
	return ""
}

// decode reads r's body as a notification. On failure it returns the
// status and a short message for the caller (never what the body held).
func decode(w http.ResponseWriter, r *http.Request) (n notification, code int, msg string) {
	if r.ContentLength > MaxBodyBytes {
		return n, http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", MaxBodyBytes)
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	err := dec.Decode(&n)
	if err == nil {
		// One JSON value and nothing after it, as Alertmanager sends.
		switch _, err = dec.Token(); {
		case errors.Is(err, io.EOF):
			err = nil
		case err == nil:
			err = errors.New("data after the notification")
		}
	}
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return n, http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", MaxBodyBytes)
	case err != nil:
		return n, http.StatusBadRequest, "body is not an Alertmanager webhook notification (JSON)"
	case n.Version != PayloadVersion:
		return n, http.StatusBadRequest, fmt.Sprintf("notification version must be %q", PayloadVersion)
	}
	return n, 0, ""
}

// reason says why the canary of a's service is rolled back, on one line of
// at most about MaxReasonBytes.
func reason(name string, a *alert) string {
	var b strings.Builder
	b.WriteString(name)
	if s := a.Labels["signal"]; s != "" {
		fmt.Fprintf(&b, " (signal=%s)", s)
	}
	if !a.StartsAt.IsZero() {
		b.WriteString(" fired at " + a.StartsAt.UTC().Format(time.RFC3339))
	} else {
		b.WriteString(" fired")
	}
	summary := a.Annotations["summary"]
	if summary == "" {
		summary = "no summary"
	}
	b.WriteString(": " + summary)
	return safetext.Line(b.String(), MaxReasonBytes)
}

// roll rolls t's canary back, counting and logging the outcome.
func (h *handler) roll(parent context.Context, t target) error {
	// Not ended by the caller hanging up: a rollback half done helps
	// nobody, and the store may not undo it.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(parent), h.timeout)
	defer cancel()
	log := h.log.WithFields(logrus.Fields{"service": t.service, "alertname": t.alertname, "signal": t.signal, "reason": t.reason})
	changed, err := h.rollback(ctx, t.service, t.reason)
	switch {
	case err != nil:
		h.notifications.WithLabelValues(resultFailed).Inc()
		log.WithError(err).Warn("canary guard: rollback failed; Alertmanager will retry")
	case changed:
		h.notifications.WithLabelValues(resultRolledBack).Inc()
		h.rollbacks.WithLabelValues(t.service, t.alertname).Inc()
		log.Info("canary guard: canary rolled back (weight 0)")
	default:
		h.notifications.WithLabelValues(resultAlreadyStable).Inc()
		log.Info("canary guard: canary already at weight 0")
	}
	return err
}
