-- +goose NO TRANSACTION
-- +goose Up
-- The console's unread counts (GET /conversations/unread-counts) read only the conversations
-- with something unread, however large the inbox. Built CONCURRENTLY (outside a transaction):
-- a plain CREATE INDEX would hold back every write to conversations, inbound messages
-- included, while it reads the table.
CREATE INDEX CONCURRENTLY IF NOT EXISTS conversations_unread_idx ON conversations (tenant_id, assignee_id) WHERE unread > 0 AND status <> 'closed';

-- +goose Down
DROP INDEX CONCURRENTLY IF EXISTS conversations_unread_idx;
