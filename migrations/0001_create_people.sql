-- One row per person the service remembers.
--
-- username holds the name exactly as the service parsed it (NFC, case kept).
-- The "C" collation compares bytes: "Alice" and "alice", or two different
-- accents, stay two keys, and an operating-system collation upgrade on the
-- database host cannot silently reorder (and so corrupt) the primary-key index.
CREATE TABLE people (
    username      text COLLATE "C" PRIMARY KEY,
    date_of_birth date        NOT NULL,
    updated_at    timestamptz NOT NULL DEFAULT now()
);
