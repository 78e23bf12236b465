package metering

import (
	"context"
	"errors"
	"regexp"
	"slices"
	"strings"

	"github.com/go-json-experiment/json"

	"github.com/metrum/licensing/internal/batcher"
	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/internal/storage"
	"github.com/metrum/licensing/usage"
	"github.com/metrum/licensing/verify"
)

// upload is one upload body's reports, as read before its batch.
type upload struct {
	cred    *Credential
	reports []*incoming
	// tail is the refusal of the first report that could not even be read, after
	// reports: it is the answer unless one of them fails first.
	tail error
}

// job is an upload in its batch.
type job = batcher.Job[*upload, *entitlements.UsageAnswer]

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

// Deadlines are the lease path's (internal/batcher): a batch runs under the earliest
// deadline of its uploads less a reserve, and drops an upload too close to its own (a
// 503 that changed nothing; a host re-sends, and what was kept answers as duplicates).
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
	p := &upload{cred: c}
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
	return s.batches.Submit(ctx, p)
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

func unavailable(err error) error {
	if errors.Is(err, context.Canceled) {
		return err
	}
	return &entitlements.Error{Code: entitlements.EUNAVAILABLE, Message: "the usage service is busy or the database is unreachable: send the reports again later", Err: err}
}

// decide runs one batch in one transaction and answers each of its uploads.
//
// ctx is the batch's deadline, before the first of its uploads must be answered.
func (s *Service) decide(ctx context.Context, batch []*job) {
	now := s.now()
	ub := &storage.UsageBatch{Now: now}
	uploads := make([]*upload, len(batch))
	for i, j := range batch {
		uploads[i] = j.Req
		for _, in := range j.Req.reports {
			ub.Reports = append(ub.Reports, storage.UsageSeq{UsageChainKey: in.key, Seq: in.seq})
			if !slices.Contains(ub.Licenses, in.key.LicenseID) {
				ub.Licenses = append(ub.Licenses, in.key.LicenseID)
			}
		}
	}
	var results []result
	var heads []*entitlements.UsageHead
	committed, err := s.store.IngestUsage(ctx, ub, func(st *storage.UsageState) (*storage.UsageDecision, error) {
		d, rs := decideBatch(st, uploads)
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
		for _, j := range batch {
			j.Answer(nil, err)
		}
		return
	}
	s.cacheKeys(heads)
	for _, w := range committed.Warnings {
		s.o.Log.InfoContext(ctx, "usage warning", "license_id", w.LicenseID, "threshold", w.Threshold, "used", w.Used, "budget", w.Budget)
	}
	if len(committed.Warnings) > 0 {
		s.alerts.forget() // a license crossed 80 % or 100 %: the dashboard's counts changed
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
	for i, j := range batch {
		j.Answer(results[i].answer, results[i].err)
	}
}
