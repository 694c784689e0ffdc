-- The user service's accounts. IDs are UUIDv7 strings, so their order is
-- creation order and List pages by ID. Usernames and emails are unique
-- case-insensitively (lower(), as the memory store folds them).

-- +goose Up
CREATE TABLE users (
    id            text        PRIMARY KEY,
    username      text        NOT NULL,
    email         text        NOT NULL,
    password_hash bytea       NOT NULL,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL
);
CREATE UNIQUE INDEX users_username_key ON users (lower(username));
CREATE UNIQUE INDEX users_email_key ON users (lower(email));

-- +goose Down
DROP TABLE users;
