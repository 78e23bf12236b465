package storage

import (
	"context"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/metrum/licensing/internal/entitlements"
)

// licenseSortExpr is the SQL of each of entitlements.LicenseSorts over licenses l
// joined to customers c. "status" sorts by the one status truth's status at @now
// (an active license past its expiry is expired).
var licenseSortExpr = map[string]string{
	"issued":   "l.issued_at",
	"expires":  "l.expires_at",
	"customer": "lower(c.name)",
	"sku":      "l.sku",
	"status":   "(CASE WHEN l.status = 'active' AND l.expires_at <= @now THEN 'expired' ELSE l.status END)",
}

// SearchLicenses is the console's license list: the query's filters and text search,
// in its sort, one page after the license q.After (keyset: that row's place in the
// sort, the ID breaking ties), without file bytes.
func (s *Store) SearchLicenses(ctx context.Context, q entitlements.LicenseQuery) ([]*entitlements.License, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	if q.Limit <= 0 || q.Limit > 1000 {
		q.Limit = 50
	}
	if q.Now.IsZero() {
		q.Now = time.Now()
	}
	var expiring *time.Time
	if !q.ExpiringBefore.IsZero() {
		expiring = &q.ExpiringBefore
	}
	text := strings.TrimSpace(q.Text)
	args := pgx.NamedArgs{"customer": q.CustomerID, "product": q.Product, "sku": q.SKU, "status": q.Status, "now": q.Now,
		"expiring": expiring, "like": likeEscape(text), "text": text, "after": q.After, "limit": q.Limit}
	where := []string{`(@customer = '' OR l.customer_id = @customer)`, `(@product = '' OR l.product = @product)`, `(@sku = '' OR l.sku = @sku)`,
		`(@status = '' OR (@status = 'active' AND l.status = 'active' AND l.expires_at > @now)
			OR (@status = 'expired' AND l.status = 'active' AND l.expires_at <= @now)
			OR (@status NOT IN ('active', 'expired') AND l.status = @status))`,
		`(@expiring::timestamptz IS NULL OR (l.status = 'active' AND l.expires_at > @now AND l.expires_at < @expiring))`}
	if text != "" {
		// Each way to match is its own indexed lookup: a whole license, entitlement
		// or customer ID; a customer's name (a substring, % and _ literally: the
		// customers table is scanned, not the licenses); a contract reference's
		// beginning (entitlements_contract_ref_idx).
		hits := `SELECT id FROM licenses WHERE id = @text UNION ALL SELECT id FROM licenses WHERE entitlement_id = @text
			UNION ALL SELECT id FROM licenses WHERE customer_id = @text`
		if !idShaped(text) {
			hits += ` UNION ALL SELECT id FROM licenses WHERE customer_id IN (SELECT id FROM customers WHERE lower(name) LIKE '%' || lower(@like) || '%')
				UNION ALL SELECT id FROM licenses WHERE entitlement_id IN (` + contractRefMatch + `)`
		}
		where = append(where, `l.id = ANY(ARRAY(`+hits+`))`)
	}
	expr := licenseSortExpr[q.Sort.Key]
	page, order := keyset(expr, "l.id", q.Sort.Desc, `SELECT `+expr+`, l.id FROM licenses l JOIN customers c ON c.id = l.customer_id WHERE l.id = @after`)
	if q.After != "" {
		where = append(where, page)
	}
	rows, err := s.pool.Query(ctx, `SELECT `+licenseCols+` FROM licenses l JOIN customers c ON c.id = l.customer_id
		WHERE `+strings.Join(where, " AND ")+` ORDER BY `+order+` LIMIT @limit`, args)
	if err != nil {
		return nil, unavailable(err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (*entitlements.License, error) { return scanLicense(r) })
}
