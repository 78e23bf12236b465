package metering

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/metrum/licensing/internal/mail"
	"github.com/metrum/licensing/internal/storage"
)

// mailEvery is how often unsent warning mails are looked for besides the kick a
// batch gives after writing warnings (a send that failed is tried again then).
const mailEvery = time.Minute

func (s *Service) sendMails(ctx context.Context) {
	t := time.NewTicker(mailEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.kick:
		case <-t.C:
		}
		if _, err := s.SendMails(ctx); err != nil && ctx.Err() == nil {
			s.o.Log.ErrorContext(ctx, "usage warning mails not sent; they are tried again", "err", err)
		}
	}
}

// SendMails sends the warning mails waiting (each claimed first, so replicas don't
// send the same one) and returns how many went out.
func (s *Service) SendMails(ctx context.Context) (int, error) {
	if s.o.Mailer == nil {
		return 0, nil
	}
	sent := 0
	for {
		ms, err := s.store.ClaimUsageMails(ctx, s.now(), 20)
		if err != nil || len(ms) == 0 {
			return sent, err
		}
		for _, m := range ms {
			sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			serr := s.o.Mailer.Send(sctx, s.message(m))
			cancel()
			if serr != nil {
				s.o.Log.WarnContext(ctx, "usage warning mail failed; it is tried again", "license_id", m.LicenseID, "threshold", m.Threshold, "attempt", m.Attempts, "err", serr)
			} else {
				sent++
			}
			if err := s.store.MarkUsageMail(ctx, m, s.now(), serr); err != nil {
				return sent, err
			}
		}
	}
}

// message is one warning mail: plain text, what was used of what, and where to see
// it (and buy more, where the portal sells credit packs).
func (s *Service) message(m storage.UsageMail) mail.Message {
	what := "its token budget"
	if m.Window > 0 {
		what = "its token budget for the rolling " + days(m.Window)
	}
	subject := fmt.Sprintf("Metrum: license %s has used %d %% of %s", m.LicenseID, m.Threshold, what)
	var b strings.Builder
	fmt.Fprintf(&b, "License %s (%s, %s) has used %s of %s of %s tokens: %d %%.\n\n", m.LicenseID, m.SKU, m.CustomerName,
		group(m.Used), what, group(m.Budget), m.Threshold)
	if m.Threshold >= 100 {
		b.WriteString("Its routers now refuse requests that need more tokens than the budget has left.\n\n")
	} else {
		b.WriteString("When the budget is used up, its routers refuse requests that need more tokens.\n\n")
	}
	fmt.Fprintf(&b, "See its usage, per day and per host, in the license portal (and buy a credit pack where the portal offers one):\n%s/portal/licenses/%s/usage\n\n",
		strings.TrimRight(s.o.BaseURL, "/"), m.LicenseID)
	b.WriteString("Questions: contact@metrum.ai. You get this mail once for each threshold (80 % and 100 %).\n")
	return mail.Message{To: m.Email, Subject: subject, Body: b.String()}
}

func days(d time.Duration) string {
	n := int64(d / (24 * time.Hour))
	if n*24*int64(time.Hour) == int64(d) {
		return strconv.FormatInt(n, 10) + " days"
	}
	return d.String()
}

// group writes n with thousands separators.
func group(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	if neg {
		return "-" + s
	}
	return s
}
