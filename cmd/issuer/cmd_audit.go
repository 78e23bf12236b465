package main

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/metrum/licensing/internal/entitlements"
)

const auditHelp = `Usage: issuer audit <list|verify> [flags]

  list     the audit trail, newest first (every state change: who, what, when)
  verify   check the hash chain end to end and name the first broken link
`

func cmdAudit(ctx context.Context, a *app, args []string) error {
	return sub(ctx, a, "audit", args, map[string]cmdFunc{"list": auditList, "verify": auditVerify}, auditHelp)
}

func auditList(ctx context.Context, a *app, args []string) error {
	fs := a.flags("audit list", "audit list [--subject ID] [--before EVENT_ID] [--limit N] [--json]",
		"Lists audit events newest first. --subject narrows to one license, entitlement, key or customer.")
	subject := fs.String("subject", "", "only events about this subject")
	before := fs.Int64("before", 0, "page: events older than this event ID")
	limit := fs.Int("limit", 50, "how many (at most 500)")
	asJSON := fs.Bool("json", false, "print JSON")
	svc, err := a.parseAPI(fs, args, new(string))
	if err != nil {
		return err
	}
	list, err := svc.ListAudit(ctx, entitlements.AuditFilter{Subject: *subject, BeforeID: *before, Limit: *limit})
	if err != nil {
		return err
	}
	return printListing(a, *asJSON, list, listing[*entitlements.AuditEvent]{
		empty:  "no audit events match",
		header: "ID\tAT\tACTOR\tACTION\tSUBJECT\tDETAILS",
		row: func(e *entitlements.AuditEvent) string {
			var d []string
			for _, k := range slices.Sorted(maps.Keys(e.Details)) {
				d = append(d, k+"="+e.Details[k])
			}
			return fmt.Sprintf("%d\t%s\t%s\t%s\t%s\t%s", e.ID, e.At.UTC().Format("2006-01-02 15:04:05"), e.Actor, e.Action, e.Subject, strings.Join(d, " "))
		},
		json: func(e *entitlements.AuditEvent) map[string]any {
			return map[string]any{"id": e.ID, "at": e.At.UTC().Format(time.RFC3339Nano), "actor": e.Actor,
				"action": e.Action, "subject": e.Subject, "details": e.Details, "hash": fmt.Sprintf("%x", e.Hash)}
		},
		full: len(list) == *limit,
		more: func(e *entitlements.AuditEvent) string { return fmt.Sprintf("--before %d", e.ID) },
	})
}

func auditVerify(ctx context.Context, a *app, args []string) error {
	fs := a.flags("audit verify", "audit verify [--json]",
		`Recomputes the audit trail's hash chain from the first event to the last. Each event's
hash covers its content and the previous event's hash, so an edited, removed or
reordered event breaks the chain there; the first broken link is named. Exit 1 when
broken.

An operator command: it reads the database itself (DATABASE_URL), read-only, so the
chain can be checked independently of the running issuer. It opens no key.`)
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := a.openStore(ctx); err != nil {
		return err
	}
	rep, err := a.store.VerifyAudit(ctx, func(n int64) {
		if !*asJSON {
			fmt.Fprintf(a.stderr, "checked %d events…\n", n)
		}
	})
	if err != nil {
		return err
	}
	if *asJSON {
		if err := a.printJSON(map[string]any{"events": rep.Events, "intact": rep.BrokenAt == 0, "broken_at": rep.BrokenAt, "why": rep.Why}); err != nil {
			return err
		}
	} else if rep.BrokenAt == 0 {
		fmt.Fprintf(a.stdout, "audit chain intact: %d events\n", rep.Events)
	}
	if rep.BrokenAt != 0 {
		return fmt.Errorf("audit chain broken at event %d of %d: %s", rep.BrokenAt, rep.Events, rep.Why)
	}
	return nil
}
