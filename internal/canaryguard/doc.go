// Package canaryguard is the receiver behind `golden canary guard`: an
// Alertmanager webhook that rolls a service's canary back, by setting its
// weight to 0, when the alert GoldenCanaryWorseThanStable fires for it. A
// canary that is worse than stable is then taken out of traffic within one
// notification, without waiting for someone to be paged.
//
// # Requests
//
// Alertmanager posts notifications (webhook payload version "4") to the
// handler, which belongs at POST /alerts. Each request must carry
// "Authorization: Bearer <secret>", the secret shared with Alertmanager's
// http_config.authorization.credentials_file; ReadSecret reads that file.
// Anything else is refused with 401 before the body is read, and the
// presented value is never logged.
//
// Of the alerts in a notification, those that are firing and named as one
// of the guarded alerts (WithAlertNames) count; their label "service" names
// the service to roll back, which must be a valid service name
// (canary.CheckService). Rollback is called once per distinct service of a
// notification, with a reason built from the alert: its name, its "signal"
// label, when it started and its summary annotation. Rollback must be
// idempotent: Alertmanager repeats notifications, and a canary already at
// weight 0 is reported as unchanged, not rolled back again.
//
// # Answers
//
//   - 200 when every rollback succeeded (or nothing was to be done);
//   - 503 when a rollback failed, so that Alertmanager retries the
//     notification;
//   - 400, 405, 413 for requests that are not a notification: retrying
//     them cannot help;
//   - 401 without the right secret.
//
// # Metrics
//
// golden_canary_guard_rollbacks_total{service,alertname} counts canaries
// actually rolled back (weight changed to 0).
// golden_canary_guard_notifications_total{result} counts outcomes: a refused
// request once (unauthorized, bad_request); in an accepted notification
// each ignored alert (ignored: resolved, another alert name, or no valid
// service label) and each service rolled back (rolled_back, already_stable,
// failed).
package canaryguard
