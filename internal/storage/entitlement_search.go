package storage

import (
	"context"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/metrum/licensing/internal/entitlements"
)

// entitlementSortExpr is the SQL of each of entitlements.EntitlementSorts, over
// entitlements joined to customers c.
var entitlementSortExpr = map[string]string{
	"created":  "entitlements.created_at",
	"customer": "lower(c.name)",
	"template": "entitlements.template_name",
	"state":    "entitlements.state",
}

// ListEntitlements returns entitlements by the filter: newest first, paged by
// BeforeID; or, with a Sort, in that order, paged after the entitlement After. Text
// matches a customer's name or the contract reference (substring), or an entitlement,
// customer or license ID.
func (s *Store) ListEntitlements(ctx context.Context, f entitlements.EntitlementFilter) ([]*entitlements.Entitlement, error) {
	if f.Limit <= 0 || f.Limit > 500 {
		f.Limit = 50
	}
	args := pgx.NamedArgs{"state": f.State, "kind": f.Kind, "customer": f.CustomerID, "before": f.BeforeID, "limit": f.Limit,
		"t": likeEscape(f.Text), "raw": strings.TrimSpace(f.Text), "after": f.After}
	where := []string{`(@state = '' OR entitlements.state = @state)`, `(@kind = '' OR entitlements.kind = @kind)`,
		`(@customer = '' OR entitlements.customer_id = @customer)`, `(@before = '' OR entitlements.id < @before)`}
	if f.Text != "" {
		where = append(where, `(lower(c.name) LIKE '%' || lower(@t) || '%' OR lower(entitlements.contract_ref) LIKE '%' || lower(@t) || '%'
			OR entitlements.id = @raw OR entitlements.customer_id = @raw OR entitlements.supersedes = @raw
			OR entitlements.id = (SELECT entitlement_id FROM licenses WHERE id = @raw))`)
	}
	order := "entitlements.id DESC"
	if f.Sort.Key != "" {
		expr, ok := entitlementSortExpr[f.Sort.Key]
		if !ok {
			return nil, entitlements.Invalid(map[string]string{"sort": "sort by one of " + strings.Join(entitlements.EntitlementSorts, ", ")})
		}
		page, o := keyset(expr, "entitlements.id", f.Sort.Desc, `SELECT `+expr+`, entitlements.id FROM entitlements
			JOIN customers c ON c.id = entitlements.customer_id WHERE entitlements.id = @after`)
		if f.After != "" {
			where = append(where, page)
		}
		order = o
	}
	rows, err := s.pool.Query(ctx, `SELECT `+entitlementCols+` FROM entitlements JOIN customers c ON c.id = entitlements.customer_id
		WHERE `+strings.Join(where, " AND ")+` ORDER BY `+order+` LIMIT @limit`, args)
	if err != nil {
		return nil, unavailable(err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (*entitlements.Entitlement, error) { return scanEntitlement(r) })
}
