-- +goose Up
-- A lease-required license's bearer token, as a SHA-256 hash only (the token is 32
-- random bytes, shown once). One per license; rotating replaces it. Every lease
-- decision for a license locks this row: that is what serialises seat decisions.
CREATE TABLE lease_tokens (
    license_id text PRIMARY KEY REFERENCES licenses (id),
    token_hash bytea NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    created_at timestamptz NOT NULL DEFAULT now(),
    rotated_at timestamptz
);

-- One slot per (license, instance): the current lease of that host. A slot counts
-- against max_instances while expires_at > now and it is not released.
CREATE TABLE leases (
    license_id           text NOT NULL REFERENCES licenses (id),
    instance_fingerprint text NOT NULL,
    lease_id             text NOT NULL UNIQUE CHECK (lease_id ~ '^lea_[0-9A-HJKMNP-TV-Z]{26}$'),
    granted_at           timestamptz NOT NULL,
    renewed_at           timestamptz NOT NULL,
    expires_at           timestamptz NOT NULL,
    released_at          timestamptz,
    PRIMARY KEY (license_id, instance_fingerprint)
);

-- Every grant, renewal, refusal and release. Append-only history for staff; no
-- foreign key (the lease path has just read the license in the same transaction, and
-- a per-row key check would lock the license row once more on the hottest path).
-- Growth and partitioning: docs/leases.md.
CREATE TABLE lease_events (
    id                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at                   timestamptz NOT NULL,
    license_id           text NOT NULL,
    instance_fingerprint text NOT NULL,
    lease_id             text NOT NULL DEFAULT '',
    outcome              text NOT NULL CHECK (outcome IN ('granted', 'renewed', 'refused', 'released')),
    reason               text NOT NULL DEFAULT '',
    expires_at           timestamptz
);
CREATE INDEX lease_events_license_idx ON lease_events (license_id, id DESC);

-- lease_grant decides one lease request, inside the caller's transaction, and records
-- it. Checks in order: token (unauthorized), status in effect (license-revoked,
-- -suspended, -superseded), window (license-not-yet-valid, license-expired), instance
-- binding (license-instance-mismatch); then the host's unexpired slot is renewed, or a
-- new slot taken while fewer than max_instances are held (license-limit-exceeded).
-- The token row lock serialises every decision of one license, and "now" is read
-- after taking it, so two decisions never disagree about which slots are expired.
-- +goose StatementBegin
CREATE FUNCTION lease_grant(p_token_hash bytea, p_license_id text, p_fp text, p_new_lease_id text,
    OUT o_outcome text, OUT o_reason text, OUT o_product text, OUT o_lease_id text,
    OUT o_issued_at timestamptz, OUT o_expires_at timestamptz)
LANGUAGE plpgsql AS $$
DECLARE
    v_now   timestamptz;
    v_lic   record;
    v_used  bigint;
BEGIN
    SELECT l.product, l.status, l.status_effective_at, l.not_before, l.expires_at AS lic_expires,
           l.instance_fingerprint AS bound_fp, l.max_instances, l.lease_ttl_seconds, t.token_hash
      INTO v_lic
      FROM lease_tokens t JOIN licenses l ON l.id = t.license_id
     WHERE t.license_id = p_license_id
       FOR UPDATE OF t;
    IF NOT FOUND THEN
        o_outcome := 'refused'; o_reason := 'unauthorized';
        RETURN; -- no such lease-required license: nothing to record against
    END IF;
    v_now := date_trunc('second', clock_timestamp());
    o_product := v_lic.product; o_issued_at := v_now; o_lease_id := '';
    IF v_lic.token_hash <> p_token_hash THEN
        o_reason := 'unauthorized';
    ELSIF v_lic.status <> 'active' AND v_lic.status_effective_at <= v_now THEN
        o_reason := 'license-' || v_lic.status;
    ELSIF v_now < v_lic.not_before THEN
        o_reason := 'license-not-yet-valid';
    ELSIF v_now >= v_lic.lic_expires THEN
        o_reason := 'license-expired';
    ELSIF v_lic.bound_fp <> '' AND v_lic.bound_fp <> p_fp THEN
        o_reason := 'license-instance-mismatch';
    ELSE
        o_expires_at := least(v_now + make_interval(secs => v_lic.lease_ttl_seconds), v_lic.lic_expires);
        UPDATE leases SET renewed_at = v_now, expires_at = o_expires_at
         WHERE license_id = p_license_id AND instance_fingerprint = p_fp AND expires_at > v_now AND released_at IS NULL
        RETURNING lease_id INTO o_lease_id;
        IF FOUND THEN
            o_outcome := 'renewed';
        ELSE
            IF v_lic.max_instances IS NOT NULL THEN
                SELECT count(*) INTO v_used FROM leases
                 WHERE license_id = p_license_id AND expires_at > v_now AND released_at IS NULL AND instance_fingerprint <> p_fp;
                IF v_used >= v_lic.max_instances THEN
                    o_reason := 'license-limit-exceeded';
                END IF;
            END IF;
            IF o_reason IS NULL THEN
                INSERT INTO leases (license_id, instance_fingerprint, lease_id, granted_at, renewed_at, expires_at)
                VALUES (p_license_id, p_fp, p_new_lease_id, v_now, v_now, o_expires_at)
                ON CONFLICT (license_id, instance_fingerprint) DO UPDATE
                   SET lease_id = excluded.lease_id, granted_at = excluded.granted_at, renewed_at = excluded.renewed_at,
                       expires_at = excluded.expires_at, released_at = NULL;
                o_outcome := 'granted'; o_lease_id := p_new_lease_id;
            END IF;
        END IF;
    END IF;
    IF o_reason IS NOT NULL THEN
        o_outcome := 'refused'; o_expires_at := NULL;
    END IF;
    INSERT INTO lease_events (at, license_id, instance_fingerprint, lease_id, outcome, reason, expires_at)
    VALUES (v_now, p_license_id, p_fp, coalesce(o_lease_id, ''), o_outcome, coalesce(o_reason, ''), o_expires_at);
    o_reason := coalesce(o_reason, ''); o_lease_id := coalesce(o_lease_id, '');
END;
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION lease_grant(bytea, text, text, text);
DROP TABLE lease_events;
DROP TABLE leases;
DROP TABLE lease_tokens;
