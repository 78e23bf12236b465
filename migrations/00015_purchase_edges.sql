-- +goose Up
-- A paid order never gets stuck (issue 19, docs/purchase.md).
--
-- held: paid, but its fulfilment was refused (the license it was for is no longer
-- current, a staff draft is in the way): it waits in the staff queue with its
-- reason, to be fulfilled by hand or refunded. cancelled: its Checkout Session
-- expired unpaid.
ALTER TABLE orders DROP CONSTRAINT orders_status_check;
ALTER TABLE orders ADD CONSTRAINT orders_status_check
    CHECK (status IN ('pending', 'processing', 'paid', 'held', 'fulfilled', 'failed', 'cancelled', 'refunded', 'disputed'));

-- A payment intent belongs to one order.
DROP INDEX orders_payment_intent_idx;
CREATE UNIQUE INDEX orders_payment_intent_key ON orders (payment_intent) WHERE payment_intent IS NOT NULL;

-- Stripe events that match no order yet: a refund or dispute whose payment intent no
-- order has recorded (it came before checkout.session.completed), or a session event
-- for an order this database does not have. They are answered 5xx so Stripe
-- redelivers; a refund or dispute recorded here is applied when its order records
-- the payment intent (that order then issues nothing). After Stripe's retry period
-- the event is answered 2xx and stays here for staff (given_up_at).
CREATE TABLE stripe_pending_events (
    event_id            text PRIMARY KEY,
    type                text NOT NULL,
    payment_intent      text NOT NULL DEFAULT '',
    checkout_session_id text NOT NULL DEFAULT '',
    order_ref           text NOT NULL DEFAULT '',
    -- what it does to its order when matched: refunded, partial-refund, disputed, or
    -- '' (a session event: nothing to carry over)
    effect              text NOT NULL DEFAULT '' CHECK (effect IN ('', 'refunded', 'partial-refund', 'disputed')),
    reason              text NOT NULL DEFAULT '',
    deliveries          integer NOT NULL DEFAULT 1,
    first_seen_at       timestamptz NOT NULL DEFAULT now(),
    last_seen_at        timestamptz NOT NULL DEFAULT now(),
    order_id            text REFERENCES orders (id),
    matched_at          timestamptz,
    given_up_at         timestamptz
);
CREATE INDEX stripe_pending_events_pi_idx ON stripe_pending_events (payment_intent)
    WHERE matched_at IS NULL AND payment_intent <> '';
CREATE INDEX stripe_pending_events_open_idx ON stripe_pending_events (first_seen_at) WHERE matched_at IS NULL;

-- +goose Down
DROP TABLE stripe_pending_events;
DROP INDEX orders_payment_intent_key;
CREATE INDEX orders_payment_intent_idx ON orders (payment_intent) WHERE payment_intent IS NOT NULL;
UPDATE orders SET status = 'paid' WHERE status = 'held';
UPDATE orders SET status = 'failed' WHERE status = 'cancelled';
ALTER TABLE orders DROP CONSTRAINT orders_status_check;
ALTER TABLE orders ADD CONSTRAINT orders_status_check
    CHECK (status IN ('pending', 'processing', 'paid', 'fulfilled', 'failed', 'refunded', 'disputed'));
