package lookup

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/golden-stack/golden/observability/safetext"
)

// timeLayout shows spans' microseconds; Graylog's log times have milliseconds.
const timeLayout = "2006-01-02 15:04:05.000000"

// WriteText writes r as a table ordered by time, one line per log line or
// span (spans indented by their depth in the trace), followed by the links
// to Graylog's search and each trace in Jaeger. Text from the backends is
// stripped of control characters first.
func WriteText(w io.Writer, r *Result) error {
	ew := &errWriter{w: w}
	fmt.Fprintf(ew, "request %s: %s and %s in %s (last %s)\n\n", r.RequestID,
		plural(r.Logs, "log line"), plural(r.Spans, "span"), plural(len(r.Traces), "trace"), r.Range)

	if len(r.Timeline) > 0 {
		tw := tabwriter.NewWriter(ew, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "TIME (UTC)\tSERVICE\tKIND\tLEVEL/STATUS\tDURATION\tMESSAGE")
		for _, e := range r.Timeline {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n",
				timeText(e.Time), orDash(safetext.Line(e.Service, 40)), e.Kind, orDash(safetext.Line(statusText(e), 40)),
				durationText(e.Duration), messageText(e))
		}
		tw.Flush()
		fmt.Fprintln(ew)
	}

	fmt.Fprintf(ew, "Graylog: %s\n", r.GraylogURL)
	for _, t := range r.Traces {
		var note string
		switch {
		case t.Found:
			note = plural(t.Spans, "span")
			if t.Errors > 0 {
				note += fmt.Sprintf(", %d with an error", t.Errors)
			}
		case t.Skipped:
			note = "not fetched"
		default:
			note = "not in Jaeger: not sampled, not flushed yet, or expired"
		}
		fmt.Fprintf(ew, "Jaeger:  %s (%s)\n", t.URL, note)
	}
	if r.LogsTotal > r.Logs && len(r.Errors) == 0 {
		fmt.Fprintf(ew, "Only the first %d of %d log lines were fetched.\n", r.Logs, r.LogsTotal)
	}
	return ew.err
}

// WriteJSON writes r as one indented JSON document.
func WriteJSON(w io.Writer, r *Result) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false) // keep the links' & readable
	return enc.Encode(r)
}

func statusText(e Entry) string {
	if e.Kind == KindLog {
		return e.Level
	}
	if e.GRPCCode != "" {
		return e.Status + " (" + e.GRPCCode + ")"
	}
	return e.Status
}

func messageText(e Entry) string {
	var b strings.Builder
	if e.Kind == KindSpan {
		b.WriteString(strings.Repeat("  ", min(e.Depth, 20)))
	}
	b.WriteString(safetext.Line(e.Message, 500))
	if e.Kind == KindSpan && e.SpanKind != "" {
		b.WriteString(" [" + safetext.Line(e.SpanKind, 20) + "]")
	}
	if e.Kind == KindLog {
		if e.Method != "" {
			b.WriteString("  method=" + safetext.Line(e.Method, 200))
		}
		if e.GRPCCode != "" {
			b.WriteString(" code=" + safetext.Line(e.GRPCCode, 40))
		}
		if e.HTTPStatus != 0 {
			fmt.Fprintf(&b, " status=%d", e.HTTPStatus)
		}
	}
	return b.String()
}

func timeText(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(timeLayout)
}

func durationText(d time.Duration) string {
	if d <= 0 {
		return ""
	}
	return d.Round(time.Microsecond).String()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// errWriter keeps the first write error so the caller checks once.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}
