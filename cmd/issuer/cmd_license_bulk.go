package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/go-json-experiment/json"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/internal/staffapi"
	"github.com/metrum/licensing/internal/staffclient"
	"github.com/metrum/licensing/verify"
)

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// printJSONLine writes v as one line of JSON (NDJSON: a result printed as it arrives).
func (a *app) printJSONLine(v any) {
	b, err := json.Marshal(v, json.Deterministic(true))
	if err != nil {
		b, _ = json.Marshal(map[string]string{"error": err.Error()})
	}
	fmt.Fprintf(a.stdout, "%s\n", b)
}

// bulkRun is what the CLI has seen of a bulk issue's stream.
type bulkRun struct {
	job       staffapi.Progress // the first line: job ID, start, how many
	received  int               // result lines
	printed   map[string]bool   // licenses printed
	withToken map[string]bool   // licenses whose lease token was printed
	failed    int
}

// issueAll runs `license issue --all-approved` as a bulk job on the server, which
// issues in parallel and streams a line per license: each result is printed as it
// arrives (--json: NDJSON), progress goes to stderr. If the stream breaks, it says how
// far it got and how to see what the server finished.
func issueAll(ctx context.Context, a *app, svc remote, asJSON bool) error {
	run := &bulkRun{printed: map[string]bool{}, withToken: map[string]bool{}}
	last, err := svc.IssueAll(ctx, func(p staffapi.Progress) {
		if p.N == 0 && p.Job != "" {
			run.job = p
			if asJSON {
				a.printJSONLine(map[string]any{"job_id": p.Job, "of": p.Of, "started_at": verify.FormatTime(p.StartedAt)})
			}
			fmt.Fprintf(a.stderr, "job %s: %d approved entitlements (results again: issuer license issue --job %s)\n", p.Job, p.Of, p.Job)
			return
		}
		run.received++
		if p.Error != "" {
			run.failed++
			fmt.Fprintf(a.stderr, "[%d/%d] %s: %s\n", p.N, p.Of, p.ID, p.Error)
			if asJSON {
				a.printJSONLine(map[string]any{"n": p.N, "of": p.Of, "entitlement_id": p.ID, "error": p.Error})
			}
			return
		}
		run.printed[p.License.ID] = true
		if p.LeaseToken != "" {
			run.withToken[p.License.ID] = true
		}
		fmt.Fprintf(a.stderr, "[%d/%d] %s → %s\n", p.N, p.Of, p.ID, p.License.ID)
		if asJSON {
			m := licJSON(p.License)
			m["n"], m["of"] = p.N, p.Of
			if p.LeaseToken != "" {
				m["lease_token"] = p.LeaseToken
			}
			a.printJSONLine(m)
			return
		}
		fmt.Fprintf(a.stdout, "issued %s (%s for %s, expires %s, key %s)\n", p.License.ID, p.License.SKU, p.License.CustomerID, verify.FormatTime(p.License.ExpiresAt), p.License.KeyID)
		if p.LeaseToken != "" {
			fmt.Fprintf(a.stdout, "lease token of %s (shown once; the router sends it as a Bearer token): %s\n", p.License.ID, p.LeaseToken)
		}
	})
	if errors.Is(err, staffclient.ErrBroken) {
		return brokenStream(ctx, a, svc, run, asJSON, err)
	}
	if err != nil {
		return err
	}
	if asJSON {
		a.printJSONLine(map[string]any{"done": true, "job_id": run.job.Job, "issued": last.Count, "of": last.Of})
	} else if last.Of == 0 {
		fmt.Fprintln(a.stdout, "no approved entitlements to issue")
	} else {
		fmt.Fprintf(a.stdout, "issued %d of %d\n", last.Count, last.Of)
	}
	if run.failed > 0 {
		return fmt.Errorf("%d of %d entitlements could not be issued", run.failed, last.Of)
	}
	return nil
}

// brokenStream reports a bulk issue whose stream ended early: how far it got, the
// commands that show what the server finished, and, when the issuer still answers,
// the licenses the job issued that were not printed here and those whose lease token
// was not (they need a new one).
func brokenStream(ctx context.Context, a *app, svc remote, run *bulkRun, asJSON bool, cause error) error {
	w := a.stderr
	if run.job.Job == "" {
		fmt.Fprintf(w, "the issuer's stream broke before it named its job (%v).\nSee what was issued since you started: issuer license list --issued-since %s\n",
			cause, verify.FormatTime(time.Now().Add(-time.Minute).UTC().Truncate(time.Second)))
		return fmt.Errorf("bulk issue interrupted: %w", cause)
	}
	since := verify.FormatTime(run.job.StartedAt)
	fmt.Fprintf(w, "the issuer's stream broke after %d of %d results (job %s, started %s): %v\n", run.received, run.job.Of, run.job.Job, since, cause)
	fmt.Fprintf(w, "the issuer may have finished more than was printed here; see what it did:\n  issuer license issue --job %s\n  issuer license list --issued-since %s\n", run.job.Job, since)
	fmt.Fprintln(w, "asking the issuer what the job did (waiting up to 30s for it to finish)…")
	report := map[string]any{"broken": true, "job_id": run.job.Job, "received": run.received, "of": run.job.Of, "started_at": since, "error": cause.Error()}
	job, err := waitJob(ctx, svc, run.job.Job, 30*time.Second)
	if err != nil {
		fmt.Fprintf(w, "(the issuer can't be asked now: %s)\nlease tokens are shown once: a lease-required license whose token is not printed above needs a new one (issuer license rotate-lease-token --id lic_…); --job lists them\n", describe(err))
	} else {
		var unseen, rotate []string
		pending := 0
		for _, it := range job.Items {
			switch {
			case it.LicenseID == "" && it.Error == "" && !it.Recorded:
				pending++
			case it.LicenseID == "":
			case !run.printed[it.LicenseID]:
				unseen = append(unseen, it.LicenseID)
				fallthrough
			default:
				if it.LeaseRequired && !run.withToken[it.LicenseID] {
					rotate = append(rotate, it.LicenseID)
				}
			}
		}
		slices.Sort(unseen)
		slices.Sort(rotate)
		if len(unseen) > 0 {
			fmt.Fprintf(w, "issued by the job but not printed here: %s\n", strings.Join(unseen, " "))
		}
		if len(rotate) > 0 {
			fmt.Fprintf(w, "lease token not received here (give each a new one: issuer license rotate-lease-token --id …): %s\n", strings.Join(rotate, " "))
		}
		if pending > 0 || job.FinishedAt == nil {
			fmt.Fprintf(w, "the job is still running (%d items not done yet): run issuer license issue --job %s again later\n", pending, run.job.Job)
		}
		report["not_printed"], report["rotate"], report["running"] = nonNil(unseen), nonNil(rotate), job.FinishedAt == nil
	}
	if asJSON {
		a.printJSONLine(report)
	}
	return fmt.Errorf("bulk issue interrupted after %d of %d results: %w", run.received, run.job.Of, cause)
}

// waitJob reads a job until it has finished (what it started after the break
// finishes on the server), for at most wait; the last read is returned either way.
func waitJob(ctx context.Context, svc remote, id string, wait time.Duration) (*entitlements.BulkJob, error) {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	for {
		job, err := svc.Job(ctx, id)
		if err != nil || job.FinishedAt != nil {
			return job, err
		}
		select {
		case <-ctx.Done():
			return job, nil
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// showJob prints a bulk job's results again (`license issue --job`): every item and
// its license or error, and the licenses whose lease token may never have reached the
// operator, to rotate.
func showJob(ctx context.Context, a *app, svc remote, id string, asJSON bool) error {
	job, err := svc.Job(ctx, id)
	if err != nil {
		return err
	}
	var rotate []string
	issued, failed, pending := 0, 0, 0
	if asJSON {
		m := map[string]any{"job_id": job.ID, "kind": job.Kind, "actor": job.Actor, "started_at": verify.FormatTime(job.StartedAt),
			"finished_at": optTimeJSON(job.FinishedAt), "of": len(job.Items)}
		a.printJSONLine(m)
	}
	for _, it := range job.Items {
		state := "not done"
		switch {
		case it.LicenseID != "":
			issued++
			state = "issued"
		case it.Error != "":
			failed++
			state = "failed"
		default:
			pending++
		}
		if it.NeedsRotation() {
			rotate = append(rotate, it.LicenseID)
		}
		if asJSON {
			a.printJSONLine(map[string]any{"n": it.N, "entitlement_id": it.EntitlementID, "license_id": it.LicenseID, "state": state,
				"error": it.Error, "lease_required": it.LeaseRequired, "lease_token_written": it.TokenWritten,
				"needs_rotation": it.NeedsRotation(), "recorded": it.Recorded})
			continue
		}
		line := fmt.Sprintf("[%d] %s: %s", it.N, it.EntitlementID, state)
		if it.LicenseID != "" {
			line += " " + it.LicenseID
		}
		if it.Error != "" {
			line += ": " + it.Error
		}
		if it.NeedsRotation() {
			line += " (lease token never delivered: rotate it)"
		}
		fmt.Fprintln(a.stdout, line)
	}
	if asJSON {
		return nil
	}
	state := "finished " + verify.FormatTime(derefTime(job.FinishedAt))
	if job.FinishedAt == nil {
		state = "not finished (running, or its issuer stopped)"
	}
	fmt.Fprintf(a.stdout, "job %s by %s, started %s, %s: %d issued, %d failed, %d not done, of %d\n",
		job.ID, job.Actor, verify.FormatTime(job.StartedAt), state, issued, failed, pending, len(job.Items))
	if len(rotate) > 0 {
		fmt.Fprintf(a.stdout, "lease tokens never delivered (issuer license rotate-lease-token --id …, then give the customer the new one): %s\n", strings.Join(rotate, " "))
	}
	fmt.Fprintln(a.stdout, "a lease token sent just before a broken stream may not have arrived either: rotate any your run did not print")
	return nil
}

func derefTime(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}
