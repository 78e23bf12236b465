package main

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/metrum/licensing/internal/templates"
)

func cmdTemplates(ctx context.Context, a *app, args []string) error {
	fs := a.flags("templates", "templates [--json]", "Lists the newest version of every license template.")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	list := templates.List()
	if *asJSON {
		out := []map[string]any{}
		for _, t := range list {
			out = append(out, map[string]any{"name": t.Name, "version": t.Version, "product": t.Product, "summary": t.Summary,
				"term_seconds": int64(t.Term.Seconds()), "fixed_term": t.FixedTerm, "features": t.Features, "limits": t.Limits,
				"grace_period_seconds": int64(t.Grace.Seconds()), "lease_required": t.Lease != nil && t.Lease.Required,
				"overridable_limits": t.OverridableLimits})
		}
		return a.printJSON(out)
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TEMPLATE\tPRODUCT\tTERM\tLIMITS\tSUMMARY")
	for _, t := range list {
		var lim []string
		for _, k := range slices.Sorted(maps.Keys(t.Limits)) {
			lim = append(lim, fmt.Sprintf("%s=%d", k, t.Limits[k]))
		}
		fmt.Fprintf(tw, "%s@%d\t%s\t%dd\t%s\t%s\n", t.Name, t.Version, t.Product, int(t.Term.Hours()/24), strings.Join(lim, " "), t.Summary)
	}
	return tw.Flush()
}
