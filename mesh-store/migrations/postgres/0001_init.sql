-- Records of every repository: JSONB documents scoped by collection and tenant.
CREATE TABLE IF NOT EXISTS mesh_records (
    collection  text        NOT NULL,
    tenant      text        NOT NULL,
    id          uuid        NOT NULL,
    version     bigint      NOT NULL,
    data        jsonb       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (collection, tenant, id)
);

-- Work queues: one table, many named queues.
CREATE TABLE IF NOT EXISTS mesh_queue (
    id            bigserial   PRIMARY KEY,
    queue         text        NOT NULL,
    body          text        NOT NULL,
    visible_at    timestamptz NOT NULL,
    receive_count integer     NOT NULL DEFAULT 0,
    receipt       uuid,
    received      boolean     NOT NULL DEFAULT false,
    dead          boolean     NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS mesh_queue_due ON mesh_queue (queue, visible_at, id) WHERE NOT dead;
CREATE INDEX IF NOT EXISTS mesh_queue_dead ON mesh_queue (queue, id) WHERE dead;

-- Vector collections: one table each (mesh_vectors_<name>), created on demand.
CREATE EXTENSION IF NOT EXISTS vector;
CREATE TABLE IF NOT EXISTS mesh_vector_collections (
    name    text    PRIMARY KEY,
    dims    integer NOT NULL,
    metric  text    NOT NULL
);
