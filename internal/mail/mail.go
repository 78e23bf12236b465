// Package mail sends the issuer's few messages (portal sign-in links) through SMTP,
// or, in dev, prints them to the console.
package mail

import (
	"context"
	"fmt"
	"io"
	"mime"
	"net"
	"net/smtp"
	"strings"
	"sync"
	"time"
)

// Message is one plain-text mail.
type Message struct {
	To      string
	Subject string
	Body    string
}

// Mailer sends a message.
type Mailer interface {
	Send(ctx context.Context, m Message) error
}

// SMTP sends through an SMTP server with net/smtp: STARTTLS when the server offers it,
// PLAIN auth when a username is set (net/smtp refuses to send it unencrypted except
// to localhost).
type SMTP struct {
	Addr     string // host:port
	From     string
	Username string
	Password string
}

var _ Mailer = (*SMTP)(nil)

// Send implements Mailer.
func (s *SMTP) Send(ctx context.Context, m Message) error {
	if strings.ContainsAny(m.To, "\r\n") || strings.ContainsAny(m.Subject, "\r\n") {
		return fmt.Errorf("mail: header injection refused")
	}
	host, _, err := net.SplitHostPort(s.Addr)
	if err != nil {
		return fmt.Errorf("mail: smtp address %q: %w", s.Addr, err)
	}
	var auth smtp.Auth
	if s.Username != "" {
		auth = smtp.PlainAuth("", s.Username, s.Password, host)
	}
	msg := "From: " + s.From + "\r\n" +
		"To: " + m.To + "\r\n" +
		"Subject: " + mime.QEncoding.Encode("utf-8", m.Subject) + "\r\n" +
		"Date: " + time.Now().UTC().Format(time.RFC1123Z) + "\r\n" +
		"MIME-Version: 1.0\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n" +
		"Content-Transfer-Encoding: 8bit\r\n\r\n" +
		strings.ReplaceAll(m.Body, "\n", "\r\n")
	done := make(chan error, 1)
	go func() { done <- smtp.SendMail(s.Addr, auth, s.From, []string{m.To}, []byte(msg)) }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("mail: send to %s: %w", s.Addr, err)
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Console prints messages instead of sending them (`issuer dev`): the sign-in link
// appears in the terminal that runs the issuer.
type Console struct {
	mu  sync.Mutex
	Out io.Writer
}

var _ Mailer = (*Console)(nil)

// Send implements Mailer.
func (c *Console) Send(_ context.Context, m Message) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, err := fmt.Fprintf(c.Out, "\n--- mail to %s: %s ---\n%s\n---\n", m.To, m.Subject, m.Body)
	return err
}

// Unconfigured refuses to send: the running issuer has no SMTP server configured.
type Unconfigured struct{}

var _ Mailer = Unconfigured{}

// ErrUnconfigured says how to configure mail.
var ErrUnconfigured = fmt.Errorf("mail: no SMTP server configured (mail.smtp_addr / ISSUER_SMTP_ADDR): the sign-in link was not sent")

// Send implements Mailer.
func (Unconfigured) Send(context.Context, Message) error { return ErrUnconfigured }
