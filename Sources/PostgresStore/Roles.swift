import Foundation

/// The database roles anchorage uses. Names are fixed because the migrations grant to them.
public enum DatabaseRole {
    /// Owns the schema; runs migrations. Never used to serve requests.
    public static let owner = "anchorage_owner"
    /// The API's role: owns nothing, subject to row-level security on every org-owned table.
    public static let api = "anchorage_api"
    /// Operators' tools and cluster-internal work: explicit cross-org policies, never the API's.
    public static let ops = "anchorage_ops"

    /// The per-transaction setting that the tenancy policies read.
    public static let orgSetting = "anchorage.org_id"
}

/// SQL run once per cluster by a superuser (or a role with CREATEROLE + CREATEDB) before the
/// first `migrate up`: the three roles and the database. Idempotent.
public enum Bootstrap {
    /// Statements creating the roles (with optional passwords) if they are missing.
    public static func roleStatements(passwords: [String: String] = [:]) -> [String] {
        [DatabaseRole.owner, DatabaseRole.api, DatabaseRole.ops].map { role in
            let password = passwords[role].map { " PASSWORD '" + $0.replacingOccurrences(of: "'", with: "''") + "'" } ?? ""
            return """
                DO $$ BEGIN
                  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '\(role)') THEN
                    CREATE ROLE \(role) LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS\(password);
                  END IF;
                END $$;
                """
        }
    }

    /// Per-database privileges (a database's ACL is not copied from its template): no temporary
    /// tables for PUBLIC, whose names could shadow anchorage's in a function's search path.
    public static func databaseStatements(_ database: String) -> [String] {
        ["REVOKE TEMPORARY ON DATABASE \(database) FROM PUBLIC"]
    }

    /// Marks the operators behind the `name` (LIKE/ILIKE) and `meta` (`@>`) filters LEAKPROOF in
    /// one database (pg_catalog is per database). Row-level security only lets the planner use
    /// an index for a user condition whose operator is leakproof; otherwise the org-keyed GIN
    /// indexes (`pins.name_keys`, `pins.meta_keys`) are never used for the API role and those
    /// filters scan the whole org. Safe: these functions return a boolean and raise no error
    /// that depends on the row's value (a malformed LIKE pattern is the caller's own input, and
    /// we escape it). Needs a superuser; re-running `migrate bootstrap` adds new ones.
    public static let leakproofStatements = [
        "ALTER FUNCTION pg_catalog.textlike(text, text) LEAKPROOF",
        "ALTER FUNCTION pg_catalog.texticlike(text, text) LEAKPROOF",
        "ALTER FUNCTION pg_catalog.jsonb_contains(jsonb, jsonb) LEAKPROOF",
        // `@>` on the org-keyed arrays (pins.name_keys, pins.meta_keys): raises no error that
        // depends on a row's value (only on element types, which are fixed).
        "ALTER FUNCTION pg_catalog.arraycontains(anyarray, anyarray) LEAKPROOF",
    ]
}
