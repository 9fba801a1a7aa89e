-- Server-wide key/value settings (instance id, schema notes). Never edit a released migration;
-- add a new numbered file instead.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
) STRICT;
