package storage

import (
	"context"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/metrum/licensing/internal/entitlements"
)

// CreateCustomer validates and inserts a customer, with its audit event.
func (s *Store) CreateCustomer(ctx context.Context, c *entitlements.Customer, actor string) error {
	if err := c.Validate(); err != nil {
		return err
	}
	c.ID = entitlements.NewID(entitlements.PrefixCustomer)
	return s.inTx(ctx, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `INSERT INTO customers (id, name, email) VALUES ($1, $2, $3) RETURNING created_at`,
			c.ID, c.Name, c.Email).Scan(&c.CreatedAt)
		if err != nil {
			return err
		}
		return appendAudit(ctx, tx, &entitlements.AuditEvent{Actor: actor, Action: "customer.create", Subject: c.ID,
			Details: map[string]string{"name": c.Name}})
	})
}

// UpdateCustomer corrects a customer's name or email. Licenses already issued keep
// the name they were signed with: issue a replacement to carry the correction.
func (s *Store) UpdateCustomer(ctx context.Context, c *entitlements.Customer, actor string) error {
	if err := c.Validate(); err != nil {
		return err
	}
	return s.inTx(ctx, func(tx pgx.Tx) error {
		old, err := getCustomer(ctx, tx, c.ID)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE customers SET name = $2, email = $3 WHERE id = $1`, c.ID, c.Name, c.Email); err != nil {
			return err
		}
		c.CreatedAt = old.CreatedAt
		return appendAudit(ctx, tx, &entitlements.AuditEvent{Actor: actor, Action: "customer.update", Subject: c.ID,
			Details: map[string]string{"name": c.Name, "previous_name": old.Name}})
	})
}

// GetCustomer returns one customer.
func (s *Store) GetCustomer(ctx context.Context, id string) (*entitlements.Customer, error) {
	return getCustomer(ctx, s.pool, id)
}

type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func getCustomer(ctx context.Context, q querier, id string) (*entitlements.Customer, error) {
	c := &entitlements.Customer{}
	err := q.QueryRow(ctx, `SELECT id, name, email, created_at FROM customers WHERE id = $1`, id).
		Scan(&c.ID, &c.Name, &c.Email, &c.CreatedAt)
	if err != nil {
		return nil, notFound(err, "customer", id)
	}
	return c, nil
}

// ListCustomers returns customers by name, a page at a time (offset paging: the list
// is short and sorted by name, which has no stable cursor).
func (s *Store) ListCustomers(ctx context.Context, offset, limit int) ([]*entitlements.Customer, error) {
	if limit <= 0 || limit > 500 {
		limit = 50
	}
	rows, err := s.pool.Query(ctx, `SELECT id, name, email, created_at FROM customers ORDER BY lower(name), id OFFSET $1 LIMIT $2`, offset, limit)
	if err != nil {
		return nil, unavailable(err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (*entitlements.Customer, error) {
		c := &entitlements.Customer{}
		return c, r.Scan(&c.ID, &c.Name, &c.Email, &c.CreatedAt)
	})
}

// customerSortExpr is the SQL of each of entitlements.CustomerSorts.
var customerSortExpr = map[string]string{"name": "lower(name)", "created": "created_at"}

// SearchCustomers finds customers by name or email (case-insensitive substring), by
// the beginning of a contract reference of one of their entitlements, or by an ID:
// the customer's (by its beginning), one of their licenses' or entitlements'
// (exactly).
// One page per call, in the query's sort, after the customer q.After (keyset: that
// row's place in the sort, the ID breaking ties).
func (s *Store) SearchCustomers(ctx context.Context, q entitlements.CustomerQuery) ([]*entitlements.Customer, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	if q.Limit <= 0 || q.Limit > 500 {
		q.Limit = 50
	}
	text := strings.TrimSpace(q.Text)
	// The query is text, not a pattern: % _ and \ in it match themselves.
	args := pgx.NamedArgs{"like": likeEscape(text), "text": text, "after": q.After, "limit": q.Limit}
	where := []string{"true"}
	if text != "" {
		// A customer ID by its beginning, a license's or entitlement's exactly; a name
		// or email as a substring (the customers table is scanned); a contract
		// reference by its beginning (entitlements_contract_ref_idx).
		hits := `SELECT customer_id FROM licenses WHERE id = @text UNION ALL SELECT customer_id FROM entitlements WHERE id = @text`
		match := `id LIKE @like || '%'`
		if !idShaped(text) {
			match += ` OR lower(name) LIKE '%' || lower(@like) || '%' OR lower(email) LIKE '%' || lower(@like) || '%'`
			hits += ` UNION ALL SELECT customer_id FROM entitlements WHERE id IN (` + contractRefMatch + `)`
		}
		where = append(where, `(`+match+` OR id = ANY(ARRAY(`+hits+`)))`)
	}
	expr := customerSortExpr[q.Sort.Key]
	page, order := keyset(expr, "id", q.Sort.Desc, `SELECT `+expr+`, id FROM customers WHERE id = @after`)
	if q.After != "" {
		where = append(where, page)
	}
	rows, err := s.pool.Query(ctx, `SELECT id, name, email, created_at FROM customers WHERE `+strings.Join(where, " AND ")+
		` ORDER BY `+order+` LIMIT @limit`, args)
	if err != nil {
		return nil, unavailable(err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (*entitlements.Customer, error) {
		c := &entitlements.Customer{}
		return c, r.Scan(&c.ID, &c.Name, &c.Email, &c.CreatedAt)
	})
}

// likeEscape makes text match itself in a LIKE pattern (the default escape is \).
func likeEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}
