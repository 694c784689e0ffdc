package testbackend

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// Mailpit is a real Mailpit (an SMTP server that keeps what it receives,
// with an HTTP API) started by StartMailpit.
type Mailpit struct {
	// SMTPAddr is the SMTP server's host:port.
	SMTPAddr string
	// URL is the web interface's and API's base URL.
	URL string
	*Process
}

// StartMailpit runs Mailpit on free loopback ports, accepting mail without
// authentication or TLS, until the test ends.
func StartMailpit(t testing.TB) *Mailpit {
	t.Helper()
	bin := Binary(t, "mailpit")
	m := &Mailpit{
		SMTPAddr: "127.0.0.1:" + strconv.Itoa(FreePort(t)),
		URL:      "http://127.0.0.1:" + strconv.Itoa(FreePort(t)),
	}
	u, _ := url.Parse(m.URL)
	m.Process = Start(t, bin,
		"--listen", u.Host,
		"--smtp", m.SMTPAddr,
		"--database", filepath.Join(t.TempDir(), "mailpit.db"),
		"--disable-version-check",
		"--quiet",
	)
	m.WaitFor(t, time.Minute, HTTPReady(m.URL+"/readyz"))
	return m
}

// MailpitMessage is one message as Mailpit's API describes it.
type MailpitMessage struct {
	ID      string
	Subject string
	To      []struct{ Address string }
	// Text is the plain text body, filled by Message.
	Text string
}

// Messages lists the messages received, newest first (GET
// /api/v1/messages), without their bodies.
func (m *Mailpit) Messages() ([]MailpitMessage, error) {
	var list struct{ Messages []MailpitMessage }
	if err := m.get("/api/v1/messages", &list); err != nil {
		return nil, err
	}
	return list.Messages, nil
}

// Message returns one message with its plain text body (GET
// /api/v1/message/{id}).
func (m *Mailpit) Message(id string) (MailpitMessage, error) {
	var msg MailpitMessage
	err := m.get("/api/v1/message/"+url.PathEscape(id), &msg)
	return msg, err
}

func (m *Mailpit) get(path string, out any) error {
	resp, err := http.Get(m.URL + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("mailpit GET %s: %s", path, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}
