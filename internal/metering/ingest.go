package metering

import (
	"context"
	"errors"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-json-experiment/json"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/internal/storage"
	"github.com/metrum/licensing/usage"
	"github.com/metrum/licensing/verify"
)

// pending is one upload waiting for its batch.
type pending struct {
	cred    *Credential
	reports []*incoming
	// tail is the refusal of the first report that could not even be read, after
	// reports: it is the answer unless one of them fails first.
	tail     error
	deadline time.Time
	state    atomic.Int32
	done     chan result
}

// incoming is one report of an upload as read before its batch.
type incoming struct {
	env []byte
	key entitlements.UsageChainKey
	seq int64
	// rep is the report verified before the batch (seq 1 with the host_key it
	// carries, or a cached bound key); nil: its batch verifies it with the chain's key.
	rep *usage.Report
}

type result struct {
	answer *entitlements.UsageAnswer
	err    error
}

const (
	queued int32 = iota
	taken
	dropped
)

// Deadlines, as the lease path's (internal/leases/deadlines.go): a batch runs under
// the earliest deadline of its uploads less answerReserve, and drops an upload with
// less than minBatch left (a 503 that changed nothing; a host re-sends, and what was
// kept answers as duplicates).
const (
	answerReserve = 150 * time.Millisecond
	minBatch      = 200 * time.Millisecond
	answerGrace   = 250 * time.Millisecond
)

var errTooLate = &entitlements.Error{Code: entitlements.EUNAVAILABLE, Message: "the usage service is busy or the database is unreachable: send the reports again later",
	Err: errors.New("metering: the upload's deadline passed before its batch started")}

var errOutcomeUnknown = &entitlements.Error{Code: entitlements.EOUTCOMEUNKNOWN,
	Message: "the database did not confirm this upload in time: it may have been kept; sending it again is safe (duplicates)",
	Err:     errors.New("metering: the upload's batch did not report before its deadline")}

// Ingest checks and keeps an upload body (usage.md section 3): one envelope or
// {"reports": […]}, each report in order. The answer is the counts of accepted and
// duplicate reports and the last accepted seq of each chain the body names; or the
// refusal (usage-invalid, usage-fork, usage-gap) of the first report that failed,
// the reports before it being kept.
func (s *Service) Ingest(ctx context.Context, c *Credential, body []byte) (*entitlements.UsageAnswer, error) {
	envs, err := usage.ParseBatch(body)
	if err != nil {
		return nil, entitlements.UsageRefusal(entitlements.EUSAGEINVALID, 0, 0, "%s", strings.TrimPrefix(err.Error(), "usage: "))
	}
	p := &pending{cred: c, deadline: deadlineOf(ctx, s.o.Deadline), done: make(chan result, 1)}
	for i, env := range envs {
		in, err := s.prepare(env)
		if err != nil {
			p.tail = entitlements.UsageRefusal(entitlements.EUSAGEINVALID, i, 0, "report %d: %s", i, safe(err))
			break
		}
		p.reports = append(p.reports, in)
	}
	if len(p.reports) == 0 {
		return nil, p.tail
	}
	return s.submit(ctx, p)
}

// Upload is Ingest for a customer's principal: a file carried out of an air-gapped
// site, uploaded with a customer API token or in the portal.
func (s *Service) Upload(ctx context.Context, p *entitlements.Principal, body []byte) (*entitlements.UsageAnswer, error) {
	c, err := CredentialOf(p)
	if err != nil {
		return nil, err
	}
	return s.Ingest(ctx, c, body)
}

var instanceRe = regexp.MustCompile(`^ins_[0-7][0-9A-HJKMNP-TV-Z]{25}$`)

// prepare reads what a report's batch needs before the batch: its chain and seq
// (unverified yet), and, where the key is known, the verified report.
func (s *Service) prepare(env []byte) (*incoming, error) {
	var e struct {
		Payload *string `json:"payload"`
	}
	// Unknown members are left to usage.Parse (which refuses them): this only finds the chain.
	if err := json.Unmarshal(env, &e); err != nil || e.Payload == nil {
		return nil, errors.New("not a report envelope")
	}
	raw, err := verify.DecodeB64("payload", *e.Payload)
	if err != nil {
		return nil, err
	}
	var p struct {
		LicenseID  string `json:"license_id"`
		InstanceID string `json:"instance_id"`
		Seq        int64  `json:"seq"`
	}
	if err := json.Unmarshal(raw, &p); err != nil {
		return nil, errors.New("the payload is not the JSON of a report")
	}
	if !entitlements.ValidID(entitlements.PrefixLicense, p.LicenseID) || !instanceRe.MatchString(p.InstanceID) || p.Seq < 1 {
		return nil, errors.New("license_id, instance_id or seq is not valid")
	}
	in := &incoming{env: env, key: entitlements.UsageChainKey{LicenseID: p.LicenseID, InstanceID: p.InstanceID}, seq: p.Seq}
	if p.Seq == 1 {
		// A chain's first report carries its key: check it now, whatever the chain.
		if in.rep, err = usage.Parse(env, nil); err != nil {
			return nil, err
		}
	} else if k := s.cachedKey(in.key); k != nil {
		in.rep, _ = usage.Parse(env, k) // a failure is checked again with the key its batch reads
	}
	return in, nil
}

// safe is an error's text for the answer: the usage package's messages name no
// secret, only what is wrong with the report.
func safe(err error) string { return strings.TrimPrefix(err.Error(), "usage: ") }

func deadlineOf(ctx context.Context, def time.Duration) time.Time {
	if d, ok := ctx.Deadline(); ok {
		return d
	}
	return time.Now().Add(def)
}

// submit queues an upload and waits for its batch.
func (s *Service) submit(ctx context.Context, p *pending) (*entitlements.UsageAnswer, error) {
	select {
	case s.queue <- p:
	case <-ctx.Done():
		return nil, unavailable(ctx.Err())
	}
	select {
	case r := <-p.done:
		return r.answer, r.err
	case <-ctx.Done():
	}
	if p.state.CompareAndSwap(queued, dropped) {
		return nil, unavailable(ctx.Err()) // no batch took it: nothing was done
	}
	t := time.NewTimer(answerGrace)
	defer t.Stop()
	select {
	case r := <-p.done:
		return r.answer, r.err
	case <-t.C:
		return nil, errOutcomeUnknown
	}
}

func unavailable(err error) error {
	if errors.Is(err, context.Canceled) {
		return err
	}
	return &entitlements.Error{Code: entitlements.EUNAVAILABLE, Message: "the usage service is busy or the database is unreachable: send the reports again later", Err: err}
}

func (s *Service) work(ctx context.Context) {
	batch := make([]*pending, 0, s.o.MaxBatch)
	for {
		select {
		case <-ctx.Done():
			return
		case p := <-s.queue:
			batch = append(batch[:0], p)
		}
		n := len(batch[0].reports)
	drain:
		for len(batch) < s.o.MaxBatch && n < s.o.MaxReports {
			select {
			case p := <-s.queue:
				batch = append(batch, p)
				n += len(p.reports)
			default:
				break drain
			}
		}
		s.decide(ctx, batch)
	}
}

// admit takes the queued uploads into a batch (as the lease path's admit).
func admit(queue []*pending) ([]*pending, time.Time) {
	now := time.Now()
	batch := queue[:0]
	var by time.Time
	for _, p := range queue {
		if !p.state.CompareAndSwap(queued, taken) {
			continue
		}
		d := p.deadline.Add(-answerReserve)
		if d.Sub(now) < minBatch {
			p.done <- result{err: errTooLate}
			continue
		}
		if by.IsZero() || d.Before(by) {
			by = d
		}
		batch = append(batch, p)
	}
	return batch, by
}

// decide runs one batch in one transaction and answers each of its uploads.
func (s *Service) decide(ctx context.Context, queued []*pending) {
	batch, by := admit(queued)
	if len(batch) == 0 {
		return
	}
	ctx, cancel := context.WithDeadline(ctx, by)
	defer cancel()
	now := s.now()
	ub := &storage.UsageBatch{Now: now}
	for _, p := range batch {
		for _, in := range p.reports {
			ub.Reports = append(ub.Reports, storage.UsageSeq{UsageChainKey: in.key, Seq: in.seq})
			if !slices.Contains(ub.Licenses, in.key.LicenseID) {
				ub.Licenses = append(ub.Licenses, in.key.LicenseID)
			}
		}
	}
	var results []result
	var heads []*entitlements.UsageHead
	committed, err := s.store.IngestUsage(ctx, ub, func(st *storage.UsageState) (*storage.UsageDecision, error) {
		d, rs := decideBatch(st, batch)
		results, heads = rs, d.Heads
		return d, nil
	})
	if err != nil {
		var de *entitlements.Error
		if !errors.As(err, &de) {
			if ctx.Err() != nil {
				err = unavailable(err)
			}
			s.o.Log.ErrorContext(ctx, "usage batch failed: nothing of it was kept", "uploads", len(batch), "err", err)
		}
		for _, p := range batch {
			p.done <- result{err: err}
		}
		return
	}
	s.cacheKeys(heads)
	for _, w := range committed.Warnings {
		s.o.Log.InfoContext(ctx, "usage warning", "license_id", w.LicenseID, "threshold", w.Threshold, "used", w.Used, "budget", w.Budget)
	}
	if len(committed.Warnings) > 0 {
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
	for i, p := range batch {
		p.done <- results[i]
	}
}
