-- wasmtel sample data: a small ZITADEL-like schema with deterministic, fake data.
--
-- Runs as one batch (rusqlite `execute_batch`, or `sqlite3 db < seed.sql`) on an
-- empty SQLite database. It is not idempotent: run it once per fresh database.
-- Every name, e-mail address and domain is made up (example.com/.net/.org).
--
-- Shape of the data (see EXPECTED.md for the resulting counts):
--   inst-acme   : org-acme-1, org-acme-2, org-acme-3 (no live users: one deleted only)
--   inst-globex : org-globex-1, org-globex-2 (no projects, apps or actions)
-- users14.state is 'active', 'locked' or 'deleted'; deleted users are not counted.

CREATE TABLE instances (
    id         TEXT PRIMARY KEY,
    name       TEXT    NOT NULL,
    created_at INTEGER NOT NULL  -- unix seconds
);

CREATE TABLE instance_domains (
    instance_id TEXT    NOT NULL REFERENCES instances(id),
    domain      TEXT    NOT NULL,
    is_primary  INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (instance_id, domain)
);

CREATE TABLE orgs (
    instance_id TEXT    NOT NULL REFERENCES instances(id),
    id          TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (instance_id, id)
);

CREATE TABLE users14 (
    instance_id    TEXT    NOT NULL,
    resource_owner TEXT    NOT NULL,  -- org id
    id             TEXT    NOT NULL,
    username       TEXT    NOT NULL,
    email          TEXT    NOT NULL,
    created_at     INTEGER NOT NULL,
    state          TEXT    NOT NULL DEFAULT 'active',  -- active | locked | deleted
    PRIMARY KEY (instance_id, id)
);

CREATE TABLE projects4 (
    instance_id    TEXT NOT NULL,
    resource_owner TEXT NOT NULL,
    id             TEXT NOT NULL,
    name           TEXT NOT NULL,
    PRIMARY KEY (instance_id, id)
);

CREATE TABLE apps7 (
    instance_id    TEXT NOT NULL,
    resource_owner TEXT NOT NULL,
    project_id     TEXT NOT NULL,
    id             TEXT NOT NULL,
    name           TEXT NOT NULL,
    PRIMARY KEY (instance_id, id)
);

CREATE TABLE sessions8 (
    instance_id    TEXT    NOT NULL,
    resource_owner TEXT    NOT NULL,
    id             TEXT    NOT NULL,
    user_id        TEXT    NOT NULL,
    created_at     INTEGER NOT NULL,
    PRIMARY KEY (instance_id, id)
);

CREATE TABLE actions3 (
    instance_id    TEXT NOT NULL,
    resource_owner TEXT NOT NULL,
    id             TEXT NOT NULL,
    name           TEXT NOT NULL,
    PRIMARY KEY (instance_id, id)
);

-- Instances and their domains -------------------------------------------------

INSERT INTO instances (id, name, created_at) VALUES
    ('inst-acme',   'ACME Corporation', 1672531200),  -- 2023-01-01T00:00:00Z
    ('inst-globex', 'Globex',           1688169600);  -- 2023-07-01T00:00:00Z

INSERT INTO instance_domains (instance_id, domain, is_primary) VALUES
    ('inst-acme',   'acme.example.com',       1),
    ('inst-acme',   'login.acme.example.com', 0),
    ('inst-acme',   'auth.acme.example.org',  0),
    ('inst-globex', 'globex.example.net',     1);

INSERT INTO orgs (instance_id, id, name, created_at) VALUES
    ('inst-acme',   'org-acme-1',   'ACME Headquarters', 1672531200 + 1 * 86400),
    ('inst-acme',   'org-acme-2',   'ACME Labs',         1672531200 + 2 * 86400),
    ('inst-acme',   'org-acme-3',   'ACME Archive',      1672531200 + 3 * 86400),
    ('inst-globex', 'org-globex-1', 'Globex Main',       1688169600 + 1 * 86400),
    ('inst-globex', 'org-globex-2', 'Globex Partners',   1688169600 + 2 * 86400);

-- Generation plan: how many of each thing every org gets ----------------------

CREATE TEMP TABLE plan (
    instance_id   TEXT,
    org_id        TEXT,
    short         TEXT,     -- org id without the `org-` prefix
    active_users  INTEGER,  -- state 'active'
    locked_users  INTEGER,  -- state 'locked' (still counted)
    deleted_users INTEGER,  -- state 'deleted' (not counted)
    sessions      INTEGER,
    actions       INTEGER
);
INSERT INTO plan VALUES
    ('inst-acme',   'org-acme-1',   'acme-1',   12, 0, 2, 30, 2),
    ('inst-acme',   'org-acme-2',   'acme-2',    6, 1, 0,  9, 1),
    ('inst-acme',   'org-acme-3',   'acme-3',    0, 0, 1,  0, 0),
    ('inst-globex', 'org-globex-1', 'globex-1', 24, 1, 1, 40, 3),
    ('inst-globex', 'org-globex-2', 'globex-2',  3, 0, 0,  5, 0);

-- Projects per org, and apps per project.
CREATE TEMP TABLE project_plan (org_id TEXT, n INTEGER, name TEXT, apps INTEGER);
INSERT INTO project_plan VALUES
    ('org-acme-1',   1, 'Customer Portal', 3),
    ('org-acme-1',   2, 'Billing',         2),
    ('org-acme-1',   3, 'Internal Tools',  0),
    ('org-acme-1',   4, 'Mobile',          1),
    ('org-acme-2',   1, 'Research',        2),
    ('org-acme-2',   2, 'Prototypes',      1),
    ('org-acme-3',   1, 'Legacy',          0),
    ('org-globex-1', 1, 'Storefront',      4),
    ('org-globex-1', 2, 'Warehouse',       4),
    ('org-globex-1', 3, 'Analytics',       2);

CREATE TEMP TABLE seq (n INTEGER PRIMARY KEY);
INSERT INTO seq (n)
    WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < 100)
    SELECT n FROM s;

CREATE TEMP TABLE first_names (i INTEGER PRIMARY KEY, name TEXT);
INSERT INTO first_names (i, name) VALUES
    (0, 'ada'), (1, 'alan'), (2, 'grace'), (3, 'linus'), (4, 'barbara'),
    (5, 'dennis'), (6, 'margaret'), (7, 'ken'), (8, 'radia'), (9, 'edsger'),
    (10, 'frances'), (11, 'donald'), (12, 'hedy'), (13, 'tim'), (14, 'karen');
CREATE TEMP TABLE last_names (i INTEGER PRIMARY KEY, name TEXT);
INSERT INTO last_names (i, name) VALUES
    (0, 'lovelace'), (1, 'turing'), (2, 'hopper'), (3, 'liskov'),
    (4, 'ritchie'), (5, 'hamilton'), (6, 'thompson');

-- Users: active first, then locked, then deleted; numbered 1..total per org.
INSERT INTO users14 (instance_id, resource_owner, id, username, email, created_at, state)
SELECT p.instance_id,
       p.org_id,
       printf('usr-%s-%02d', p.short, s.n),
       f.name || '.' || l.name || s.n,
       f.name || '.' || l.name || s.n || '@' || replace(p.short, '-', '') || '.example.com',
       o.created_at + s.n * 3600,
       CASE
           WHEN s.n <= p.active_users THEN 'active'
           WHEN s.n <= p.active_users + p.locked_users THEN 'locked'
           ELSE 'deleted'
       END
FROM plan p
JOIN orgs o ON o.instance_id = p.instance_id AND o.id = p.org_id
JOIN seq s ON s.n <= p.active_users + p.locked_users + p.deleted_users
JOIN first_names f ON f.i = (s.n + length(p.short)) % 15
JOIN last_names l ON l.i = (s.n * 3 + length(p.org_id)) % 7
ORDER BY p.org_id, s.n;

INSERT INTO projects4 (instance_id, resource_owner, id, name)
SELECT p.instance_id, p.org_id, printf('prj-%s-%d', p.short, pp.n), pp.name
FROM project_plan pp
JOIN plan p ON p.org_id = pp.org_id
ORDER BY p.org_id, pp.n;

INSERT INTO apps7 (instance_id, resource_owner, project_id, id, name)
SELECT p.instance_id,
       p.org_id,
       printf('prj-%s-%d', p.short, pp.n),
       printf('app-%s-%d-%d', p.short, pp.n, s.n),
       pp.name || ' ' || CASE s.n % 4
                             WHEN 1 THEN 'Web'
                             WHEN 2 THEN 'API'
                             WHEN 3 THEN 'iOS'
                             ELSE 'Android'
                         END
FROM project_plan pp
JOIN plan p ON p.org_id = pp.org_id
JOIN seq s ON s.n <= pp.apps
ORDER BY p.org_id, pp.n, s.n;

-- Sessions cycle through the org's non-deleted users.
INSERT INTO sessions8 (instance_id, resource_owner, id, user_id, created_at)
SELECT p.instance_id,
       p.org_id,
       printf('ses-%s-%03d', p.short, s.n),
       printf('usr-%s-%02d', p.short, (s.n - 1) % (p.active_users + p.locked_users) + 1),
       1763596800 + s.n * 600  -- from 2025-11-20T00:00:00Z, every 10 minutes
FROM plan p
JOIN seq s ON s.n <= p.sessions
ORDER BY p.org_id, s.n;

INSERT INTO actions3 (instance_id, resource_owner, id, name)
SELECT p.instance_id,
       p.org_id,
       printf('act-%s-%d', p.short, s.n),
       CASE s.n WHEN 1 THEN 'enrich-token' WHEN 2 THEN 'sync-crm' ELSE 'audit-login' END
FROM plan p
JOIN seq s ON s.n <= p.actions
ORDER BY p.org_id, s.n;

DROP TABLE temp.plan;
DROP TABLE temp.project_plan;
DROP TABLE temp.seq;
DROP TABLE temp.first_names;
DROP TABLE temp.last_names;
