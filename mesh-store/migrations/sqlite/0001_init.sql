-- Records of every repository: JSON documents scoped by collection and tenant.
-- Times are microseconds since the Unix epoch.
CREATE TABLE IF NOT EXISTS mesh_records (
    collection  TEXT    NOT NULL,
    tenant      TEXT    NOT NULL,
    id          BLOB    NOT NULL,
    version     INTEGER NOT NULL,
    data        TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (collection, tenant, id)
) WITHOUT ROWID;

-- Work queues: one table, many named queues. Times in microseconds since the epoch.
CREATE TABLE IF NOT EXISTS mesh_queue (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    queue         TEXT    NOT NULL,
    body          TEXT    NOT NULL,
    visible_at    INTEGER NOT NULL,
    receive_count INTEGER NOT NULL DEFAULT 0,
    receipt       TEXT,
    received      INTEGER NOT NULL DEFAULT 0,
    dead          INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS mesh_queue_due ON mesh_queue (queue, visible_at, id) WHERE dead = 0;
CREATE INDEX IF NOT EXISTS mesh_queue_dead ON mesh_queue (queue, id) WHERE dead = 1;

-- Vector collections and their vectors (little-endian f32, as given), loaded into
-- memory at open and searched there.
CREATE TABLE IF NOT EXISTS mesh_vector_collections (
    name    TEXT    PRIMARY KEY,
    dims    INTEGER NOT NULL,
    metric  TEXT    NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS mesh_vectors (
    collection  TEXT NOT NULL REFERENCES mesh_vector_collections (name),
    tenant      TEXT NOT NULL,
    id          TEXT NOT NULL,
    vector      BLOB NOT NULL,
    metadata    TEXT NOT NULL,
    PRIMARY KEY (collection, tenant, id)
);
