-- A used link token is kept until it expires, with the device it registered and that
-- device's password hash, so a companion whose connection dropped before it heard the answer
-- can repeat the registration and learn its device id instead of leaving a device nobody
-- holds.
ALTER TABLE link_tokens ADD COLUMN used_by INTEGER;
ALTER TABLE link_tokens ADD COLUMN used_password BLOB;
