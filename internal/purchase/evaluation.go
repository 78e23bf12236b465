package purchase

import (
	"context"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/metrum/licensing/internal/config"
	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/internal/mail"
)

// evaluationLinkTTL is how long a new visitor's evaluation link works.
const evaluationLinkTTL = 15 * time.Minute

func (s *Service) evaluationItem() (config.CatalogueItem, bool) {
	for _, it := range s.Catalogue {
		if it.Kind == entitlements.OrderEvaluation {
			return it, true
		}
	}
	return config.CatalogueItem{}, false
}

// EvaluationOffered reports whether new visitors can start a free evaluation.
func (s *Service) EvaluationOffered() bool { _, ok := s.evaluationItem(); return ok }

// RequestEvaluation mails a new visitor a one-time link that, once used, creates
// their customer and portal account and issues the evaluation. The answer is the same
// whatever happens next; the checks (one per email domain in the period, an address
// without an account) run when the link is used, under a lock per domain.
func (s *Service) RequestEvaluation(ctx context.Context, email, company, addr string) error {
	email, company = strings.ToLower(strings.TrimSpace(email)), strings.TrimSpace(company)
	email, _, err := entitlements.ValidatePortalUser(email, "")
	f := map[string]string{}
	if err != nil {
		f["email"] = "not an email address"
	}
	if company == "" || len(company) > 200 {
		f["company"] = "your organisation's name, 1 to 200 characters"
	}
	if err := entitlements.Invalid(f); err != nil {
		return err
	}
	if !s.EvaluationOffered() {
		return entitlements.Errorf(entitlements.ENOTFOUND, "evaluations are not offered: contact sales")
	}
	// The address first (as for sign-in links): a throttled address never spends
	// the email's quota.
	if s.Portal.SignInLimit.Wait("addr:"+addr) > 0 || s.Portal.SignInLimit.Wait("eval:"+email) > 0 {
		s.logf(ctx, slog.LevelInfo, "evaluation request throttled", "client", addr)
		return nil
	}
	tok, err := s.store.CreateEvaluationRequest(ctx, email, company, evaluationLinkTTL)
	if err != nil {
		return err
	}
	link := s.BaseURL + "/portal/evaluate/link?" + url.Values{"token": {tok}}.Encode()
	go func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		err := s.Portal.Mailer.Send(ctx, mail.Message{To: email, Subject: "Start your Metrum evaluation",
			// No text of the requester's in the mail (their company name goes only into the
			// record): the vendor's mailer must not carry an attacker's words to anyone.
			Body: "Open this link to start your 72-hour Metrum evaluation:\n\n" + link +
				"\n\nIt works once, for 15 minutes. If you did not ask for it, ignore this message.\n"})
		if err != nil {
			s.logf(ctx, slog.LevelError, "evaluation link not sent", "err", err)
		}
	}()
	return nil
}

// PeekEvaluation says whose an evaluation link is, without spending it.
func (s *Service) PeekEvaluation(ctx context.Context, token string) (*entitlements.EvaluationRequest, error) {
	return s.store.PeekEvaluationRequest(ctx, token)
}

// StartEvaluation spends an evaluation link: a customer, its portal user and the free
// evaluation order are created (refused when the email's domain had an evaluation
// within the period), the evaluation license is issued, and a portal session opened.
// It returns the session token and the fulfilment.
func (s *Service) StartEvaluation(ctx context.Context, token string) (string, *Result, error) {
	it, ok := s.evaluationItem()
	if !ok {
		return "", nil, entitlements.Errorf(entitlements.ENOTFOUND, "evaluations are not offered: contact sales")
	}
	o, u, err := s.store.StartEvaluation(ctx, token, s.DomainPeriod, it.ID, it.Template, it.Currency)
	if err != nil {
		return "", nil, err
	}
	res, err := s.fulfilOrder(ctx, o, "evaluation")
	if err != nil {
		return "", nil, err
	}
	sess, err := s.store.OpenPortalSession(ctx, u)
	if err != nil {
		return "", nil, err
	}
	return sess, res, nil
}
