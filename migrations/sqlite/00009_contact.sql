-- +goose Up
-- Omnichannel contact: contacts with their identities, channels (inboxes), conversations,
-- messages, attachments, calls, canned responses and the realtime event log.

CREATE TABLE contacts (
    tenant_id        TEXT NOT NULL REFERENCES orgs (id),
    id               TEXT NOT NULL,
    name             TEXT NOT NULL DEFAULT '',
    locale           TEXT NOT NULL DEFAULT '',
    company          TEXT NOT NULL DEFAULT '',
    attributes       TEXT NOT NULL DEFAULT '{}',
    -- lower-cased name, e-mails and phones: what search looks in
    search           TEXT NOT NULL DEFAULT '',
    merged_into      TEXT,
    last_activity_at DATETIME,
    created_at       DATETIME NOT NULL,
    updated_at       DATETIME NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, merged_into) REFERENCES contacts (tenant_id, id)
);
CREATE INDEX contacts_search_idx ON contacts (tenant_id, search);

CREATE TABLE contact_identities (
    tenant_id  TEXT NOT NULL REFERENCES orgs (id),
    id         TEXT NOT NULL,
    contact_id TEXT NOT NULL,
    kind       TEXT NOT NULL,
    value      TEXT NOT NULL,
    created_at DATETIME NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, kind, value),
    FOREIGN KEY (tenant_id, contact_id) REFERENCES contacts (tenant_id, id)
);
CREATE INDEX contact_identities_contact_idx ON contact_identities (tenant_id, contact_id);

CREATE TABLE contact_tags (
    tenant_id  TEXT NOT NULL REFERENCES orgs (id),
    contact_id TEXT NOT NULL,
    tag        TEXT NOT NULL,
    PRIMARY KEY (tenant_id, contact_id, tag),
    FOREIGN KEY (tenant_id, contact_id) REFERENCES contacts (tenant_id, id)
);
CREATE INDEX contact_tags_tag_idx ON contact_tags (tenant_id, tag);

-- The tenant's typed custom contact fields; values live in contacts.attributes.
CREATE TABLE contact_fields (
    tenant_id  TEXT NOT NULL REFERENCES orgs (id),
    key        TEXT NOT NULL,
    label      TEXT NOT NULL,
    type       TEXT NOT NULL CHECK (type IN ('text', 'number', 'boolean', 'date', 'select')),
    options    TEXT NOT NULL DEFAULT '[]',
    created_at DATETIME NOT NULL,
    PRIMARY KEY (tenant_id, key)
);

CREATE TABLE channels (
    tenant_id  TEXT NOT NULL REFERENCES orgs (id),
    id         TEXT NOT NULL,
    type       TEXT NOT NULL,
    name       TEXT NOT NULL,
    public_id  TEXT NOT NULL,
    -- the non-secret configuration as JSON; secrets are sealed with AES-GCM in secrets
    config     TEXT NOT NULL DEFAULT '{}',
    secrets    BLOB,
    status     TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
    last_error TEXT NOT NULL DEFAULT '',
    created_at DATETIME NOT NULL,
    updated_at DATETIME NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, public_id)
);

-- Where an inbound webhook or e-mail goes before its tenant is known: hook:<public_id> or
-- email:<address>. Global because the tenant is what it finds; it points at no tenant table
-- by foreign key so it can be a reference table on Citus.
CREATE TABLE channel_routes (
    key        TEXT PRIMARY KEY,
    org_id     TEXT NOT NULL REFERENCES orgs (id),
    channel_id TEXT NOT NULL,
    type       TEXT NOT NULL
);

CREATE TABLE conversations (
    tenant_id         TEXT NOT NULL REFERENCES orgs (id),
    id                TEXT NOT NULL,
    channel_id        TEXT NOT NULL,
    contact_id        TEXT NOT NULL,
    status            TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'pending', 'snoozed', 'resolved', 'closed')),
    snoozed_until     DATETIME,
    priority          TEXT NOT NULL DEFAULT 'normal' CHECK (priority IN ('low', 'normal', 'high', 'urgent')),
    type              TEXT NOT NULL DEFAULT 'service' CHECK (type IN ('service', 'complaint', 'sales', 'field')),
    assignee_id       TEXT,
    team              TEXT NOT NULL DEFAULT '',
    subject           TEXT NOT NULL DEFAULT '',
    thread_key        TEXT NOT NULL DEFAULT '',
    attributes        TEXT NOT NULL DEFAULT '{}',
    unread            INTEGER NOT NULL DEFAULT 0,
    preview           TEXT NOT NULL DEFAULT '',
    first_response_at DATETIME,
    resolved_at       DATETIME,
    last_message_at   DATETIME NOT NULL,
    created_at        DATETIME NOT NULL,
    updated_at        DATETIME NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, channel_id) REFERENCES channels (tenant_id, id),
    FOREIGN KEY (tenant_id, contact_id) REFERENCES contacts (tenant_id, id)
);
CREATE INDEX conversations_inbox_idx ON conversations (tenant_id, last_message_at, id);
CREATE INDEX conversations_status_idx ON conversations (tenant_id, status, last_message_at, id);
CREATE INDEX conversations_assignee_idx ON conversations (tenant_id, assignee_id, last_message_at, id);
CREATE INDEX conversations_contact_idx ON conversations (tenant_id, contact_id);
CREATE INDEX conversations_thread_idx ON conversations (tenant_id, channel_id, thread_key);

CREATE TABLE conversation_tags (
    tenant_id       TEXT NOT NULL REFERENCES orgs (id),
    conversation_id TEXT NOT NULL,
    tag             TEXT NOT NULL,
    PRIMARY KEY (tenant_id, conversation_id, tag),
    FOREIGN KEY (tenant_id, conversation_id) REFERENCES conversations (tenant_id, id)
);
CREATE INDEX conversation_tags_tag_idx ON conversation_tags (tenant_id, tag);

CREATE TABLE messages (
    tenant_id       TEXT NOT NULL REFERENCES orgs (id),
    id              TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    channel_id      TEXT NOT NULL,
    direction       TEXT NOT NULL CHECK (direction IN ('in', 'out', 'internal')),
    author_kind     TEXT NOT NULL CHECK (author_kind IN ('contact', 'agent', 'bot', 'system')),
    author_id       TEXT NOT NULL DEFAULT '',
    private         INTEGER NOT NULL DEFAULT 0,
    content         TEXT NOT NULL DEFAULT '',
    content_type    TEXT NOT NULL DEFAULT 'text',
    html            TEXT NOT NULL DEFAULT '',
    -- e-mail threading and other provider details as JSON
    meta            TEXT NOT NULL DEFAULT '{}',
    mentions        TEXT NOT NULL DEFAULT '[]',
    provider_id     TEXT,
    status          TEXT NOT NULL CHECK (status IN ('received', 'queued', 'sent', 'delivered', 'read', 'failed', 'note')),
    failure_reason  TEXT NOT NULL DEFAULT '',
    attempts        INTEGER NOT NULL DEFAULT 0,
    created_at      DATETIME NOT NULL,
    updated_at      DATETIME NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, channel_id, provider_id),
    FOREIGN KEY (tenant_id, conversation_id) REFERENCES conversations (tenant_id, id),
    FOREIGN KEY (tenant_id, channel_id) REFERENCES channels (tenant_id, id)
);
CREATE INDEX messages_conversation_idx ON messages (tenant_id, conversation_id, id);

CREATE TABLE attachments (
    tenant_id       TEXT NOT NULL REFERENCES orgs (id),
    id              TEXT NOT NULL,
    message_id      TEXT,
    conversation_id TEXT,
    filename        TEXT NOT NULL DEFAULT '',
    content_type    TEXT NOT NULL DEFAULT 'application/octet-stream',
    size            INTEGER NOT NULL DEFAULT 0,
    sha256          TEXT NOT NULL DEFAULT '',
    storage_key     TEXT NOT NULL DEFAULT '',
    provider_ref    TEXT NOT NULL DEFAULT '',
    url             TEXT NOT NULL DEFAULT '',
    status          TEXT NOT NULL DEFAULT 'stored' CHECK (status IN ('pending', 'stored', 'failed')),
    created_at      DATETIME NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, message_id) REFERENCES messages (tenant_id, id)
);
CREATE INDEX attachments_message_idx ON attachments (tenant_id, message_id);

CREATE TABLE calls (
    tenant_id        TEXT NOT NULL REFERENCES orgs (id),
    id               TEXT NOT NULL,
    conversation_id  TEXT NOT NULL,
    channel_id       TEXT NOT NULL,
    provider_call_id TEXT NOT NULL,
    direction        TEXT NOT NULL DEFAULT 'inbound',
    from_number      TEXT NOT NULL DEFAULT '',
    to_number        TEXT NOT NULL DEFAULT '',
    status           TEXT NOT NULL,
    started_at       DATETIME NOT NULL,
    answered_at      DATETIME,
    ended_at         DATETIME,
    duration_seconds INTEGER NOT NULL DEFAULT 0,
    recording_url    TEXT NOT NULL DEFAULT '',
    updated_at       DATETIME NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, channel_id, provider_call_id),
    FOREIGN KEY (tenant_id, conversation_id) REFERENCES conversations (tenant_id, id)
);

CREATE TABLE canned_responses (
    tenant_id  TEXT NOT NULL REFERENCES orgs (id),
    id         TEXT NOT NULL,
    shortcut   TEXT NOT NULL,
    title      TEXT NOT NULL,
    content    TEXT NOT NULL,
    created_by TEXT NOT NULL DEFAULT '',
    created_at DATETIME NOT NULL,
    updated_at DATETIME NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, shortcut)
);

-- What the console and the widget are told, in order: a client that reconnects asks for what
-- came after the last id it saw. Pruned after a few days.
CREATE TABLE realtime_events (
    tenant_id       TEXT NOT NULL REFERENCES orgs (id),
    id              TEXT NOT NULL,
    kind            TEXT NOT NULL,
    conversation_id TEXT,
    payload         TEXT NOT NULL,
    created_at      DATETIME NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX realtime_events_conversation_idx ON realtime_events (tenant_id, conversation_id, id);

-- +goose Down
DROP TABLE realtime_events;
DROP TABLE canned_responses;
DROP TABLE calls;
DROP TABLE attachments;
DROP TABLE messages;
DROP TABLE conversation_tags;
DROP TABLE conversations;
DROP TABLE channel_routes;
DROP TABLE channels;
DROP TABLE contact_fields;
DROP TABLE contact_tags;
DROP TABLE contact_identities;
DROP TABLE contacts;
