-- +goose Up
-- Self-service purchase through Stripe (issue 14). An order is created server-side
-- from the catalogue (the price never comes from the browser); its ID is the Checkout
-- Session's client_reference_id and the Stripe idempotency key. Fulfilment is exactly
-- once per order by construction: the order's entitlement is unique per order, an
-- entitlement issues at most one license, and the order moves to fulfilled once.
CREATE TABLE orders (
    id                   text PRIMARY KEY CHECK (id ~ '^ord_[0-9A-HJKMNP-TV-Z]{26}$'),
    customer_id          text NOT NULL REFERENCES customers (id),
    item                 text NOT NULL,
    kind                 text NOT NULL CHECK (kind IN ('evaluation', 'purchase', 'renewal', 'top-up')),
    template             text NOT NULL,
    amount               bigint NOT NULL CHECK (amount >= 0),
    currency             text NOT NULL CHECK (currency ~ '^[a-z]{3}$'),
    -- the license a renewal renews or a top-up tops up
    license_id           text REFERENCES licenses (id),
    checkout_session_id  text UNIQUE,
    payment_intent       text,
    status               text NOT NULL DEFAULT 'pending'
                         CHECK (status IN ('pending', 'processing', 'paid', 'fulfilled', 'failed', 'refunded', 'disputed')),
    fulfilled_license_id text REFERENCES licenses (id),
    -- non-empty: the order waits in the staff queue (a refund or a dispute) until
    -- someone reviewed it
    review_reason        text NOT NULL DEFAULT '',
    reviewed_by          text NOT NULL DEFAULT '',
    created_by           text NOT NULL,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    CHECK ((kind IN ('renewal', 'top-up')) = (license_id IS NOT NULL))
);
-- One free evaluation per customer, ever.
CREATE UNIQUE INDEX orders_one_evaluation_idx ON orders (customer_id) WHERE kind = 'evaluation';
CREATE INDEX orders_customer_idx ON orders (customer_id, created_at DESC);
CREATE INDEX orders_payment_intent_idx ON orders (payment_intent) WHERE payment_intent IS NOT NULL;
CREATE INDEX orders_review_idx ON orders (updated_at) WHERE review_reason <> '' AND reviewed_by = '';

-- The entitlement a paid order opens, approved by the catalogue policy: at most one
-- per order.
ALTER TABLE entitlements ADD COLUMN order_id text UNIQUE REFERENCES orders (id);

-- Stripe events handled, so a redelivered event does nothing.
CREATE TABLE stripe_events (
    id          text PRIMARY KEY,
    type        text NOT NULL,
    order_id    text NOT NULL DEFAULT '',
    outcome     text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);

-- Free evaluations started by new visitors: one per email domain in a period.
CREATE TABLE evaluation_requests (
    token_hash bytea PRIMARY KEY CHECK (length(token_hash) = 32),
    email      text NOT NULL,
    company    text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at    timestamptz
);
CREATE TABLE evaluation_claims (
    domain      text NOT NULL,
    customer_id text NOT NULL REFERENCES customers (id),
    email       text NOT NULL,
    claimed_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX evaluation_claims_domain_idx ON evaluation_claims (domain, claimed_at DESC);

-- +goose Down
DROP TABLE evaluation_claims;
DROP TABLE evaluation_requests;
DROP TABLE stripe_events;
ALTER TABLE entitlements DROP COLUMN order_id;
DROP TABLE orders;
