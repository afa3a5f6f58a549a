-- Events for partner systems (issue 7): a transactional outbox, a pollable feed, webhooks.
-- Every state change writes its events in its own transaction. Sequence numbers are taken from
-- `event_head` under its row lock, held until commit: events become visible in seq order, so a
-- reader that has seen seq n never misses an n' < n committed later.
CREATE TABLE event_head (
    id INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    last_seq BIGINT NOT NULL
);
INSERT INTO event_head (id, last_seq) VALUES (1, 0);

CREATE TABLE events (
    seq BIGINT PRIMARY KEY NOT NULL,
    id TEXT NOT NULL,
    type TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    case_id TEXT,
    -- Who sees the event besides the case's team: the base or managing organization's
    -- coordinators (org_a) and the hospital's staff (org_b).
    org_a TEXT,
    org_b TEXT,
    occurred_at TIMESTAMP NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX events_org_a ON events (org_a, seq);
CREATE INDEX events_org_b ON events (org_b, seq);
CREATE INDEX events_case ON events (case_id, seq);

CREATE TABLE webhooks (
    id TEXT PRIMARY KEY NOT NULL,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    url TEXT NOT NULL,
        types TEXT NOT NULL,
    -- What the subscriber may see, from its roles when it subscribed: the events addressed to its
    -- organization as a base (coordinators, admins), and as a hospital, of these resource types.
    sees_org_a BOOLEAN NOT NULL,
    org_b_types TEXT NOT NULL,
    secret TEXT NOT NULL,
    active BOOLEAN NOT NULL,
    created_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX webhooks_org ON webhooks (organization_id, id);

-- One delivery per webhook and event, written with the event; its attempts are logged.
CREATE TABLE webhook_deliveries (
    id TEXT PRIMARY KEY NOT NULL,
    webhook_id TEXT NOT NULL REFERENCES webhooks (id),
    event_seq BIGINT NOT NULL REFERENCES events (seq),
    status TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMP NOT NULL,
    -- A lease: the instance delivering it, until when (another may take it over after).
    leased_by TEXT,
    leased_until TIMESTAMP,
    last_status INTEGER,
    last_error TEXT,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
CREATE INDEX webhook_deliveries_webhook ON webhook_deliveries (webhook_id, id);

CREATE TABLE webhook_attempts (
    id TEXT PRIMARY KEY NOT NULL,
    delivery_id TEXT NOT NULL REFERENCES webhook_deliveries (id),
    attempt INTEGER NOT NULL,
    at TIMESTAMP NOT NULL,
    status INTEGER,
    error TEXT,
    duration_ms BIGINT NOT NULL
);
CREATE INDEX webhook_attempts_delivery ON webhook_attempts (delivery_id, attempt);
