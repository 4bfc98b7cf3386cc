-- Schema version 1: sessions, their batches, and their page views.
--
-- `batches` is the source of truth: one row per (session_id, seq), the events kept as
-- plain JSON text exactly as decoded. `sessions` and `page_views` are summaries kept up
-- to date in the same transaction as every insert, so that listing is one cheap scan.

CREATE TABLE batches (
    session_id  TEXT    NOT NULL,
    seq         INTEGER NOT NULL,
    -- Wire-format version the batch was written in (`event::SCHEMA_VERSION`).
    v           INTEGER NOT NULL,
    pvid        TEXT    NOT NULL,
    sent        INTEGER,
    received_at INTEGER NOT NULL,
    first_t     INTEGER NOT NULL,
    last_t      INTEGER NOT NULL,
    n_events    INTEGER NOT NULL,
    -- JSON array of events. Never compressed: privacy audits grep the raw file.
    events      TEXT    NOT NULL,
    PRIMARY KEY (session_id, seq)
);

CREATE TABLE page_views (
    session_id TEXT NOT NULL,
    pvid       TEXT NOT NULL,
    PRIMARY KEY (session_id, pvid)
) WITHOUT ROWID;

CREATE TABLE sessions (
    id            TEXT    NOT NULL PRIMARY KEY,
    started_at    INTEGER NOT NULL,
    ended_at      INTEGER NOT NULL,
    batches       INTEGER NOT NULL,
    events        INTEGER NOT NULL,
    pages         INTEGER NOT NULL,
    -- URL of the earliest meta event, and its (t, seq) to keep the earliest.
    first_url     TEXT,
    first_url_t   INTEGER,
    first_url_seq INTEGER,
    -- User of the latest identify event, and its (t, seq) to keep the latest.
    user          TEXT,
    user_t        INTEGER,
    user_seq      INTEGER,
    -- When the latest batch was received (collector clock, epoch ms).
    received_at   INTEGER NOT NULL
) WITHOUT ROWID;

CREATE INDEX sessions_by_start ON sessions (started_at, id);
