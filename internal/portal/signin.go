package portal

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"time"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/internal/mail"
)

// Invite adds a portal user to a customer (issuers and above) and mails them a
// sign-in link.
func (s *Service) Invite(ctx context.Context, customerID, email, name string, by *entitlements.Staff) (*entitlements.PortalUser, error) {
	if err := entitlements.Require(by, entitlements.RoleIssuer, "inviting a portal user"); err != nil {
		return nil, err
	}
	u, err := s.store.CreatePortalUser(ctx, customerID, email, name, by.Email)
	if err != nil {
		return nil, err
	}
	s.logf("portal user invited", "customer_id", customerID, "actor", by.Email)
	if err := s.sendLink(ctx, u.Email, true); err != nil {
		return u, err
	}
	return u, nil
}

// SetPortalUserDisabled disables or re-enables a customer's portal user (issuers and
// above); disabling ends their sessions at once.
func (s *Service) SetPortalUserDisabled(ctx context.Context, customerID string, id int64, disabled bool, by *entitlements.Staff) error {
	if err := entitlements.Require(by, entitlements.RoleIssuer, "managing portal users"); err != nil {
		return err
	}
	return s.store.SetPortalUserDisabled(ctx, customerID, id, disabled, by.Email)
}

// RequestSignIn mails a one-time sign-in link when the address belongs to an enabled
// portal user. It answers the same for every address, known or not, throttled or
// not, and takes the same time: the mail goes out after the answer.
func (s *Service) RequestSignIn(ctx context.Context, email, addr string) {
	email = strings.ToLower(strings.TrimSpace(email))
	// The address first: a throttled address never spends the email's quota, so
	// nobody can use up another person's links by asking for them.
	if s.SignInLimit.Wait("addr:"+addr) > 0 || s.SignInLimit.Wait("email:"+email) > 0 {
		s.logf("portal sign-in link throttled", "client", addr)
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if err := s.sendLink(ctx, email, false); err != nil && s.Log != nil {
			s.Log.Error("portal sign-in link not sent", "err", err)
		}
	}()
}

// sendLink makes a link for an enabled portal user and mails it; an unknown address
// is not an error (nothing is sent).
func (s *Service) sendLink(ctx context.Context, email string, invited bool) error {
	tok, u, err := s.store.CreateSignInLink(ctx, email)
	if errors.Is(err, entitlements.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	link := strings.TrimRight(s.BaseURL, "/") + "/portal/sign-in/link?" + url.Values{"token": {tok}}.Encode()
	intro := "Here is your sign-in link to the Metrum license portal."
	if invited {
		intro = "You have been invited to the Metrum license portal, where you download your license files."
	}
	body := intro + "\n\n" + link + "\n\nIt works once, for 15 minutes. If you did not ask for it, ignore this message.\n"
	return s.Mailer.Send(ctx, mail.Message{To: u.Email, Subject: "Your Metrum license portal sign-in link", Body: body})
}

// PeekLink says whose a sign-in link is without spending it.
func (s *Service) PeekLink(ctx context.Context, token string) (*entitlements.PortalUser, error) {
	return s.store.PeekSignInLink(ctx, token)
}

// UseLink spends a sign-in link and returns a new session's token.
func (s *Service) UseLink(ctx context.Context, token, addr string) (string, *entitlements.PortalUser, error) {
	return s.store.UseSignInLink(ctx, token, addr)
}

// Session returns the principal of a portal session cookie.
func (s *Service) Session(ctx context.Context, token, addr string) (*entitlements.Principal, *entitlements.PortalUser, error) {
	u, err := s.store.PortalSession(ctx, token)
	if err != nil {
		return nil, nil, err
	}
	return &entitlements.Principal{CustomerID: u.CustomerID, UserID: u.ID, Kind: entitlements.PrincipalPortalUser, Actor: u.Email, Addr: addr}, u, nil
}

// SignOut ends a portal session.
func (s *Service) SignOut(ctx context.Context, token string) error {
	return s.store.EndPortalSession(ctx, token)
}
