-- Embedding in other sites' dashboards (issue 17): API keys for their backends, the secret
-- that signs listen tokens, the tokens already used, and who the audit row was for. Portable
-- SQL only (SQLite, PostgreSQL, MySQL): see src/db.rs.

-- Only the key's SHA-256 is kept: a key is 32 random bytes, so no password hash is needed
-- to make a leaked table useless. `sensors` is a comma-separated list of sensor ids, NULL
-- for every sensor; `expires` NULL for never.
CREATE TABLE api_keys (
    id BIGINT NOT NULL PRIMARY KEY,
    name VARCHAR(255) NOT NULL UNIQUE,
    key_hash VARCHAR(64) NOT NULL UNIQUE,
    role VARCHAR(16) NOT NULL,
    sensors VARCHAR(1024),
    created BIGINT NOT NULL,
    expires BIGINT);

-- Secrets every player sharing the database must agree on (the listen tokens' HMAC key):
-- created once by whichever player needs it first, the primary key settling a race.
CREATE TABLE player_secrets (
    name VARCHAR(64) NOT NULL PRIMARY KEY,
    secret VARCHAR(128) NOT NULL);

-- Listen tokens that started a session: one insert each, refused the second time, on any
-- player. Rows are purged once the token has expired anyway.
CREATE TABLE used_listen_tokens (
    nonce VARCHAR(64) NOT NULL PRIMARY KEY,
    expires BIGINT NOT NULL);

ALTER TABLE audit ADD COLUMN api_key VARCHAR(255);
ALTER TABLE audit ADD COLUMN end_user VARCHAR(255);
