-- +goose Up
-- Omnichannel contact: contacts with their identities, channels (inboxes), conversations,
-- messages, attachments, calls, canned responses and the realtime event log.

CREATE TABLE contacts (
    tenant_id        uuid NOT NULL REFERENCES orgs (id),
    id               uuid NOT NULL,
    name             text NOT NULL DEFAULT '',
    locale           text NOT NULL DEFAULT '',
    company          text NOT NULL DEFAULT '',
    attributes       text NOT NULL DEFAULT '{}',
    -- lower-cased name, e-mails and phones: what search looks in
    search           text NOT NULL DEFAULT '',
    merged_into      uuid,
    last_activity_at timestamptz,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, merged_into) REFERENCES contacts (tenant_id, id)
);
CREATE INDEX contacts_search_idx ON contacts (tenant_id, search);

CREATE TABLE contact_identities (
    tenant_id  uuid NOT NULL REFERENCES orgs (id),
    id         uuid NOT NULL,
    contact_id uuid NOT NULL,
    kind       text NOT NULL,
    value      text NOT NULL,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, kind, value),
    FOREIGN KEY (tenant_id, contact_id) REFERENCES contacts (tenant_id, id)
);
CREATE INDEX contact_identities_contact_idx ON contact_identities (tenant_id, contact_id);

CREATE TABLE contact_tags (
    tenant_id  uuid NOT NULL REFERENCES orgs (id),
    contact_id uuid NOT NULL,
    tag        text NOT NULL,
    PRIMARY KEY (tenant_id, contact_id, tag),
    FOREIGN KEY (tenant_id, contact_id) REFERENCES contacts (tenant_id, id)
);
CREATE INDEX contact_tags_tag_idx ON contact_tags (tenant_id, tag);

-- The tenant's typed custom contact fields; values live in contacts.attributes.
CREATE TABLE contact_fields (
    tenant_id  uuid NOT NULL REFERENCES orgs (id),
    key        text NOT NULL,
    label      text NOT NULL,
    type       text NOT NULL CHECK (type IN ('text', 'number', 'boolean', 'date', 'select')),
    options    text NOT NULL DEFAULT '[]',
    created_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, key)
);

CREATE TABLE channels (
    tenant_id  uuid NOT NULL REFERENCES orgs (id),
    id         uuid NOT NULL,
    type       text NOT NULL,
    name       text NOT NULL,
    public_id  text NOT NULL,
    -- the non-secret configuration as JSON; secrets are sealed with AES-GCM in secrets
    config     text NOT NULL DEFAULT '{}',
    secrets    bytea,
    status     text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
    last_error text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, public_id)
);

-- Where an inbound webhook or e-mail goes before its tenant is known: hook:<public_id> or
-- email:<address>. Global because the tenant is what it finds; it points at no tenant table
-- by foreign key so it can be a reference table on Citus.
CREATE TABLE channel_routes (
    key        text PRIMARY KEY,
    org_id     uuid NOT NULL REFERENCES orgs (id),
    channel_id uuid NOT NULL,
    type       text NOT NULL
);

CREATE TABLE conversations (
    tenant_id         uuid NOT NULL REFERENCES orgs (id),
    id                uuid NOT NULL,
    channel_id        uuid NOT NULL,
    contact_id        uuid NOT NULL,
    status            text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'pending', 'snoozed', 'resolved', 'closed')),
    snoozed_until     timestamptz,
    priority          text NOT NULL DEFAULT 'normal' CHECK (priority IN ('low', 'normal', 'high', 'urgent')),
    type              text NOT NULL DEFAULT 'service' CHECK (type IN ('service', 'complaint', 'sales', 'field')),
    assignee_id       uuid,
    team              text NOT NULL DEFAULT '',
    subject           text NOT NULL DEFAULT '',
    thread_key        text NOT NULL DEFAULT '',
    attributes        text NOT NULL DEFAULT '{}',
    unread            integer NOT NULL DEFAULT 0,
    preview           text NOT NULL DEFAULT '',
    first_response_at timestamptz,
    resolved_at       timestamptz,
    last_message_at   timestamptz NOT NULL,
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, channel_id) REFERENCES channels (tenant_id, id),
    FOREIGN KEY (tenant_id, contact_id) REFERENCES contacts (tenant_id, id)
);
CREATE INDEX conversations_inbox_idx ON conversations (tenant_id, last_message_at DESC, id DESC);
CREATE INDEX conversations_status_idx ON conversations (tenant_id, status, last_message_at DESC, id DESC);
CREATE INDEX conversations_assignee_idx ON conversations (tenant_id, assignee_id, last_message_at DESC, id DESC);
CREATE INDEX conversations_contact_idx ON conversations (tenant_id, contact_id);
CREATE INDEX conversations_thread_idx ON conversations (tenant_id, channel_id, thread_key);

CREATE TABLE conversation_tags (
    tenant_id       uuid NOT NULL REFERENCES orgs (id),
    conversation_id uuid NOT NULL,
    tag             text NOT NULL,
    PRIMARY KEY (tenant_id, conversation_id, tag),
    FOREIGN KEY (tenant_id, conversation_id) REFERENCES conversations (tenant_id, id)
);
CREATE INDEX conversation_tags_tag_idx ON conversation_tags (tenant_id, tag);

CREATE TABLE messages (
    tenant_id       uuid NOT NULL REFERENCES orgs (id),
    id              uuid NOT NULL,
    conversation_id uuid NOT NULL,
    channel_id      uuid NOT NULL,
    direction       text NOT NULL CHECK (direction IN ('in', 'out', 'internal')),
    author_kind     text NOT NULL CHECK (author_kind IN ('contact', 'agent', 'bot', 'system')),
    author_id       text NOT NULL DEFAULT '',
    private         boolean NOT NULL DEFAULT false,
    content         text NOT NULL DEFAULT '',
    content_type    text NOT NULL DEFAULT 'text',
    html            text NOT NULL DEFAULT '',
    -- e-mail threading and other provider details as JSON
    meta            text NOT NULL DEFAULT '{}',
    mentions        text NOT NULL DEFAULT '[]',
    provider_id     text,
    status          text NOT NULL CHECK (status IN ('received', 'queued', 'sent', 'delivered', 'read', 'failed', 'note')),
    failure_reason  text NOT NULL DEFAULT '',
    attempts        integer NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, channel_id, provider_id),
    FOREIGN KEY (tenant_id, conversation_id) REFERENCES conversations (tenant_id, id),
    FOREIGN KEY (tenant_id, channel_id) REFERENCES channels (tenant_id, id)
);
CREATE INDEX messages_conversation_idx ON messages (tenant_id, conversation_id, id);

CREATE TABLE attachments (
    tenant_id       uuid NOT NULL REFERENCES orgs (id),
    id              uuid NOT NULL,
    message_id      uuid,
    conversation_id uuid,
    filename        text NOT NULL DEFAULT '',
    content_type    text NOT NULL DEFAULT 'application/octet-stream',
    size            bigint NOT NULL DEFAULT 0,
    sha256          text NOT NULL DEFAULT '',
    storage_key     text NOT NULL DEFAULT '',
    provider_ref    text NOT NULL DEFAULT '',
    url             text NOT NULL DEFAULT '',
    status          text NOT NULL DEFAULT 'stored' CHECK (status IN ('pending', 'stored', 'failed')),
    created_at      timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, message_id) REFERENCES messages (tenant_id, id)
);
CREATE INDEX attachments_message_idx ON attachments (tenant_id, message_id);

CREATE TABLE calls (
    tenant_id        uuid NOT NULL REFERENCES orgs (id),
    id               uuid NOT NULL,
    conversation_id  uuid NOT NULL,
    channel_id       uuid NOT NULL,
    provider_call_id text NOT NULL,
    direction        text NOT NULL DEFAULT 'inbound',
    from_number      text NOT NULL DEFAULT '',
    to_number        text NOT NULL DEFAULT '',
    status           text NOT NULL,
    started_at       timestamptz NOT NULL,
    answered_at      timestamptz,
    ended_at         timestamptz,
    duration_seconds bigint NOT NULL DEFAULT 0,
    recording_url    text NOT NULL DEFAULT '',
    updated_at       timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, channel_id, provider_call_id),
    FOREIGN KEY (tenant_id, conversation_id) REFERENCES conversations (tenant_id, id)
);

CREATE TABLE canned_responses (
    tenant_id  uuid NOT NULL REFERENCES orgs (id),
    id         uuid NOT NULL,
    shortcut   text NOT NULL,
    title      text NOT NULL,
    content    text NOT NULL,
    created_by text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, shortcut)
);

-- What the console and the widget are told, in order: a client that reconnects asks for what
-- came after the last id it saw. Pruned after a few days.
CREATE TABLE realtime_events (
    tenant_id       uuid NOT NULL REFERENCES orgs (id),
    id              uuid NOT NULL,
    kind            text NOT NULL,
    conversation_id uuid,
    payload         text NOT NULL,
    created_at      timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX realtime_events_conversation_idx ON realtime_events (tenant_id, conversation_id, id);

-- +goose StatementBegin
DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['contacts', 'contact_identities', 'contact_tags', 'contact_fields', 'channels',
        'conversations', 'conversation_tags', 'messages', 'attachments', 'calls', 'canned_responses', 'realtime_events']
    LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format($p$CREATE POLICY tenant_isolation ON %I
            USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid
                   OR current_setting('app.platform', true) = 'on')
            WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid
                   OR current_setting('app.platform', true) = 'on')$p$, t);
    END LOOP;
END
$$;
-- +goose StatementEnd

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
