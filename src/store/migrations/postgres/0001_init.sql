-- PostgreSQL schema version 1: the same tables as SQLite's 0001_init.sql.
--
-- `batches` is the source of truth: one row per (session_id, seq), the events kept as
-- plain JSON text exactly as decoded. `sessions` and `page_views` are summaries kept up
-- to date in the same transaction as every insert, so that listing is one cheap scan.
--
-- Ids compare bytewise (COLLATE "C"), as in SQLite, so that listings order the same on
-- both backends whatever the database's locale. `user` is a reserved word here, hence
-- `user_name`.

CREATE TABLE batches (
    session_id  TEXT COLLATE "C" NOT NULL,
    seq         BIGINT NOT NULL,
    -- Wire-format version the batch was written in (`event::SCHEMA_VERSION`).
    v           BIGINT NOT NULL,
    pvid        TEXT   NOT NULL,
    sent        BIGINT,
    received_at BIGINT NOT NULL,
    first_t     BIGINT NOT NULL,
    last_t      BIGINT NOT NULL,
    n_events    BIGINT NOT NULL,
    -- JSON array of events. Never compressed: privacy audits grep the raw files.
    events      TEXT   NOT NULL,
    PRIMARY KEY (session_id, seq)
);
-- Events are never compressed. Rows up to a page (most batches) stay inline; larger
-- values go out of line (TOAST), still uncompressed.
ALTER TABLE batches ALTER COLUMN events SET STORAGE EXTERNAL;
ALTER TABLE batches SET (toast_tuple_target = 8160);

CREATE TABLE page_views (
    session_id TEXT COLLATE "C" NOT NULL,
    pvid       TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (session_id, pvid)
);

CREATE TABLE sessions (
    id            TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    started_at    BIGINT NOT NULL,
    ended_at      BIGINT NOT NULL,
    batches       BIGINT NOT NULL,
    events        BIGINT NOT NULL,
    pages         BIGINT NOT NULL,
    -- URL of the earliest meta event, and its (t, seq) to keep the earliest.
    first_url     TEXT,
    first_url_t   BIGINT,
    first_url_seq BIGINT,
    -- User of the latest identify event, and its (t, seq) to keep the latest.
    user_name     TEXT,
    user_t        BIGINT,
    user_seq      BIGINT,
    -- When the latest batch was received (collector clock, epoch ms).
    received_at   BIGINT NOT NULL
);

CREATE INDEX sessions_by_start ON sessions (started_at, id);
