-- The schema as it was when versioned migrations began (player 0.1). IF NOT EXISTS: a
-- database made before migrations already has these tables, and this records it as at
-- version 1. Portable SQL only (SQLite, PostgreSQL, MySQL): see src/db.rs. Never edit an
-- applied migration (its checksum is checked); add the next file instead.

CREATE TABLE IF NOT EXISTS sensors (
    id_sensor INTEGER NOT NULL PRIMARY KEY,
    name VARCHAR(255) NOT NULL,
    host VARCHAR(255) NOT NULL,
    port INTEGER NOT NULL,
    token VARCHAR(255),
    tls INTEGER NOT NULL,
    kind VARCHAR(16) NOT NULL);

CREATE TABLE IF NOT EXISTS users (
    id BIGINT NOT NULL PRIMARY KEY,
    name VARCHAR(255) NOT NULL UNIQUE,
    password_hash VARCHAR(255) NOT NULL,
    role VARCHAR(16) NOT NULL);

CREATE TABLE IF NOT EXISTS sessions (
    token_hash VARCHAR(64) NOT NULL PRIMARY KEY,
    user_id BIGINT NOT NULL,
    csrf VARCHAR(64) NOT NULL,
    expires BIGINT NOT NULL);

CREATE TABLE IF NOT EXISTS audit (
    id BIGINT NOT NULL PRIMARY KEY,
    user_name VARCHAR(255) NOT NULL,
    source_ip VARCHAR(64),
    id_sensor BIGINT,
    callreference VARCHAR(64) NOT NULL,
    callid VARCHAR(255),
    caller VARCHAR(255),
    called VARCHAR(255),
    started BIGINT NOT NULL,
    stopped BIGINT,
    via VARCHAR(16),
    outcome VARCHAR(16),
    reason VARCHAR(255));
