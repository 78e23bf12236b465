package leases

import (
	"errors"

	"github.com/metrum/licensing/internal/entitlements"
)

// Deadlines (docs/operations.md, "Deadlines"): every lease request has one (its
// context's, or Options.Deadline), and a 503 means nothing changed, so a request is
// answered 503 only when its batch is known not to have committed. internal/batcher
// keeps the rules (drop a request too close to its deadline, run a batch under the
// earliest deadline less a reserve, wait for a batch that took a request); a batch
// whose COMMIT was sent but not answered reports EOUTCOMEUNKNOWN, a 503 of its own
// problem type, and the server's commit guard rolls such a batch back if it reaches
// the COMMIT after its deadline, so it can only have committed if the server was
// inside the commit at that time.

// errTooLate answers a request dropped before its batch started.
var errTooLate = &entitlements.Error{Code: entitlements.EUNAVAILABLE, Message: "the lease service is busy or the database is unreachable: retry",
	Err: errors.New("leases: the request's deadline passed before its batch started")}

// errOutcomeUnknown answers a request whose batch did not report in time.
var errOutcomeUnknown = &entitlements.Error{Code: entitlements.EOUTCOMEUNKNOWN,
	Message: "the database did not confirm this lease in time: it may have been recorded (a retry renews it), but no lease was handed out",
	Err:     errors.New("leases: the request's batch did not report before its deadline")}
