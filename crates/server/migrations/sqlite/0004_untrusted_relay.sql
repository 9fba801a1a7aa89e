-- The relay as an adversary (issue 13): challenge–response logins, signed group state, fair
-- queues, acknowledged expiry notices. Never edit a released migration; add a new file.

-- Logins are challenge–response: a device signs the connection's challenge with its identity
-- key, and the relay keeps only public identity keys. No secret of a device is stored.
ALTER TABLE devices DROP COLUMN password_hash;
ALTER TABLE link_tokens DROP COLUMN used_password;

-- Who sent each queued copy, so one sender's share of a queue is counted (copies and bytes)
-- and that sender alone is refused when it floods.
ALTER TABLE queue ADD COLUMN sender BLOB NOT NULL DEFAULT x'';

-- Expiry tombstones: when made (dropped after the queue lifetime if the device never comes
-- back), and the group of a group message. The device acknowledges the notice by rowid.
ALTER TABLE expired ADD COLUMN created_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE expired ADD COLUMN group_id BLOB NOT NULL DEFAULT x'';

-- Groups: membership is a chain of admin-signed states (tandem_core::group_state); the relay
-- keeps the chain, and the newest state's members (with whether they accepted) for routing.
DROP TABLE group_members;
DROP TABLE groups;
CREATE TABLE groups (
    id         BLOB PRIMARY KEY NOT NULL,
    version    INTEGER NOT NULL,                         -- newest state's version
    created_by BLOB NOT NULL,                            -- account, for the per-account cap
    created_at INTEGER NOT NULL
) STRICT;
CREATE INDEX groups_by_creator ON groups (created_by);
CREATE TABLE group_states (
    group_id BLOB NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    version  INTEGER NOT NULL,
    state    BLOB NOT NULL,                              -- SignedGroupState bytes
    PRIMARY KEY (group_id, version)
) STRICT, WITHOUT ROWID;
CREATE TABLE group_members (
    group_id   BLOB NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    account_id BLOB NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    accepted   INTEGER NOT NULL,                         -- routed to only once accepted
    PRIMARY KEY (group_id, account_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX group_members_by_account ON group_members (account_id);
