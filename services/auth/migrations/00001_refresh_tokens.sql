-- The auth service's refresh tokens. A login starts a family; each rotation
-- marks the presented token used and adds the next one. Only SHA-256 hashes
-- of tokens are stored.

-- +goose Up
CREATE TABLE refresh_families (
    id         uuid        PRIMARY KEY,
    user_id    text        NOT NULL,
    username   text        NOT NULL,
    created_at timestamptz NOT NULL,
    revoked_at timestamptz
);
CREATE TABLE refresh_tokens (
    hash       bytea       PRIMARY KEY,
    family_id  uuid        NOT NULL REFERENCES refresh_families (id) ON DELETE CASCADE,
    expires_at timestamptz NOT NULL,
    used_at    timestamptz
);
CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_expires_idx ON refresh_tokens (expires_at);

-- +goose Down
DROP TABLE refresh_tokens;
DROP TABLE refresh_families;
