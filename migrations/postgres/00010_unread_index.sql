-- +goose Up
-- The console's unread counts (GET /conversations/unread-counts) read only the conversations
-- with something unread, however large the inbox.
CREATE INDEX conversations_unread_idx ON conversations (tenant_id, assignee_id) WHERE unread > 0 AND status <> 'closed';

-- +goose Down
DROP INDEX conversations_unread_idx;
