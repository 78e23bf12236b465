package storage

import "context"

// UsageLeaseScope returns whose a lease token is, for usage uploads: its license's
// customer, and the license followed by those it supersedes, newest first (the
// reports a host sends with the token may be for any of them: usage.md section 3).
// An unknown token gives no licenses.
func (s *Store) UsageLeaseScope(ctx context.Context, tokenHash []byte) (customerID string, licenses []string, err error) {
	rows, err := s.pool.Query(ctx, `WITH RECURSIVE line(id, supersedes, customer_id, depth) AS (
			SELECT l.id, l.supersedes, l.customer_id, 0 FROM lease_tokens t JOIN licenses l ON l.id = t.license_id
			WHERE t.token_hash = $1
			UNION ALL
			SELECT p.id, p.supersedes, p.customer_id, line.depth + 1 FROM licenses p JOIN line ON p.id = line.supersedes
			WHERE line.depth < 100 AND p.customer_id = line.customer_id)
		SELECT id, customer_id FROM line ORDER BY depth`, tokenHash)
	if err != nil {
		return "", nil, bounded(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		if err := rows.Scan(&id, &customerID); err != nil {
			return "", nil, err
		}
		licenses = append(licenses, id)
	}
	return customerID, licenses, bounded(rows.Err())
}
