// Package smtptest runs a real SMTP server (emersion/go-smtp) on loopback for tests:
// the issuer sends through net/smtp as in production, and the test reads what
// arrived.
package smtptest

import (
	"io"
	"net"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// Message is one received mail.
type Message struct {
	From string
	To   []string
	Data string
}

// Server is a listening SMTP server that keeps every message.
type Server struct {
	Addr string
	mu   sync.Mutex
	msgs []Message
	got  chan struct{}
}

// Start listens on 127.0.0.1 until the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{got: make(chan struct{}, 100)}
	srv := smtp.NewServer(&backend{s})
	srv.Domain, srv.AllowInsecureAuth = "localhost", true
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Addr = ln.Addr().String()
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return s
}

// Wait returns the first message to rcpt that arrives within d, or fails the test.
func (s *Server) Wait(t testing.TB, rcpt string, d time.Duration) Message {
	t.Helper()
	deadline := time.After(d)
	for {
		s.mu.Lock()
		for _, m := range s.msgs {
			for _, to := range m.To {
				if to == rcpt {
					s.mu.Unlock()
					return m
				}
			}
		}
		s.mu.Unlock()
		select {
		case <-s.got:
		case <-deadline:
			t.Fatalf("smtptest: no mail to %s within %s", rcpt, d)
		}
	}
}

// Last returns the newest message to rcpt (zero Message if none).
func (s *Server) Last(rcpt string) Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.msgs) - 1; i >= 0; i-- {
		for _, to := range s.msgs[i].To {
			if to == rcpt {
				return s.msgs[i]
			}
		}
	}
	return Message{}
}

// Count returns how many messages arrived for rcpt.
func (s *Server) Count(rcpt string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, m := range s.msgs {
		for _, to := range m.To {
			if to == rcpt {
				n++
			}
		}
	}
	return n
}

// All returns every message to rcpt, oldest first.
func (s *Server) All(rcpt string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Message
	for _, m := range s.msgs {
		for _, to := range m.To {
			if to == rcpt {
				out = append(out, m)
			}
		}
	}
	return out
}

var linkRe = regexp.MustCompile(`https?://\S+/portal/sign-in/link\?token=[A-Za-z0-9_-]+`)

// Link returns the portal sign-in link in a message ("" if none).
func (m Message) Link() string { return linkRe.FindString(m.Data) }

type backend struct{ s *Server }

func (b *backend) NewSession(*smtp.Conn) (smtp.Session, error) { return &session{s: b.s}, nil }

type session struct {
	s   *Server
	msg Message
}

func (x *session) Mail(from string, _ *smtp.MailOptions) error { x.msg.From = from; return nil }
func (x *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	x.msg.To = append(x.msg.To, to)
	return nil
}
func (x *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	x.msg.Data = string(b)
	x.s.mu.Lock()
	x.s.msgs = append(x.s.msgs, x.msg)
	x.s.mu.Unlock()
	x.s.got <- struct{}{}
	return nil
}
func (x *session) Reset()        { x.msg = Message{} }
func (x *session) Logout() error { return nil }
