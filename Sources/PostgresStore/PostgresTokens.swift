import Foundation
import Logging
import Pins
import PostgresNIO
import Seams
import Tokens

/// The API side of tokens: key lookup and the denylist, read-only, with the API's role.
public struct PostgresTokenLookup: SigningKeySource, ActiveKeySource, Denylist {
    public let client: PostgresClient
    /// Opens secrets sealed at rest (`auth.secretsKeyFile`).
    public let sealer: SecretSealer
    public let logger: Logger

    public init(client: PostgresClient, sealer: SecretSealer = SecretSealer(), logger: Logger) {
        self.client = client
        self.sealer = sealer
        self.logger = logger
    }

    public func verificationKey(kid: String) async throws -> SigningKey? {
        let rows = try await client.query(
            "SELECT kid, secret, sealed_with, created_at FROM signing_keys WHERE kid = \(kid) AND retired_at IS NULL",
            logger: logger
        )
        for try await (kid, secret, sealedWith, created) in rows.decode((String, ByteBuffer, String?, Timestamp).self) {
            return SigningKey(kid: kid, secret: try sealer.open(Array(buffer: secret), kid: kid, sealedWith: sealedWith), created: created)
        }
        return nil
    }

    /// Every active key. A secret that does not open (sealed with a key this node lacks) is
    /// left out and logged: one bad row must not stop every other key from verifying.
    public func activeKeys() async throws -> [SigningKey] {
        let rows = try await client.query(
            "SELECT kid, secret, sealed_with, created_at FROM signing_keys WHERE retired_at IS NULL",
            logger: logger
        )
        var out: [SigningKey] = []
        for try await (kid, secret, sealedWith, created) in rows.decode((String, ByteBuffer, String?, Timestamp).self) {
            do {
                out.append(SigningKey(kid: kid, secret: try sealer.open(Array(buffer: secret), kid: kid, sealedWith: sealedWith), created: created))
            } catch {
                logger.error("a signing key cannot be opened; tokens it signed are refused", metadata: ["kid": "\(kid)", "error": "\(error)"])
            }
        }
        return out
    }

    public func isRevoked(tokenID: TypeID) async throws -> Bool {
        let rows = try await client.query(
            "SELECT EXISTS (SELECT 1 FROM token_denylist WHERE jti = \(tokenID.uuid))",
            logger: logger
        )
        return try await rows.collect().first?.decode(Bool.self) ?? false
    }

    /// Why this database cannot serve this binary, or nil when it can: reachable, and its schema
    /// at exactly the version the binary was built for. (`/v1/ready` answers 503 with this.)
    public func notReadyReason() async -> String? {
        do {
            guard let version = try await schemaVersion() else {
                return "the database has no schema yet: run `anchorage migrate up`"
            }
            if version < Migrations.latestVersion {
                return "the database schema is at version \(version); this binary needs \(Migrations.latestVersion): run `anchorage migrate up`"
            }
            if version > Migrations.latestVersion {
                return "the database schema (version \(version)) is newer than this binary (\(Migrations.latestVersion))"
            }
            return nil
        } catch {
            return "the database is unreachable"
        }
    }

    /// The highest applied migration, or nil if the schema table is missing. One query.
    public func schemaVersion() async throws -> Int? {
        do {
            let v = try await client.query("SELECT coalesce(max(version), 0) FROM schema_migrations", logger: logger)
            return try await v.collect().first?.decode(Int.self)
        } catch  where error.sqlState == "42P01" {  // undefined_table
            return nil
        }
    }
}

/// Operator actions on orgs, keys and tokens. Connects as the ops role (explicit cross-org
/// policies); every change that concerns an org is written to its audit log.
public struct PostgresAdmin: Sendable {
    public let client: PostgresClient
    public let clock: any WallClock
    public let entropy: any Entropy
    /// Seals new signing secrets and opens stored ones (`auth.secretsKeyFile`).
    public let sealer: SecretSealer
    public let logger: Logger

    public init(client: PostgresClient, clock: any WallClock, entropy: any Entropy, sealer: SecretSealer = SecretSealer(), logger: Logger) {
        self.client = client
        self.clock = clock
        self.entropy = entropy
        self.sealer = sealer
        self.logger = logger
    }

    public struct Org: Sendable, Equatable {
        public var id: TypeID
        public var name: String
    }

    public struct KeyInfo: Sendable {
        public var kid: String
        public var created: Timestamp
        public var retired: Timestamp?
    }

    public struct TokenInfo: Sendable {
        public var id: TypeID
        public var org: TypeID
        public var orgName: String
        public var name: String?
        public var kid: String
        public var created: Timestamp
        public var expires: Timestamp
        public var revoked: Timestamp?
    }

    public struct MintedToken: Sendable {
        public var token: String
        public var claims: TokenClaims
        public var kid: String
    }

    // MARK: Orgs

    public func org(named name: String) async throws -> Org? {
        let rows = try await client.query("SELECT id, name FROM orgs WHERE name = \(name)", logger: logger)
        for try await (id, name) in rows.decode((UUID, String).self) {
            return Org(id: TypeID(prefix: IDPrefix.org, uuid: id), name: name)
        }
        return nil
    }

    public func orgs() async throws -> [Org] {
        var out: [Org] = []
        for try await (id, name) in try await client.query("SELECT id, name FROM orgs ORDER BY name", logger: logger)
            .decode((UUID, String).self)
        {
            out.append(Org(id: TypeID(prefix: IDPrefix.org, uuid: id), name: name))
        }
        return out
    }

    public func createOrg(name: String) async throws -> Org {
        guard !name.isEmpty, name.utf8.count <= 128 else {
            throw DatabaseError.invalidInput("an org name is 1 to 128 bytes")
        }
        let id = TypeID.make(IDPrefix.org, clock: clock, entropy: entropy)
        let now = clock.now()
        do {
            try await client.withTransaction(logger: logger) { conn in
                try await conn.query(
                    "INSERT INTO orgs (id, name, created_at) VALUES (\(id.uuid), \(name), \(now))",
                    logger: logger
                )
                try await audit(conn, org: id, action: "org.create", subject: "\(id)", detail: ["name": name])
            }
        } catch  where error.sqlState == "23505" {
            throw DatabaseError.conflict("an org named \"\(name)\" already exists")
        }
        return Org(id: id, name: name)
    }

    // MARK: Signing keys

    /// Adds a new signing key; it becomes the one new tokens are signed with. Older keys keep
    /// verifying until retired.
    @discardableResult
    public func rotateKey() async throws -> KeyInfo {
        let kid = TypeID.make(IDPrefix.key, clock: clock, entropy: entropy).description
        let secret = entropy.bytes(SigningKey.secretBytes)
        let now = clock.now()
        let (stored, sealedWith) = try sealer.seal(secret, kid: kid)
        try await client.query(
            """
            INSERT INTO signing_keys (kid, secret, sealed_with, created_at)
            VALUES (\(kid), \(ByteBuffer(bytes: stored)), \(sealedWith), \(now))
            """,
            logger: logger
        )
        return KeyInfo(kid: kid, created: now, retired: nil)
    }

    /// Re-seals every signing secret with the current secrets key (sealing those stored in the
    /// clear), opening each with the current or a previous key. Returns how many rows changed.
    /// Each row is rewritten only if it still holds what was read (a concurrent rotation wins).
    public func resealKeys() async throws -> Int {
        guard sealer.isSealing else { throw DatabaseError.invalidInput("no auth.secretsKeyFile is configured: nothing to seal with") }
        let rows = try await client.query("SELECT kid, secret, sealed_with FROM signing_keys ORDER BY kid", logger: logger).collect()
        var changed = 0
        for row in rows {
            let (kid, stored, sealedWith) = try row.decode((String, ByteBuffer, String?).self)
            guard sealedWith != sealer.current?.id else { continue }
            let secret = try sealer.open(Array(buffer: stored), kid: kid, sealedWith: sealedWith)
            let (resealed, with) = try sealer.seal(secret, kid: kid)
            let updated = try await client.query(
                """
                UPDATE signing_keys SET secret = \(ByteBuffer(bytes: resealed)), sealed_with = \(with)
                WHERE kid = \(kid) AND secret = \(stored) AND sealed_with IS NOT DISTINCT FROM \(sealedWith) RETURNING 1
                """,
                logger: logger
            ).collect()
            changed += updated.count
        }
        return changed
    }

    /// Stops a key from verifying: every token it signed is refused from then on.
    public func retireKey(kid: String) async throws {
        let rows = try await client.query(
            "UPDATE signing_keys SET retired_at = \(clock.now()) WHERE kid = \(kid) AND retired_at IS NULL RETURNING kid",
            logger: logger
        ).collect()
        guard !rows.isEmpty else {
            throw DatabaseError.notFound("no active signing key \"\(kid)\" (unknown or already retired; `anchorage admin list-keys` lists them)")
        }
    }

    public func keys() async throws -> [KeyInfo] {
        var out: [KeyInfo] = []
        for try await (kid, created, retired) in try await client.query(
            "SELECT kid, created_at, retired_at FROM signing_keys ORDER BY created_at",
            logger: logger
        ).decode((String, Timestamp, Timestamp?).self) {
            out.append(KeyInfo(kid: kid, created: created, retired: retired))
        }
        return out
    }

    func activeKey() async throws -> SigningKey? {
        let rows = try await client.query(
            "SELECT kid, secret, sealed_with, created_at FROM signing_keys WHERE retired_at IS NULL ORDER BY created_at DESC, kid DESC LIMIT 1",
            logger: logger
        )
        for try await (kid, secret, sealedWith, created) in rows.decode((String, ByteBuffer, String?, Timestamp).self) {
            return SigningKey(kid: kid, secret: try sealer.open(Array(buffer: secret), kid: kid, sealedWith: sealedWith), created: created)
        }
        return nil
    }

    // MARK: Tokens

    /// Mints an API token for `org`, signed with the newest active key (one is created if none exists).
    public func mintToken(org: TypeID, name: String?, ttlSeconds: Int64) async throws -> MintedToken {
        guard ttlSeconds > 0 else { throw DatabaseError.invalidInput("a token's lifetime must be positive") }
        var key = try await activeKey()
        if key == nil {
            try await rotateKey()
            key = try await activeKey()
        }
        guard let key else { throw DatabaseError.notFound("no signing key") }
        let now = clock.now()
        let claims = TokenClaims(
            org: org,
            tokenID: TypeID.make(IDPrefix.token, clock: clock, entropy: entropy),
            issuedAt: now,
            expiresAt: now.adding(seconds: ttlSeconds)
        )
        try await client.withTransaction(logger: logger) { conn in
            try await conn.query(
                """
                INSERT INTO api_tokens (org_id, id, name, kid, created_at, expires_at)
                VALUES (\(org.uuid), \(claims.tokenID.uuid), \(name), \(key.kid), \(now), \(claims.expiresAt))
                """,
                logger: logger
            )
            try await audit(conn, org: org, action: "token.mint", subject: "\(claims.tokenID)", detail: ["kid": key.kid])
        }
        return MintedToken(token: TokenCodec.sign(claims, with: key), claims: claims, kid: key.kid)
    }

    public func tokens(org: TypeID? = nil) async throws -> [TokenInfo] {
        var out: [TokenInfo] = []
        let rows = try await client.query(
            """
            SELECT t.org_id, o.name, t.id, t.name, t.kid, t.created_at, t.expires_at, t.revoked_at
            FROM api_tokens t JOIN orgs o ON o.id = t.org_id
            WHERE \(org?.uuid)::uuid IS NULL OR t.org_id = \(org?.uuid) ORDER BY t.created_at
            """,
            logger: logger
        )
        for try await (o, orgName, id, name, kid, created, expires, revoked) in rows.decode(
            (UUID, String, UUID, String?, String, Timestamp, Timestamp, Timestamp?).self
        ) {
            out.append(
                TokenInfo(
                    id: TypeID(prefix: IDPrefix.token, uuid: id),
                    org: TypeID(prefix: IDPrefix.org, uuid: o),
                    orgName: orgName,
                    name: name,
                    kid: kid,
                    created: created,
                    expires: expires,
                    revoked: revoked
                )
            )
        }
        return out
    }

    /// Revokes a token: its ID goes on the denylist until the token would have expired anyway.
    public func revokeToken(_ tokenID: TypeID) async throws {
        let now = clock.now()
        try await client.withTransaction(logger: logger) { conn in
            let rows = try await conn.query(
                "UPDATE api_tokens SET revoked_at = coalesce(revoked_at, \(now)) WHERE id = \(tokenID.uuid) RETURNING org_id, expires_at",
                logger: logger
            )
            var found: (UUID, Timestamp)?
            for try await row in rows.decode((UUID, Timestamp).self) { found = row }
            guard let (org, expires) = found else {
                throw DatabaseError.notFound("no token \(tokenID) exists; `anchorage admin list-tokens` lists them")
            }
            try await conn.query(
                """
                INSERT INTO token_denylist (jti, revoked_at, expires_at) VALUES (\(tokenID.uuid), \(now), \(expires))
                ON CONFLICT (jti) DO NOTHING
                """,
                logger: logger
            )
            try await audit(
                conn,
                org: TypeID(prefix: IDPrefix.org, uuid: org),
                action: "token.revoke",
                subject: "\(tokenID)",
                detail: [:]
            )
        }
    }

    /// Drops denylist entries whose tokens have expired (they are refused for expiry anyway).
    public func pruneDenylist() async throws -> Int {
        let rows = try await client.query(
            "DELETE FROM token_denylist WHERE expires_at < \(clock.now()) RETURNING jti",
            logger: logger
        ).collect()
        return rows.count
    }

    private func audit(
        _ conn: PostgresConnection,
        org: TypeID,
        action: String,
        subject: String,
        detail: [String: String]
    ) async throws {
        let id = TypeID.make(IDPrefix.audit, clock: clock, entropy: entropy)
        try await conn.query(
            """
            INSERT INTO audit_log (org_id, id, at, actor, action, subject, detail)
            VALUES (\(org.uuid), \(id.uuid), \(clock.now()), 'admin', \(action), \(subject), \(JSONText.encode(detail))::jsonb)
            """,
            logger: logger
        )
    }
}
