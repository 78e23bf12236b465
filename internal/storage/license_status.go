package storage

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/metrum/licensing/internal/entitlements"
)

// maxChain bounds how far back a supersedes chain is followed.
const maxChain = 64

// lockLicense reads a license under its row lock.
func lockLicense(ctx context.Context, tx pgx.Tx, id string) (*entitlements.License, error) {
	l, err := scanLicense(tx.QueryRow(ctx, `SELECT `+licenseCols+` FROM licenses l JOIN customers c ON c.id = l.customer_id
		WHERE l.id = $1 FOR UPDATE OF l`, id))
	if err != nil {
		return nil, notFound(err, "license", id)
	}
	return l, nil
}

// predecessors returns the supersedes chain of l, nearest first, each row locked
// when lock is set.
func predecessors(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, l *entitlements.License, lock bool) ([]*entitlements.License, error) {
	suffix := ""
	if lock {
		suffix = " FOR UPDATE OF l"
	}
	var out []*entitlements.License
	for id := l.Supersedes; id != "" && len(out) < maxChain; {
		p, err := scanLicense(q.QueryRow(ctx, `SELECT `+licenseCols+` FROM licenses l JOIN customers c ON c.id = l.customer_id
			WHERE l.id = $1`+suffix, id))
		if err != nil {
			return nil, notFound(err, "license", id)
		}
		out = append(out, p)
		id = p.Supersedes
	}
	return out, nil
}

// StatusChainPreview returns, for a revoke or suspend of a license at t, the
// predecessors the chain rule blocks with it (the confirmation names them).
func (s *Store) StatusChainPreview(ctx context.Context, id string, t time.Time) (*entitlements.License, []*entitlements.License, error) {
	l, err := s.GetLicense(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	chain, err := predecessors(ctx, s.pool, l, false)
	if err != nil {
		return nil, nil, unavailable(err)
	}
	return l, chain, nil
}

// ChangeLicenseStatus revokes, suspends or reinstates a license, with its reason and
// actor, under the row locks of the license and its predecessors. Revoking or
// suspending also blocks, at the same effective time, each predecessor still inside
// its changeover (unless Only); reinstating puts back the predecessors that were
// blocked with it. Every changed license gets its audit event, all in one
// transaction. The products' revocation_version moves (a trigger), so the next
// scheduler pass publishes a bundle.
func (s *Store) ChangeLicenseStatus(ctx context.Context, c entitlements.StatusChange, by *entitlements.Staff) (*entitlements.StatusChangeResult, error) {
	var out *entitlements.StatusChangeResult
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		out = &entitlements.StatusChangeResult{}
		l, err := lockLicense(ctx, tx, c.LicenseID)
		if err != nil {
			return err
		}
		chain, err := predecessors(ctx, tx, l, true)
		if err != nil {
			return err
		}
		next, err := entitlements.CheckStatusChange(l.Status, l.SupersededBy != "", l.InChangeover(c.EffectiveAt), c.Action, by, c.Reason)
		if err != nil {
			return err
		}
		if out.License, err = setStatus(ctx, tx, l, next, c.Action, c.Reason, c.EffectiveAt, "", by.Email); err != nil {
			return err
		}
		switch {
		case c.Action == entitlements.ActionReinstate:
			// Predecessors suspended with it return to superseded by their successors,
			// from now (the suspension ended their changeover).
			for _, p := range chain {
				if p.BlockedWith != l.ID || p.Status != entitlements.LicenseSuspended {
					continue
				}
				q, err := setStatus(ctx, tx, p, entitlements.LicenseSuperseded, entitlements.ActionReinstate, "superseded", c.EffectiveAt, "", by.Email)
				if err != nil {
					return err
				}
				out.Chained = append(out.Chained, q)
			}
		case !c.Only:
			for _, p := range entitlements.ChainToBlock(chain, c.EffectiveAt) {
				why := fmt.Sprintf("%s with its successor %s: %s", pastTense(c.Action), l.ID, c.Reason)
				q, err := setStatus(ctx, tx, p, next, c.Action, truncate(why, 200), c.EffectiveAt, l.ID, by.Email)
				if err != nil {
					return err
				}
				out.Chained = append(out.Chained, q)
			}
		}
		return nil
	})
	return out, err
}

func pastTense(action string) string {
	return map[string]string{entitlements.ActionRevoke: "revoked", entitlements.ActionSuspend: "suspended"}[action]
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// setStatus writes one license's new status and its audit event. blockedWith names
// the successor a chained block follows ("" clears it).
func setStatus(ctx context.Context, tx pgx.Tx, l *entitlements.License, next, action, reason string, effectiveAt time.Time,
	blockedWith, actor string) (*entitlements.License, error) {
	var eff *time.Time
	if next != entitlements.LicenseActive {
		eff = &effectiveAt
	}
	if next == entitlements.LicenseSuperseded {
		// Reinstated with a successor: superseded from now (the suspension ended its
		// changeover); the bundle reason says what it was replaced by.
		reason = "superseded"
	}
	var bw *string
	if blockedWith != "" {
		bw = &blockedWith
	}
	err := tx.QueryRow(ctx, `UPDATE licenses SET status = $2, status_reason = $3, status_changed_at = now(),
		status_changed_by = $4, status_effective_at = $5, blocked_with = $6 WHERE id = $1
		RETURNING coalesce(status_effective_at, 'epoch')`, l.ID, next, reason, actor, eff, bw).Scan(&l.StatusEffectiveAt)
	if err != nil {
		return nil, err
	}
	if eff == nil {
		l.StatusEffectiveAt = time.Time{}
	}
	prev := l.Status
	l.Status, l.StatusReason, l.StatusChangedBy, l.BlockedWith = next, reason, actor, blockedWith
	details := map[string]string{"from": prev, "to": next, "reason": reason}
	if eff != nil {
		details["effective_at"] = eff.UTC().Format(time.RFC3339)
	}
	if blockedWith != "" {
		details["with"] = blockedWith
	}
	return l, appendAudit(ctx, tx, &entitlements.AuditEvent{Actor: actor, Action: "license." + action, Subject: l.ID, Details: details})
}

// RestorePrevious lifts a refunded or disputed successor's supersession: its
// predecessor is active again (the next bundle stops listing it) and may be renewed
// or topped up anew; the predecessors blocked with the successor return to superseded
// by the restored license. The successor must be suspended or revoked; the
// predecessor must not be revoked or expired. Audited as license.restore.
func (s *Store) RestorePrevious(ctx context.Context, successorID, reason string, by *entitlements.Staff) (*entitlements.License, error) {
	var out *entitlements.License
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		succ, err := lockLicense(ctx, tx, successorID)
		if err != nil {
			return err
		}
		chain, err := predecessors(ctx, tx, succ, true)
		if err != nil {
			return err
		}
		var prev *entitlements.License
		if len(chain) > 0 {
			prev = chain[0]
		}
		now := time.Now().UTC().Truncate(time.Second)
		if err := entitlements.CanRestorePrevious(succ, prev, now, by, reason); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE licenses SET supersession_lifted_at = now() WHERE id = $1`, succ.ID); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE licenses SET status = 'active', status_reason = '', status_changed_at = now(),
			status_changed_by = $2, status_effective_at = NULL, superseded_by = NULL, blocked_with = NULL WHERE id = $1`, prev.ID, by.Email)
		if err != nil {
			return err
		}
		from := prev.Status
		prev.Status, prev.StatusReason, prev.StatusEffectiveAt, prev.SupersededBy, prev.BlockedWith = entitlements.LicenseActive, "", time.Time{}, "", ""
		if err := appendAudit(ctx, tx, &entitlements.AuditEvent{Actor: by.Email, Action: "license.restore", Subject: prev.ID,
			Details: map[string]string{"from": from, "to": entitlements.LicenseActive, "successor": succ.ID, "reason": reason}}); err != nil {
			return err
		}
		for _, p := range chain[1:] {
			if p.BlockedWith != succ.ID || p.Status != entitlements.LicenseSuspended {
				continue
			}
			if _, err := setStatus(ctx, tx, p, entitlements.LicenseSuperseded, entitlements.ActionReinstate, "superseded", now, "", by.Email); err != nil {
				return err
			}
		}
		out = prev
		return nil
	})
	return out, err
}
