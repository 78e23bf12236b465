package issuance

import (
	"context"
	"strconv"
	"sync"

	"github.com/metrum/licensing/internal/entitlements"
)

// Bounds of what a sign-in may carry (RFC 5321 for the address).
const (
	maxEmail    = 254
	maxPassword = 1024
)

// signIns is the sign-in throttle of this replica, shared by every password check.
type signIns struct {
	once sync.Once
	t    *signInThrottle
}

func (s *Service) throttle() *signInThrottle {
	s.signIns.once.Do(func() { s.signIns.t = newSignInThrottle() })
	return s.signIns.t
}

// CheckPassword is the one password check of the console, the staff API and a
// password change: the throttle per account and per client address first, then
// argon2id in a bounded slot; a failure is counted and audited. via names the path
// (console, api, password-change) in the audit trail.
func (s *Service) CheckPassword(ctx context.Context, email, password, addr, via string) (*entitlements.Staff, error) {
	if len(email) > maxEmail || len(password) > maxPassword {
		// Bounded before it reaches a log line, the audit trail or SQL: no account has
		// such an email, and no argon2id runs for such a password.
		return nil, entitlements.Errorf(entitlements.EUNAUTHORIZED, "wrong email or password")
	}
	pair, acct, client := "pair:"+email+"|"+addr, "acct:"+email, "addr:"+addr
	if w := s.throttle().wait(pair, acct, client); w > 0 {
		return nil, tooFast(w)
	}
	var st *entitlements.Staff
	err := s.throttle().hashing(ctx, func() error {
		// Again in the slot: attempts that queued for it together must not all run on
		// the strength of a check made before any of them failed.
		if w := s.throttle().wait(pair, acct, client); w > 0 {
			return tooFast(w)
		}
		var err error
		st, err = s.store.Authenticate(ctx, email, password)
		return err
	})
	if entitlements.ErrorCode(err) == entitlements.EUNAUTHORIZED {
		n := s.throttle().fail(pair, acct, client)
		s.logf("staff sign-in refused", "email", email, "client", addr, "via", via, "failures", n)
		// Aggregated: the first failure of an account from an address, then the 2nd,
		// 4th, 8th… with the count, so a flood of guesses can't grow the trail without
		// bound. An audit write that fails fails the check (no silent gap).
		if n&(n-1) == 0 {
			if aerr := s.store.Audit(ctx, &entitlements.AuditEvent{Actor: "anonymous", Action: "staff.sign_in_failed", Subject: email,
				Details: map[string]string{"client_addr": addr, "via": via, "failures": strconv.Itoa(n)}}); aerr != nil {
				return nil, aerr
			}
		}
		return nil, err
	}
	if err != nil {
		return nil, err
	}
	s.throttle().succeed(pair)
	s.throttle().succeed(acct)
	return st, nil
}

// StartSession starts a console session for a staff member who just proved their
// password (a new random token every time; only its hash is stored).
func (s *Service) StartSession(ctx context.Context, st *entitlements.Staff, addr string) (string, error) {
	return s.store.CreateSession(ctx, st, addr)
}

// SessionStaff returns the staff member of a live console session.
func (s *Service) SessionStaff(ctx context.Context, token string) (*entitlements.Staff, error) {
	return s.store.SessionStaff(ctx, token)
}

// EndSession signs a console session out.
func (s *Service) EndSession(ctx context.Context, token string) error {
	return s.store.DeleteSession(ctx, token)
}

// AuthenticateToken returns the staff member of a live personal access token and the
// token's ID.
func (s *Service) AuthenticateToken(ctx context.Context, token string) (*entitlements.Staff, string, error) {
	return s.store.AuthenticateStaffToken(ctx, token)
}

// Sessions lists the acting staff member's own live sessions (current marks the
// caller's by its token).
func (s *Service) Sessions(ctx context.Context, currentToken string, by *entitlements.Staff) ([]*entitlements.StaffSession, error) {
	if err := entitlements.Require(by, entitlements.NeedOwnAccount, "listing your sessions"); err != nil {
		return nil, err
	}
	return s.store.ListSessions(ctx, by.ID, currentToken)
}

// EndOwnSession ends one of the acting staff member's sessions.
func (s *Service) EndOwnSession(ctx context.Context, id int64, by *entitlements.Staff) error {
	if err := entitlements.Require(by, entitlements.NeedOwnAccount, "ending a session"); err != nil {
		return err
	}
	return s.store.EndSession(ctx, by.ID, id, by.Email)
}
