import Logging
import Pins
import PostgresNIO

/// The schema, as an ordered list of SQL migrations. A released migration is never edited:
/// `migrate up` refuses to run when an applied migration's checksum differs from this list.
public struct Migration: Sendable {
    /// Rewrites rows in a way SQL cannot express (decoding CIDs), inside the migration's
    /// transaction, between `sql` and `finish`. Runs as the schema owner.
    public typealias Backfill = @Sendable (PostgresConnection, Logger) async throws -> Void

    public let version: Int
    public let name: String
    public let sql: String
    public let backfill: Backfill?
    /// SQL run after the backfill (e.g. `SET NOT NULL` on the column it filled).
    public let finish: String

    public init(version: Int, name: String, sql: String, backfill: Backfill? = nil, finish: String = "") {
        self.version = version
        self.name = name
        self.sql = sql
        self.backfill = backfill
        self.finish = finish
    }

    /// What the checksum covers: every statement, before and after the backfill.
    var fingerprintSQL: String { finish.isEmpty ? sql : sql + "\n" + finish }
}

/// Tenancy policy for one org-owned table: the API sees only the org set for the current
/// transaction (`NULLIF` makes "unset" mean "no rows", not an error); the ops role sees all.
func tenancy(_ table: String, column: String = "org_id") -> String {
    let org = "NULLIF(current_setting('\(DatabaseRole.orgSetting)', true), '')::uuid"
    return """
        ALTER TABLE \(table) ENABLE ROW LEVEL SECURITY;
        ALTER TABLE \(table) FORCE ROW LEVEL SECURITY;
        CREATE POLICY \(table)_tenant ON \(table) TO \(DatabaseRole.api)
          USING (\(column) = \(org)) WITH CHECK (\(column) = \(org));
        CREATE POLICY \(table)_ops ON \(table) TO \(DatabaseRole.ops) USING (true) WITH CHECK (true);
        """
}

public enum Migrations {
    public static let all: [Migration] = [initial, placements, cluster, hardening, counters, coalescedCreates, cheaperCreates]

    public static var latestVersion: Int { all.last?.version ?? 0 }

    static let initial = Migration(
        version: 1,
        name: "initial",
        sql: """
            CREATE EXTENSION IF NOT EXISTS pg_trgm;

            -- Orgs: the tenants. A row is visible to the API only while it acts for that org.
            CREATE TABLE orgs (
              id         uuid PRIMARY KEY,
              name       text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 128),
              created_at timestamptz NOT NULL
            );

            -- HS256 signing keys, named by kid. Not org-owned: a key signs tokens of every org.
            CREATE TABLE signing_keys (
              kid        text PRIMARY KEY,
              secret     bytea NOT NULL CHECK (length(secret) >= 32),
              created_at timestamptz NOT NULL,
              retired_at timestamptz
            );

            CREATE TABLE api_tokens (
              org_id     uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
              id         uuid NOT NULL,
              name       text,
              kid        text NOT NULL REFERENCES signing_keys (kid),
              created_at timestamptz NOT NULL,
              expires_at timestamptz NOT NULL,
              revoked_at timestamptz,
              PRIMARY KEY (org_id, id)
            );

            -- Revoked token IDs. Holds no tenant data (a jti is a random ID), and must be checked
            -- before the request's org is trusted, so it is a global table the API can only read.
            CREATE TABLE token_denylist (
              jti        uuid PRIMARY KEY,
              revoked_at timestamptz NOT NULL,
              expires_at timestamptz NOT NULL
            );
            CREATE INDEX token_denylist_expires ON token_denylist (expires_at);

            CREATE TABLE pins (
              org_id     uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
              id         uuid NOT NULL,
              cid        text NOT NULL,
              name       text,
              origins    text[] NOT NULL DEFAULT '{}',
              meta       jsonb NOT NULL DEFAULT '{}',
              status     text NOT NULL CHECK (status IN ('queued', 'pinning', 'pinned', 'failed')),
              info       jsonb NOT NULL DEFAULT '{}',
              created_at timestamptz NOT NULL,
              updated_at timestamptz NOT NULL,
              PRIMARY KEY (org_id, id)
            );
            -- Keyset pagination: created is unique per org, so (org, created) orders a page and
            -- `created < before` continues it. Scanned backwards for newest-first.
            CREATE UNIQUE INDEX pins_keyset ON pins (org_id, created_at);
            CREATE INDEX pins_status ON pins (org_id, status, created_at);
            CREATE INDEX pins_cid ON pins (org_id, cid);
            CREATE INDEX pins_name ON pins (org_id, name, created_at);
            CREATE INDEX pins_name_lower ON pins (org_id, lower(name));
            -- GIN indexes do not lead with org_id: a (org_id, ...) GIN index makes the planner use
            -- it as a poor org filter. Under row-level security these two serve the API only when
            -- LIKE/ILIKE and jsonb containment are LEAKPROOF (see Bootstrap.leakproofStatements).
            CREATE INDEX pins_name_trgm ON pins USING gin (name gin_trgm_ops);
            CREATE INDEX pins_meta ON pins USING gin (meta jsonb_path_ops);

            -- Where each pin is (to be) held: one row per pin and node.
            CREATE TABLE placements (
              org_id     uuid NOT NULL,
              pin_id     uuid NOT NULL,
              node_id    uuid NOT NULL,
              status     text NOT NULL CHECK (status IN ('queued', 'pinning', 'pinned', 'failed')),
              attempts   integer NOT NULL DEFAULT 0,
              updated_at timestamptz NOT NULL,
              PRIMARY KEY (org_id, pin_id, node_id),
              FOREIGN KEY (org_id, pin_id) REFERENCES pins (org_id, id) ON DELETE CASCADE
            );
            CREATE INDEX placements_node ON placements (node_id, status);

            -- Cluster members. Not org-owned.
            CREATE TABLE nodes (
              id           uuid PRIMARY KEY,
              name         text NOT NULL,
              state        text NOT NULL CHECK (state IN ('active', 'drained')),
              created_at   timestamptz NOT NULL,
              last_seen_at timestamptz
            );

            CREATE TABLE audit_log (
              org_id  uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
              id      uuid NOT NULL,
              at      timestamptz NOT NULL,
              actor   text NOT NULL,
              action  text NOT NULL,
              subject text,
              detail  jsonb NOT NULL DEFAULT '{}',
              fence   bigint,
              PRIMARY KEY (org_id, id)
            );
            CREATE INDEX audit_log_at ON audit_log (org_id, at);

            \(tenancy("orgs", column: "id"))
            \(tenancy("api_tokens"))
            \(tenancy("pins"))
            \(tenancy("placements"))
            \(tenancy("audit_log"))

            -- One round trip for the hot write path: set the org for this statement's implicit
            -- transaction, then insert. SECURITY INVOKER, so the caller's policies still apply.
            -- created is strictly increasing per org in whole milliseconds: at least `at`, and a
            -- millisecond after the newest pin. Millisecond steps make every client's `before`
            -- exact: JavaScript clients (and the compliance suite) send milliseconds, Go sends
            -- nanoseconds, and neither can then skip a pin created in the same millisecond.
            CREATE FUNCTION anchorage_create_pin(
              p_org uuid, p_id uuid, p_cid text, p_name text, p_origins text[], p_meta jsonb,
              p_at timestamptz
            ) RETURNS timestamptz LANGUAGE plpgsql SECURITY INVOKER AS $fn$
            DECLARE c timestamptz;
            BEGIN
              PERFORM set_config('\(DatabaseRole.orgSetting)', p_org::text, true);
              SELECT GREATEST(date_trunc('milliseconds', p_at), max(created_at) + interval '1 millisecond') INTO c
                FROM pins WHERE org_id = p_org;
              c := COALESCE(c, date_trunc('milliseconds', p_at));
              INSERT INTO pins (org_id, id, cid, name, origins, meta, status, info, created_at, updated_at)
                VALUES (p_org, p_id, p_cid, p_name, p_origins, p_meta, 'queued', '{}', c, p_at);
              RETURN c;
            END $fn$;

            REVOKE ALL ON ALL TABLES IN SCHEMA public FROM PUBLIC;
            GRANT SELECT ON orgs, signing_keys, token_denylist TO \(DatabaseRole.api);
            GRANT SELECT, INSERT, UPDATE, DELETE ON pins, placements TO \(DatabaseRole.api);
            GRANT SELECT, INSERT ON audit_log TO \(DatabaseRole.api);
            GRANT SELECT, INSERT, UPDATE, DELETE ON orgs, signing_keys, api_tokens, token_denylist,
              pins, placements, nodes, audit_log TO \(DatabaseRole.ops);
            GRANT EXECUTE ON FUNCTION anchorage_create_pin(uuid, uuid, text, text, text[], jsonb, timestamptz)
              TO \(DatabaseRole.api), \(DatabaseRole.ops);
            """
    )

    static let placements = Migration(
        version: 2,
        name: "placements",
        sql: """
            -- What the pin worker needs on each placement: the CID (for the per-node refcount
            -- across orgs), when it may be tried next, a claim lease, and the last error.
            ALTER TABLE placements
              ADD COLUMN cid text NOT NULL DEFAULT '',
              ADD COLUMN created_at timestamptz,
              ADD COLUMN next_attempt_at timestamptz,
              ADD COLUMN lease_until timestamptz,
              ADD COLUMN last_error text;
            CREATE INDEX placements_claim ON placements (node_id, status, next_attempt_at);
            CREATE INDEX placements_node_cid ON placements (node_id, cid);

            -- CIDs whose placement on a node went away: the worker unpins each from Kubo once no
            -- placement of any org still needs it there. Holds no tenant data (no org column).
            CREATE TABLE kubo_unpins (
              node_id      uuid NOT NULL,
              cid          text NOT NULL,
              requested_at timestamptz NOT NULL,
              PRIMARY KEY (node_id, cid)
            );

            -- Like anchorage_create_pin, and also places the pin on p_nodes in the same statement;
            -- a new placement is due at once (-infinity: created may run ahead of the clock).
            CREATE FUNCTION anchorage_create_placed_pin(
              p_org uuid, p_id uuid, p_cid text, p_name text, p_origins text[], p_meta jsonb,
              p_at timestamptz, p_nodes uuid[]
            ) RETURNS timestamptz LANGUAGE plpgsql SECURITY INVOKER AS $fn$
            DECLARE c timestamptz;
            BEGIN
              c := anchorage_create_pin(p_org, p_id, p_cid, p_name, p_origins, p_meta, p_at);
              INSERT INTO placements (org_id, pin_id, node_id, status, attempts, updated_at, cid, created_at, next_attempt_at)
                SELECT p_org, p_id, n, 'queued', 0, p_at, p_cid, c, '-infinity' FROM unnest(p_nodes) AS n;
              RETURN c;
            END $fn$;

            GRANT SELECT, INSERT ON kubo_unpins TO \(DatabaseRole.api);
            GRANT SELECT, INSERT, UPDATE, DELETE ON kubo_unpins TO \(DatabaseRole.ops);
            GRANT EXECUTE ON FUNCTION anchorage_create_placed_pin(uuid, uuid, text, text, text[], jsonb, timestamptz, uuid[])
              TO \(DatabaseRole.api), \(DatabaseRole.ops);
            """
    )

    static let cluster = Migration(
        version: 3,
        name: "cluster",
        sql: """
            -- Drain is two steps: an operator sets draining; the node records drained once its
            -- consumer is cancelled. Uncordon sets active again.
            ALTER TABLE nodes DROP CONSTRAINT nodes_state_check;
            ALTER TABLE nodes ADD CONSTRAINT nodes_state_check CHECK (state IN ('active', 'draining', 'drained'));
            ALTER TABLE nodes
              ADD COLUMN drain_requested_at timestamptz,
              ADD COLUMN version text NOT NULL DEFAULT '';

            -- Dispatch bookkeeping: each (re-)dispatch of a placement gets a new generation (and
            -- so a new Nats-Msg-Id); `replaces` marks the new placement of a move, whose old
            -- placement on that node is released once the new one is pinned (make-before-break).
            ALTER TABLE placements
              ADD COLUMN generation integer NOT NULL DEFAULT 0,
              ADD COLUMN dispatched_at timestamptz,
              ADD COLUMN replaces uuid;
            CREATE INDEX placements_pin ON placements (pin_id, node_id);
            CREATE INDEX placements_leased ON placements (lease_until) WHERE status = 'pinning';
            CREATE INDEX placements_waiting ON placements (next_attempt_at) WHERE status = 'queued';

            -- Fencing. One row holds the newest term's token: a new term raises it under the row
            -- lock, and every leader-only write reads it FOR SHARE in its own transaction, so a
            -- write with an older token is refused and cannot interleave with a takeover.
            CREATE TABLE cluster_fence (
              id    integer PRIMARY KEY CHECK (id = 1),
              fence bigint NOT NULL
            );
            INSERT INTO cluster_fence VALUES (1, 0);
            CREATE TABLE leader_terms (
              fence      bigint PRIMARY KEY,
              node_id    uuid NOT NULL,
              started_at timestamptz NOT NULL
            );

            GRANT SELECT, INSERT, UPDATE, DELETE ON cluster_fence, leader_terms TO \(DatabaseRole.ops);
            """
    )

    /// Hardening after the security review (docs/security.md): canonical CID keys, unpins
    /// requested by the database itself, the API role narrowed to what it uses, a fixed
    /// `search_path` on every function, and no temporary objects for PUBLIC.
    static let hardening = Migration(
        version: 4,
        name: "hardening",
        sql: """
            -- Kubo identifies a pin by its binary CID, so anchorage must too: `cid_key` is the CID
            -- as Kubo prints it (CIDv1 in lowercase base32; CIDv0 unchanged), `cid` stays what the
            -- client sent (the API echoes it). Placements and unpins hold the key only. Rows in
            -- another spelling are rewritten by the backfill, in Swift (it decodes the CID).
            ALTER TABLE pins ADD COLUMN cid_key text;
            ALTER TABLE pins NO FORCE ROW LEVEL SECURITY;
            ALTER TABLE placements NO FORCE ROW LEVEL SECURITY;
            UPDATE pins SET cid_key = cid WHERE cid ~ '^(Qm|b)';

            -- Signing secrets sealed under a key outside the database (auth.secretsKeyFile):
            -- the key's fingerprint, or NULL for a secret stored in the clear.
            ALTER TABLE signing_keys ADD COLUMN sealed_with text;
            """,
        backfill: { conn, logger in try await CIDKeyBackfill.run(conn, logger: logger) },
        finish: """
            ALTER TABLE pins FORCE ROW LEVEL SECURITY;
            ALTER TABLE placements FORCE ROW LEVEL SECURITY;
            ALTER TABLE pins ALTER COLUMN cid_key SET NOT NULL;

            -- The name and meta filters' indexes are keyed by org. The trigram and jsonb GIN
            -- indexes were not (an (org_id, …) GIN index only filters by org after reading every
            -- org's matches), so org A's filter read org B's matching entries first: its latency
            -- told A about B's data. Each key is now a hash of (org, trigram) or (org, key,
            -- value), so a filter reads only its own org's posting lists; the exact LIKE/ILIKE
            -- and @> conditions still decide (hash collisions cost a recheck, never a result).
            -- Trigrams: every 3 characters within a run of letters and digits, lowercased, no
            -- padding, so a name containing a pattern contains every trigram of the pattern.
            CREATE FUNCTION anchorage_trigram_keys(p_org uuid, p_text text) RETURNS bigint[]
              LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, public AS $fn$
              SELECT coalesce(array_agg(DISTINCT hashtextextended(p_org::text || substr(w, i, 3), 0)), '{}')
              FROM regexp_split_to_table(lower(coalesce(p_text, '')), '[^[:alnum:]]+') AS w,
                   generate_series(1, length(w) - 2) AS i
            $fn$;
            CREATE FUNCTION anchorage_meta_keys(p_org uuid, p_meta jsonb) RETURNS bigint[]
              LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, public AS $fn$
              SELECT coalesce(array_agg(hashtextextended(p_org::text || chr(31) || key || chr(31) || value, 0)), '{}')
              FROM jsonb_each_text(coalesce(p_meta, '{}'))
            $fn$;
            ALTER TABLE pins
              ADD COLUMN name_keys bigint[] GENERATED ALWAYS AS (anchorage_trigram_keys(org_id, name)) STORED,
              ADD COLUMN meta_keys bigint[] GENERATED ALWAYS AS (anchorage_meta_keys(org_id, meta)) STORED;
            DROP INDEX pins_name_trgm;
            DROP INDEX pins_meta;
            -- fastupdate off: GIN's pending list holds every org's recent entries and each scan
            -- reads all of it, which would again make A's filter pay for B's inserts.
            CREATE INDEX pins_name_keys ON pins USING gin (name_keys) WITH (fastupdate = off);
            CREATE INDEX pins_meta_keys ON pins USING gin (meta_keys) WITH (fastupdate = off);
            DROP INDEX pins_cid;
            CREATE INDEX pins_cid_key ON pins (org_id, cid_key);

            DROP FUNCTION anchorage_create_placed_pin(uuid, uuid, text, text, text[], jsonb, timestamptz, uuid[]);
            DROP FUNCTION anchorage_create_pin(uuid, uuid, text, text, text[], jsonb, timestamptz);

            -- As before (SECURITY INVOKER: the caller's policies apply), plus the CID key, and one
            -- writer per org at a time: `created` is a millisecond after the org's newest pin, so
            -- concurrent creates in one org would otherwise collide on it and retry (more than
            -- about nine at once ran out of retries). The lock lasts until the transaction ends.
            -- p_max_pins > 0 is the org's quota (limits.maxPinsPerOrg), checked under the same lock,
            -- so concurrent creates cannot overshoot it; past it, SQLSTATE \(Self.quotaSQLState).
            CREATE FUNCTION anchorage_create_pin(
              p_org uuid, p_id uuid, p_cid text, p_cid_key text, p_name text, p_origins text[], p_meta jsonb,
              p_at timestamptz, p_max_pins bigint
            ) RETURNS timestamptz LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog, public AS $fn$
            DECLARE c timestamptz;
            BEGIN
              PERFORM set_config('\(DatabaseRole.orgSetting)', p_org::text, true);
              PERFORM pg_advisory_xact_lock(\(Self.createLockSpace), hashtext(p_org::text));
              IF p_max_pins > 0 AND (SELECT count(*) FROM pins WHERE org_id = p_org) >= p_max_pins THEN
                RAISE EXCEPTION 'the org holds its quota of % pins', p_max_pins USING ERRCODE = '\(Self.quotaSQLState)';
              END IF;
              SELECT GREATEST(date_trunc('milliseconds', p_at), max(created_at) + interval '1 millisecond') INTO c
                FROM pins WHERE org_id = p_org;
              c := COALESCE(c, date_trunc('milliseconds', p_at));
              INSERT INTO pins (org_id, id, cid, cid_key, name, origins, meta, status, info, created_at, updated_at)
                VALUES (p_org, p_id, p_cid, p_cid_key, p_name, p_origins, p_meta, 'queued', '{}', c, p_at);
              RETURN c;
            END $fn$;

            CREATE FUNCTION anchorage_create_placed_pin(
              p_org uuid, p_id uuid, p_cid text, p_cid_key text, p_name text, p_origins text[], p_meta jsonb,
              p_at timestamptz, p_nodes uuid[], p_max_pins bigint
            ) RETURNS timestamptz LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog, public AS $fn$
            DECLARE c timestamptz;
            BEGIN
              c := anchorage_create_pin(p_org, p_id, p_cid, p_cid_key, p_name, p_origins, p_meta, p_at, p_max_pins);
              INSERT INTO placements (org_id, pin_id, node_id, status, attempts, updated_at, cid, created_at, next_attempt_at)
                SELECT p_org, p_id, n, 'queued', 0, p_at, p_cid_key, c, '-infinity' FROM unnest(p_nodes) AS n;
              RETURN c;
            END $fn$;

            -- Every deleted placement leaves its (node, CID) for that node's worker to unpin once no
            -- placement of any org needs it there. A trigger, so that the API role can release its
            -- own org's placements (row-level security still applies to the DELETE) without any
            -- privilege on the cross-org unpin queue. `requested_at` is the placement's last change
            -- (it only orders the queue; the database's clock would break simulated time).
            CREATE FUNCTION anchorage_request_unpins() RETURNS trigger
              LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $fn$
            BEGIN
              INSERT INTO kubo_unpins (node_id, cid, requested_at)
                SELECT node_id, cid, max(updated_at) FROM gone GROUP BY node_id, cid
                ON CONFLICT (node_id, cid) DO NOTHING;
              RETURN NULL;
            END $fn$;
            REVOKE ALL ON FUNCTION anchorage_request_unpins() FROM PUBLIC;
            CREATE TRIGGER placements_request_unpins AFTER DELETE ON placements
              REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION anchorage_request_unpins();

            -- No temporary objects (a place to shadow names) and nothing new in public for PUBLIC.
            DO $do$ BEGIN
              EXECUTE format('REVOKE TEMPORARY ON DATABASE %I FROM PUBLIC', current_database());
            END $do$;
            REVOKE CREATE ON SCHEMA public FROM PUBLIC;
            REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA public FROM PUBLIC;

            -- The API role gets exactly what the API's statements use (PostgresPinStore and
            -- PostgresTokenLookup); a test compares every table and column with this list.
            REVOKE ALL ON orgs, signing_keys, api_tokens, token_denylist, pins, placements, nodes, audit_log,
              kubo_unpins, cluster_fence, leader_terms FROM \(DatabaseRole.api);
            GRANT SELECT (kid, secret, sealed_with, created_at, retired_at) ON signing_keys TO \(DatabaseRole.api);
            GRANT SELECT (jti) ON token_denylist TO \(DatabaseRole.api);
            GRANT SELECT, DELETE ON pins TO \(DatabaseRole.api);
            GRANT INSERT (org_id, id, cid, cid_key, name, origins, meta, status, info, created_at, updated_at)
              ON pins TO \(DatabaseRole.api);
            GRANT SELECT (org_id, pin_id), DELETE ON placements TO \(DatabaseRole.api);
            GRANT INSERT (org_id, pin_id, node_id, status, attempts, updated_at, cid, created_at, next_attempt_at)
              ON placements TO \(DatabaseRole.api);
            GRANT EXECUTE ON FUNCTION anchorage_trigram_keys(uuid, text), anchorage_meta_keys(uuid, jsonb)
              TO \(DatabaseRole.api), \(DatabaseRole.ops);
            GRANT EXECUTE ON FUNCTION anchorage_create_pin(uuid, uuid, text, text, text, text[], jsonb, timestamptz, bigint),
              anchorage_create_placed_pin(uuid, uuid, text, text, text, text[], jsonb, timestamptz, uuid[], bigint)
              TO \(DatabaseRole.api), \(DatabaseRole.ops);
            """
    )

    /// The advisory-lock space (first key) of `anchorage_create_pin`'s per-org lock.
    static let counters = Migration(
        version: 5,
        name: "counters",
        sql: """
            -- Pins by status per org, kept exact by the database in the same transaction as every
            -- pin write (statement-level triggers over the rows the statement changed), so an
            -- unfiltered or status-only listing reads its `count` instead of counting the org's
            -- pins. Concurrent writers of one org serialize on the counter rows until commit; the
            -- rows are locked in (org, status) order within a statement.
            CREATE TABLE org_pin_counts (
              org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
              status text NOT NULL,
              n bigint NOT NULL,
              PRIMARY KEY (org_id, status)
            );
            \(tenancy("org_pin_counts"))
            -- The triggers write as the owner (SECURITY DEFINER): neither the API nor the ops
            -- role can change a counter, both may read their rows.
            CREATE POLICY org_pin_counts_owner ON org_pin_counts TO \(DatabaseRole.owner) USING (true) WITH CHECK (true);
            GRANT SELECT ON org_pin_counts TO \(DatabaseRole.api), \(DatabaseRole.ops);

            CREATE FUNCTION anchorage_count_pins() RETURNS trigger
              LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $fn$
            BEGIN
              IF TG_OP = 'INSERT' THEN
                INSERT INTO org_pin_counts (org_id, status, n)
                  SELECT org_id, status, count(*) FROM added GROUP BY org_id, status ORDER BY org_id, status
                  ON CONFLICT (org_id, status) DO UPDATE SET n = org_pin_counts.n + excluded.n;
              ELSIF TG_OP = 'DELETE' THEN
                INSERT INTO org_pin_counts (org_id, status, n)
                  SELECT org_id, status, -count(*) FROM gone GROUP BY org_id, status ORDER BY org_id, status
                  ON CONFLICT (org_id, status) DO UPDATE SET n = org_pin_counts.n + excluded.n;
              ELSE
                INSERT INTO org_pin_counts (org_id, status, n)
                  SELECT org_id, status, sum(d) FROM (
                    SELECT org_id, status, -1 AS d FROM gone
                    UNION ALL SELECT org_id, status, 1 AS d FROM added
                  ) AS changes
                  GROUP BY org_id, status HAVING sum(d) <> 0 ORDER BY org_id, status
                  ON CONFLICT (org_id, status) DO UPDATE SET n = org_pin_counts.n + excluded.n;
              END IF;
              RETURN NULL;
            END $fn$;
            REVOKE ALL ON FUNCTION anchorage_count_pins() FROM PUBLIC;
            CREATE TRIGGER pins_count_insert AFTER INSERT ON pins
              REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION anchorage_count_pins();
            CREATE TRIGGER pins_count_update AFTER UPDATE ON pins
              REFERENCING OLD TABLE AS gone NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION anchorage_count_pins();
            CREATE TRIGGER pins_count_delete AFTER DELETE ON pins
              REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION anchorage_count_pins();

            -- The quota check reads the counters too (under the org's create lock, as before)
            -- instead of counting the org's pins on every create.
            CREATE OR REPLACE FUNCTION anchorage_create_pin(
              p_org uuid, p_id uuid, p_cid text, p_cid_key text, p_name text, p_origins text[], p_meta jsonb,
              p_at timestamptz, p_max_pins bigint
            ) RETURNS timestamptz LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog, public AS $fn$
            DECLARE c timestamptz;
            BEGIN
              PERFORM set_config('\(DatabaseRole.orgSetting)', p_org::text, true);
              PERFORM pg_advisory_xact_lock(\(Self.createLockSpace), hashtext(p_org::text));
              IF p_max_pins > 0 AND (SELECT coalesce(sum(n), 0) FROM org_pin_counts WHERE org_id = p_org) >= p_max_pins THEN
                RAISE EXCEPTION 'the org holds its quota of % pins', p_max_pins USING ERRCODE = '\(Self.quotaSQLState)';
              END IF;
              SELECT GREATEST(date_trunc('milliseconds', p_at), max(created_at) + interval '1 millisecond') INTO c
                FROM pins WHERE org_id = p_org;
              c := COALESCE(c, date_trunc('milliseconds', p_at));
              INSERT INTO pins (org_id, id, cid, cid_key, name, origins, meta, status, info, created_at, updated_at)
                VALUES (p_org, p_id, p_cid, p_cid_key, p_name, p_origins, p_meta, 'queued', '{}', c, p_at);
              RETURN c;
            END $fn$;

            -- The pins stored so far. No write can slip between this count and the triggers:
            -- creating them locked pins against writers until the migration commits. The owner
            -- reads every org's pins with row-level security unforced for the moment.
            ALTER TABLE pins NO FORCE ROW LEVEL SECURITY;
            INSERT INTO org_pin_counts (org_id, status, n) SELECT org_id, status, count(*) FROM pins GROUP BY org_id, status;
            ALTER TABLE pins FORCE ROW LEVEL SECURITY;
            """
    )

    /// One statement creating many pins, for `CreateCoalescer`: a batch of concurrent
    /// `POST /pins` from any orgs, written in one round trip and one commit, each row answered
    /// on its own.
    static let coalescedCreates = Migration(
        version: 6,
        name: "coalesced_creates",
        sql: """
            -- Row i of the batch is (p_orgs[i], p_ids[i], p_cids[i], …; its name is p_names[i] when
            -- p_named[i], else NULL: an array element cannot be bound as NULL); its origins are the
            -- p_origins[k] with p_origin_rows[k] = i and its placements the p_place_nodes[k] with
            -- p_place_rows[k] = i (PostgreSQL arrays are rectangular, so per-row lists are flat).
            -- SECURITY INVOKER, as anchorage_create_pin: each org's rows are inserted by their own
            -- statement while anchorage.org_id names that org, so forced row-level security checks
            -- every row against its own org, and a row of another org in that statement would fail
            -- it. Orgs are taken in uuid order (their create locks, then their counter rows), so
            -- two batches cannot deadlock. Under an org's lock `created` runs on from the org's
            -- newest pin a millisecond at a time, as one create at a time does; quota overflow
            -- fails only the rows past it. A statement that fails (a bad row) is retried row by
            -- row, each in its own subtransaction, so that only the bad row fails; a cancelled
            -- statement (statement_timeout) still fails the batch. Returns one row per input row:
            -- its index, its `created`, or the SQLSTATE and message that refused it.
            CREATE FUNCTION anchorage_create_placed_pins(
              p_orgs uuid[], p_ids uuid[], p_cids text[], p_cid_keys text[], p_names text[], p_named bool[], p_metas jsonb[],
              p_ats timestamptz[], p_origin_rows int[], p_origins text[], p_place_rows int[], p_place_nodes uuid[],
              p_max_pins bigint
            ) RETURNS TABLE (i int, created timestamptz, state text, message text)
              LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog, public AS $fn$
            DECLARE
              g uuid;
              v_newest timestamptz;
              v_room bigint;
              k int;
              v_rows int[];
              v_at timestamptz[];
              v_refused int[];
            BEGIN
              p_names := ARRAY(SELECT CASE WHEN p_named[n] THEN p_names[n] END FROM generate_subscripts(p_names, 1) AS n ORDER BY n);
              FOR g IN SELECT DISTINCT o FROM unnest(p_orgs) AS o ORDER BY o LOOP
                PERFORM set_config('\(DatabaseRole.orgSetting)', g::text, true);
                PERFORM pg_advisory_xact_lock(\(Self.createLockSpace), hashtext(g::text));
                SELECT array_agg(n ORDER BY n) INTO v_rows FROM generate_subscripts(p_orgs, 1) AS n WHERE p_orgs[n] = g;
                v_refused := '{}';
                IF p_max_pins > 0 THEN
                  v_room := p_max_pins - (SELECT coalesce(sum(c.n), 0) FROM org_pin_counts AS c WHERE c.org_id = g);
                  IF v_room < cardinality(v_rows) THEN
                    v_refused := v_rows[greatest(v_room, 0) + 1:];
                    v_rows := v_rows[1:greatest(v_room, 0)];
                  END IF;
                END IF;
                SELECT max(p.created_at) INTO v_newest FROM pins AS p WHERE p.org_id = g;
                v_at := '{}';
                FOR k IN 1..coalesce(cardinality(v_rows), 0) LOOP
                  v_newest := GREATEST(date_trunc('milliseconds', p_ats[v_rows[k]]), v_newest + interval '1 millisecond');
                  v_at := v_at || v_newest;
                END LOOP;
                BEGIN
                  INSERT INTO pins (org_id, id, cid, cid_key, name, origins, meta, status, info, created_at, updated_at)
                    SELECT g, p_ids[r.n], p_cids[r.n], p_cid_keys[r.n], p_names[r.n],
                      ARRAY(SELECT p_origins[o] FROM generate_subscripts(p_origin_rows, 1) AS o WHERE p_origin_rows[o] = r.n ORDER BY o),
                      p_metas[r.n], 'queued', '{}', r.c, p_ats[r.n]
                    FROM unnest(v_rows, v_at) AS r(n, c);
                  INSERT INTO placements (org_id, pin_id, node_id, status, attempts, updated_at, cid, created_at, next_attempt_at)
                    SELECT g, p_ids[r.n], p_place_nodes[pl], 'queued', 0, p_ats[r.n], p_cid_keys[r.n], r.c, '-infinity'
                    FROM unnest(v_rows, v_at) AS r(n, c)
                    JOIN generate_subscripts(p_place_rows, 1) AS pl ON p_place_rows[pl] = r.n;
                  RETURN QUERY SELECT r.n, r.c, NULL::text, NULL::text FROM unnest(v_rows, v_at) AS r(n, c);
                EXCEPTION WHEN others THEN
                  FOR k IN 1..cardinality(v_rows) LOOP
                    BEGIN
                      INSERT INTO pins (org_id, id, cid, cid_key, name, origins, meta, status, info, created_at, updated_at)
                        VALUES (g, p_ids[v_rows[k]], p_cids[v_rows[k]], p_cid_keys[v_rows[k]], p_names[v_rows[k]],
                          ARRAY(SELECT p_origins[o] FROM generate_subscripts(p_origin_rows, 1) AS o WHERE p_origin_rows[o] = v_rows[k] ORDER BY o),
                          p_metas[v_rows[k]], 'queued', '{}', v_at[k], p_ats[v_rows[k]]);
                      INSERT INTO placements (org_id, pin_id, node_id, status, attempts, updated_at, cid, created_at, next_attempt_at)
                        SELECT g, p_ids[v_rows[k]], p_place_nodes[pl], 'queued', 0, p_ats[v_rows[k]], p_cid_keys[v_rows[k]], v_at[k], '-infinity'
                        FROM generate_subscripts(p_place_rows, 1) AS pl WHERE p_place_rows[pl] = v_rows[k];
                      i := v_rows[k]; created := v_at[k]; state := NULL; message := NULL;
                    EXCEPTION WHEN others THEN
                      i := v_rows[k]; created := NULL; state := SQLSTATE; message := SQLERRM;
                    END;
                    RETURN NEXT;
                  END LOOP;
                END;
                RETURN QUERY SELECT r, NULL::timestamptz, '\(Self.quotaSQLState)'::text,
                  format('the org holds its quota of %s pins', p_max_pins) FROM unnest(v_refused) AS r;
              END LOOP;
            END $fn$;
            REVOKE ALL ON FUNCTION anchorage_create_placed_pins(
              uuid[], uuid[], text[], text[], text[], bool[], jsonb[], timestamptz[], int[], text[], int[], uuid[], bigint
            ) FROM PUBLIC;
            GRANT EXECUTE ON FUNCTION anchorage_create_placed_pins(
              uuid[], uuid[], text[], text[], text[], bool[], jsonb[], timestamptz[], int[], text[], int[], uuid[], bigint
            ) TO \(DatabaseRole.api), \(DatabaseRole.ops);
            """
    )

    /// What a create costs PostgreSQL, measured with pgbench (docs/performance.md).
    static let cheaperCreates = Migration(
        version: 7,
        name: "cheaper_creates",
        sql: """
            -- The filter keys (generated columns, computed on every pin insert) were SQL
            -- functions with a FROM clause: never inlined, so every statement that inserted pins
            -- parsed and planned both of them again. In PL/pgSQL they are compiled once per
            -- session and their one query's plan is kept. Same keys: the trigram keys as a set
            -- (in first-seen order instead of sorted, which `@>` and GIN do not see), the meta
            -- keys in the same order. Rows stored before keep their keys.
            CREATE OR REPLACE FUNCTION anchorage_trigram_keys(p_org uuid, p_text text) RETURNS bigint[]
              LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, public AS $fn$
            DECLARE
              w text;
              o text := p_org::text;
              k bigint[] := '{}';
              h bigint;
            BEGIN
              FOREACH w IN ARRAY regexp_split_to_array(lower(coalesce(p_text, '')), '[^[:alnum:]]+') LOOP
                FOR n IN 1..length(w) - 2 LOOP
                  h := hashtextextended(o || substr(w, n, 3), 0);
                  IF NOT h = ANY (k) THEN
                    k := k || h;
                  END IF;
                END LOOP;
              END LOOP;
              RETURN k;
            END $fn$;
            CREATE OR REPLACE FUNCTION anchorage_meta_keys(p_org uuid, p_meta jsonb) RETURNS bigint[]
              LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, public AS $fn$
            DECLARE
              e record;
              o text := p_org::text || chr(31);
              k bigint[] := '{}';
            BEGIN
              FOR e IN SELECT key, value FROM jsonb_each_text(coalesce(p_meta, '{}')) LOOP
                k := k || hashtextextended(o || e.key || chr(31) || e.value, 0);
              END LOOP;
              RETURN k;
            END $fn$;

            -- The batch function again, cheaper, with the same answers:
            -- * its statements are the same shape on every call (arrays in, one org at a time),
            --   so a generic plan is as good as a custom one, and PL/pgSQL planned each
            --   statement again on every call;
            -- * one subtransaction per batch instead of one per org, and two statements fewer
            --   per org (orgs and their rows in one query; tenancy setting and lock in one);
            -- * if any row fails, nothing of the batch stays written and every row is tried
            --   again on its own (each in its own subtransaction), so only the bad row fails.
            --   Answers are collected and returned at the end: rows returned from inside the
            --   rolled-back block would otherwise be answered twice.
            CREATE OR REPLACE FUNCTION anchorage_create_placed_pins(
              p_orgs uuid[], p_ids uuid[], p_cids text[], p_cid_keys text[], p_names text[], p_named bool[], p_metas jsonb[],
              p_ats timestamptz[], p_origin_rows int[], p_origins text[], p_place_rows int[], p_place_nodes uuid[],
              p_max_pins bigint
            ) RETURNS TABLE (i int, created timestamptz, state text, message text)
              LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog, public SET plan_cache_mode = force_generic_plan
            AS $fn$
            DECLARE
              g uuid;
              v_rows int[];
              v_newest timestamptz;
              v_room bigint;
              v_at timestamptz[];
              k int;
              o_rows int[] := '{}';
              o_at timestamptz[] := '{}';
              o_refused int[] := '{}';
              f_rows int[] := '{}';
              f_states text[] := '{}';
              f_messages text[] := '{}';
            BEGIN
              p_names := ARRAY(SELECT CASE WHEN p_named[n] THEN p_names[n] END FROM generate_subscripts(p_names, 1) AS n ORDER BY n);
              BEGIN
                FOR g, v_rows IN
                  SELECT o, array_agg(n::int ORDER BY n) FROM unnest(p_orgs) WITH ORDINALITY AS t(o, n) GROUP BY o ORDER BY o
                LOOP
                  PERFORM set_config('\(DatabaseRole.orgSetting)', g::text, true), pg_advisory_xact_lock(\(Self.createLockSpace), hashtext(g::text));
                  IF p_max_pins > 0 THEN
                    v_room := p_max_pins - (SELECT coalesce(sum(c.n), 0) FROM org_pin_counts AS c WHERE c.org_id = g);
                    IF v_room < cardinality(v_rows) THEN
                      o_refused := o_refused || v_rows[greatest(v_room, 0) + 1:];
                      v_rows := v_rows[1:greatest(v_room, 0)];
                    END IF;
                  END IF;
                  SELECT max(p.created_at) INTO v_newest FROM pins AS p WHERE p.org_id = g;
                  v_at := '{}';
                  FOR k IN 1..coalesce(cardinality(v_rows), 0) LOOP
                    v_newest := GREATEST(date_trunc('milliseconds', p_ats[v_rows[k]]), v_newest + interval '1 millisecond');
                    v_at := v_at || v_newest;
                  END LOOP;
                  INSERT INTO pins (org_id, id, cid, cid_key, name, origins, meta, status, info, created_at, updated_at)
                    SELECT g, p_ids[r.n], p_cids[r.n], p_cid_keys[r.n], p_names[r.n],
                      ARRAY(SELECT p_origins[o] FROM generate_subscripts(p_origin_rows, 1) AS o WHERE p_origin_rows[o] = r.n ORDER BY o),
                      p_metas[r.n], 'queued', '{}', r.c, p_ats[r.n]
                    FROM unnest(v_rows, v_at) AS r(n, c);
                  INSERT INTO placements (org_id, pin_id, node_id, status, attempts, updated_at, cid, created_at, next_attempt_at)
                    SELECT g, p_ids[r.n], p_place_nodes[pl], 'queued', 0, p_ats[r.n], p_cid_keys[r.n], r.c, '-infinity'
                    FROM unnest(v_rows, v_at) AS r(n, c)
                    JOIN generate_subscripts(p_place_rows, 1) AS pl ON p_place_rows[pl] = r.n;
                  o_rows := o_rows || v_rows;
                  o_at := o_at || v_at;
                END LOOP;
              EXCEPTION WHEN others THEN
                o_rows := '{}';
                o_at := '{}';
                o_refused := '{}';
                FOR g, v_rows IN
                  SELECT o, array_agg(n::int ORDER BY n) FROM unnest(p_orgs) WITH ORDINALITY AS t(o, n) GROUP BY o ORDER BY o
                LOOP
                  PERFORM set_config('\(DatabaseRole.orgSetting)', g::text, true), pg_advisory_xact_lock(\(Self.createLockSpace), hashtext(g::text));
                  IF p_max_pins > 0 THEN
                    v_room := p_max_pins - (SELECT coalesce(sum(c.n), 0) FROM org_pin_counts AS c WHERE c.org_id = g);
                    IF v_room < cardinality(v_rows) THEN
                      o_refused := o_refused || v_rows[greatest(v_room, 0) + 1:];
                      v_rows := v_rows[1:greatest(v_room, 0)];
                    END IF;
                  END IF;
                  SELECT max(p.created_at) INTO v_newest FROM pins AS p WHERE p.org_id = g;
                  FOR k IN 1..coalesce(cardinality(v_rows), 0) LOOP
                    BEGIN
                      v_newest := GREATEST(date_trunc('milliseconds', p_ats[v_rows[k]]), v_newest + interval '1 millisecond');
                      INSERT INTO pins (org_id, id, cid, cid_key, name, origins, meta, status, info, created_at, updated_at)
                        VALUES (g, p_ids[v_rows[k]], p_cids[v_rows[k]], p_cid_keys[v_rows[k]], p_names[v_rows[k]],
                          ARRAY(SELECT p_origins[o] FROM generate_subscripts(p_origin_rows, 1) AS o WHERE p_origin_rows[o] = v_rows[k] ORDER BY o),
                          p_metas[v_rows[k]], 'queued', '{}', v_newest, p_ats[v_rows[k]]);
                      INSERT INTO placements (org_id, pin_id, node_id, status, attempts, updated_at, cid, created_at, next_attempt_at)
                        SELECT g, p_ids[v_rows[k]], p_place_nodes[pl], 'queued', 0, p_ats[v_rows[k]], p_cid_keys[v_rows[k]], v_newest, '-infinity'
                        FROM generate_subscripts(p_place_rows, 1) AS pl WHERE p_place_rows[pl] = v_rows[k];
                      o_rows := o_rows || v_rows[k];
                      o_at := o_at || v_newest;
                    EXCEPTION WHEN others THEN
                      f_rows := f_rows || v_rows[k];
                      f_states := f_states || SQLSTATE;
                      f_messages := f_messages || SQLERRM;
                    END;
                  END LOOP;
                END LOOP;
              END;
              RETURN QUERY
                SELECT r.n, r.c, NULL::text, NULL::text FROM unnest(o_rows, o_at) AS r(n, c)
                UNION ALL
                SELECT r.n, NULL::timestamptz, '\(Self.quotaSQLState)'::text, format('the org holds its quota of %s pins', p_max_pins)
                FROM unnest(o_refused) AS r(n)
                UNION ALL
                SELECT r.n, NULL::timestamptz, r.s, r.m FROM unnest(f_rows, f_states, f_messages) AS r(n, s, m);
            END $fn$;
            """
    )

    public static let createLockSpace = 0x7069_6E73  // "pins"
    /// The SQLSTATE `anchorage_create_pin` raises when an org is at its quota.
    static let quotaSQLState = "AQ409"
}

/// Migration 4's backfill: every CID stored in another spelling than Kubo's gets its key.
/// Each list is read in full before rewriting (one connection runs one query at a time).
enum CIDKeyBackfill {
    static func run(_ conn: PostgresConnection, logger: Logger) async throws {
        func canonical(_ cid: String) -> String { CIDKey.canonical(cid) ?? cid }
        func distinct(_ query: PostgresQuery) async throws -> [String] {
            try await conn.query(query, logger: logger).collect().map { try $0.decode(String.self) }
        }
        let pins = try await distinct("SELECT DISTINCT cid FROM pins WHERE cid_key IS NULL")
        for cid in pins {
            try await conn.query("UPDATE pins SET cid_key = \(canonical(cid)) WHERE cid_key IS NULL AND cid = \(cid)", logger: logger)
        }
        let placed = try await distinct("SELECT DISTINCT cid FROM placements WHERE cid !~ '^(Qm|b)'")
        for cid in placed {
            try await conn.query("UPDATE placements SET cid = \(canonical(cid)) WHERE cid = \(cid)", logger: logger)
        }
        let unpins = try await distinct("SELECT DISTINCT cid FROM kubo_unpins WHERE cid !~ '^(Qm|b)'")
        for cid in unpins {
            try await conn.query(
                """
                WITH gone AS (DELETE FROM kubo_unpins WHERE cid = \(cid) RETURNING node_id, requested_at)
                INSERT INTO kubo_unpins (node_id, cid, requested_at) SELECT node_id, \(canonical(cid)), requested_at FROM gone
                ON CONFLICT (node_id, cid) DO NOTHING
                """,
                logger: logger
            )
        }
        let rewritten = pins.count + placed.count + unpins.count
        if rewritten > 0 { logger.info("stored CIDs rewritten to Kubo's spelling", metadata: ["cids": "\(rewritten)"]) }
    }
}
