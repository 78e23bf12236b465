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
	"created":  "entitlements.id", // ULIDs: the order they were opened in, on the primary key
	"customer": "lower(c.name)",
	"template": "entitlements.template_name",
	"state":    "entitlements.state",
}

// ListEntitlements returns entitlements by the filter: newest first, paged by
// BeforeID; or, with a Sort, in that order, paged after the entitlement After. Text
// matches a customer's name (a substring), the beginning of a contract reference, or
// an entitlement, customer or license ID.
func (s *Store) ListEntitlements(ctx context.Context, f entitlements.EntitlementFilter) ([]*entitlements.Entitlement, error) {
	if f.Limit <= 0 || f.Limit > 500 {
		f.Limit = 50
	}
	text := strings.TrimSpace(f.Text)
	args := pgx.NamedArgs{"state": f.State, "kind": f.Kind, "customer": f.CustomerID, "before": f.BeforeID, "limit": f.Limit,
		"like": likeEscape(text), "text": text, "after": f.After}
	where := []string{`(@state = '' OR entitlements.state = @state)`, `(@kind = '' OR entitlements.kind = @kind)`,
		`(@customer = '' OR entitlements.customer_id = @customer)`, `(@before = '' OR entitlements.id < @before)`}
	if text != "" {
		// As the license search: exact IDs, a customer's name, a contract
		// reference's beginning, each an indexed lookup of its own.
		hits := `SELECT id FROM entitlements WHERE id = @text UNION ALL SELECT id FROM entitlements WHERE customer_id = @text
			UNION ALL SELECT id FROM entitlements WHERE supersedes <> '' AND supersedes = @text
			UNION ALL SELECT entitlement_id FROM licenses WHERE id = @text`
		if !idShaped(text) {
			hits += ` UNION ALL SELECT id FROM entitlements WHERE customer_id IN (SELECT id FROM customers WHERE lower(name) LIKE '%' || lower(@like) || '%')
				UNION ALL ` + contractRefMatch
		}
		where = append(where, `entitlements.id = ANY(ARRAY(`+hits+`))`)
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
