-- Accounts, devices, prekeys, per-device message queues and groups.
-- Never edit a released migration; add a new numbered file instead.

CREATE TABLE accounts (
    id                  BLOB PRIMARY KEY NOT NULL,      -- 16 random bytes
    handle              TEXT NOT NULL UNIQUE,           -- lowercase
    identity_key        BLOB NOT NULL,                  -- the account key (33 bytes)
    signed_device_list  BLOB,                           -- latest list the primary signed
    device_list_version INTEGER NOT NULL DEFAULT 0,
    next_device_id      INTEGER NOT NULL DEFAULT 2,     -- companion ids are never reused
    created_at          INTEGER NOT NULL
) STRICT;

CREATE TABLE devices (
    account_id      BLOB NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    device_id       INTEGER NOT NULL,
    registration_id INTEGER NOT NULL,
    identity_key    BLOB NOT NULL,
    adv_identity    BLOB NOT NULL,
    password_hash   BLOB NOT NULL,                      -- SHA-256 of a 32-byte random secret
    name            TEXT NOT NULL,
    platform        TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    last_seen       INTEGER NOT NULL,
    PRIMARY KEY (account_id, device_id)
) STRICT, WITHOUT ROWID;

CREATE TABLE link_tokens (
    token_hash BLOB PRIMARY KEY NOT NULL,
    account_id BLOB NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    expires_at INTEGER NOT NULL
) STRICT;

CREATE TABLE signed_prekeys (
    account_id BLOB NOT NULL,
    device_id  INTEGER NOT NULL,
    key_id     INTEGER NOT NULL,
    public_key BLOB NOT NULL,
    signature  BLOB NOT NULL,
    PRIMARY KEY (account_id, device_id),
    FOREIGN KEY (account_id, device_id) REFERENCES devices (account_id, device_id) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;

CREATE TABLE one_time_prekeys (
    account_id BLOB NOT NULL,
    device_id  INTEGER NOT NULL,
    key_id     INTEGER NOT NULL,
    public_key BLOB NOT NULL,
    PRIMARY KEY (account_id, device_id, key_id),
    FOREIGN KEY (account_id, device_id) REFERENCES devices (account_id, device_id) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;

CREATE TABLE kyber_prekeys (
    account_id  BLOB NOT NULL,
    device_id   INTEGER NOT NULL,
    key_id      INTEGER NOT NULL,
    public_key  BLOB NOT NULL,
    signature   BLOB NOT NULL,
    last_resort INTEGER NOT NULL,
    PRIMARY KEY (account_id, device_id, key_id),
    FOREIGN KEY (account_id, device_id) REFERENCES devices (account_id, device_id) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;

-- One row per copy of a message for one device. Ids only grow (AUTOINCREMENT), so a
-- device's queue order is send order.
CREATE TABLE queue (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id BLOB NOT NULL,
    device_id  INTEGER NOT NULL,
    envelope   BLOB NOT NULL,                          -- Envelope protobuf without its id
    expires_at INTEGER NOT NULL
) STRICT;
CREATE INDEX queue_by_device ON queue (account_id, device_id, id);

-- What expired undelivered, kept until the device has been told.
CREATE TABLE expired (
    account_id       BLOB NOT NULL,
    device_id        INTEGER NOT NULL,
    source_account   BLOB NOT NULL,
    source_device    INTEGER NOT NULL,
    client_timestamp INTEGER NOT NULL
) STRICT;
CREATE INDEX expired_by_device ON expired (account_id, device_id);

CREATE TABLE groups (
    id         BLOB PRIMARY KEY NOT NULL,
    version    INTEGER NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE group_members (
    group_id   BLOB NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    account_id BLOB NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    admin      INTEGER NOT NULL,
    PRIMARY KEY (group_id, account_id)
) STRICT, WITHOUT ROWID;
