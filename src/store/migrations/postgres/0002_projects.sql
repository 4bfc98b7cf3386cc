-- PostgreSQL schema version 2: which project each session belongs to (as SQLite's
-- 0002_projects.sql).
--
-- A collector running with projects claims every session for the project whose ingest key
-- sent its first batch, before storing it; later batches from another project are refused,
-- and admin reads and deletes only see their own project's sessions. Sessions recorded
-- without projects have no row here.

CREATE TABLE session_projects (
    session_id TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    project    TEXT COLLATE "C" NOT NULL
);

CREATE INDEX session_projects_by_project ON session_projects (project, session_id);
