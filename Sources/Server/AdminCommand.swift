import AnchorageNode
import ArgumentParser
import Caches
import Foundation
import Live
import Logging
import PostgresNIO
import PostgresStore
import Seams
import Tokens

struct Admin: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Operator commands (connect as db.opsUrl).",
        subcommands: [
            CreateOrg.self, ListOrgs.self, MintToken.self, ListTokens.self, RevokeToken.self, RotateKey.self,
            RetireKey.self, ListKeys.self, ResealKeys.self, PruneDenylist.self,
            Drain.self, Uncordon.self, RemoveNode.self, MaintenanceCommand.self, ClusterPresences.self, Rebalance.self, CacheStatsCommand.self,
        ]
    )

    /// Runs `body` with a connected `PostgresAdmin` and shuts the client down afterwards.
    static func withAdmin<T: Sendable>(_ common: CommonOptions, _ body: (PostgresAdmin) async throws -> T) async throws -> T {
        try await withOpsDatabase(common) { settings, client, clock, logger in
            let sealer = try settings.secretSealer()
            return try await body(PostgresAdmin(client: client, clock: clock, entropy: SystemEntropy(), sealer: sealer, logger: logger))
        }
    }

    /// The ops-role PostgreSQL client every admin verb uses, with its errors told in the
    /// operator's terms (which server, what to do) rather than as PSQLError's generic text.
    static func withOpsDatabase<T: Sendable>(
        _ common: CommonOptions,
        _ body: (Settings, PostgresClient, any WallClock, Logger) async throws -> T
    ) async throws -> T {
        let settings = try Settings(try await common.reader())
        let clock = SystemWallClock()
        let logger = LogSetup.bootstrap(level: settings.logLevel == "info" ? "warning" : settings.logLevel, format: settings.logFormat, clock: clock)
        let url = try settings.opsURL()
        // The pool's own log: it warns when a query is queued before `run()` has started (the
        // query just waits), and connection errors reach the operator through CommandFailure.
        var poolLogger = logger
        if poolLogger.logLevel < .error { poolLogger.logLevel = .error }
        let client = PostgresClient(configuration: url.clientConfiguration(maxConnections: 2), backgroundLogger: poolLogger)
        do {
            // One plain connection first: the pool retries an unreachable server for a minute
            // before giving up with a circuit-breaker error that names neither host nor reason.
            try await url.withConnection(logger: poolLogger) { _ in }
            return try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await client.run() }
                defer { group.cancelAll() }
                return try await body(settings, client, clock, logger)
            }
        } catch {
            throw CommandFailure.from(error, database: url)
        }
    }

    /// A positive duration flag such as `--ttl`, read as configuration reads durations
    /// (`90s`, `30m`, `1h30m`, `30d`, or a bare number of seconds).
    static func positiveSeconds(_ flag: String, _ text: String, atMost limit: (seconds: Int64, text: String)? = nil) throws -> Int64 {
        if DurationText.isNegative(text) || DurationText.operatorSeconds(text) == 0 {
            throw ValidationError("\(flag) must be > 0 (got \(text))")
        }
        guard let seconds = DurationText.operatorSeconds(text) else {
            throw ValidationError("\(flag) must be a duration such as 90s, 30m, 12h or 30d, or a number of seconds (got \(text))")
        }
        if let limit, seconds > limit.seconds { throw ValidationError("\(flag) must be at most \(limit.text) (got \(text))") }
        return seconds
    }

    /// The key new tokens are signed with: the newest one not retired (as `mintToken` picks it).
    static func activeKey(_ keys: [PostgresAdmin.KeyInfo]) -> PostgresAdmin.KeyInfo? {
        keys.filter { $0.retired == nil }.max { ($0.created, $0.kid) < ($1.created, $1.kid) }
    }

    /// `active` signs new tokens; `verifying` only checks tokens it signed earlier; `retired` checks none.
    static func keyStatus(_ key: PostgresAdmin.KeyInfo, active: PostgresAdmin.KeyInfo?) -> String {
        if key.retired != nil { return "retired" }
        return key.kid == active?.kid ? "active" : "verifying"
    }

    static func printJSON(_ value: Any) throws {
        print(String(decoding: try JSONSerialization.data(withJSONObject: value, options: [.sortedKeys]), as: UTF8.self))
    }

    struct CreateOrg: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create an org.")
        @OptionGroup var common: CommonOptions
        @Argument(help: "The org's unique name.") var name: String
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let org = try await Admin.withAdmin(common) { try await $0.createOrg(name: name) }
            if json { try Admin.printJSON(["id": "\(org.id)", "name": org.name]) } else { print(org.id) }
        }
    }

    struct ListOrgs: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List orgs.")
        @OptionGroup var common: CommonOptions
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let orgs = try await Admin.withAdmin(common) { try await $0.orgs() }
            if json {
                try Admin.printJSON(orgs.map { ["id": "\($0.id)", "name": $0.name] })
            } else {
                print(Table.render(["ID", "NAME"], orgs.map { ["\($0.id)", $0.name] }))
            }
        }
    }

    struct MintToken: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Mint an API token for an org and print it.")
        @OptionGroup var common: CommonOptions
        @Option(help: "The org's name.") var org: String
        @Flag(name: .customLong("create-org"), help: "Create the org if it does not exist.") var createOrg = false
        @Option(parsing: .unconditional, help: "Lifetime, e.g. 30d, 12h, 90m.") var ttl = "30d"
        @Option(help: "A label for the token (the device it is for).") var name: String?
        @Flag(help: "Print JSON (token, id, org, expiry).") var json = false

        func validate() throws { _ = try Admin.positiveSeconds("--ttl", ttl) }

        func run() async throws {
            let ttlSeconds = try Admin.positiveSeconds("--ttl", ttl)
            let minted = try await Admin.withAdmin(common) { admin -> PostgresAdmin.MintedToken in
                var found = try await admin.org(named: org)
                if found == nil {
                    guard createOrg else {
                        throw CommandFailure.data("no org named \"\(org)\" (add --create-org to create it; anchorage admin list-orgs lists them)")
                    }
                    found = try await admin.createOrg(name: org)
                }
                return try await admin.mintToken(org: found!.id, name: name, ttlSeconds: ttlSeconds)
            }
            if json {
                try Admin.printJSON([
                    "token": minted.token, "id": "\(minted.claims.tokenID)", "org": "\(minted.claims.org)",
                    "kid": minted.kid, "expires": minted.claims.expiresAt.rfc3339,
                ])
            } else {
                print(minted.token)
            }
        }
    }

    struct ListTokens: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List API tokens (never their secrets).")
        @OptionGroup var common: CommonOptions
        @Option(help: "Only this org's tokens (name).") var org: String?
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let tokens = try await Admin.withAdmin(common) { admin -> [PostgresAdmin.TokenInfo] in
                var orgID: TypeID?
                if let org {
                    guard let o = try await admin.org(named: org) else {
                        throw CommandFailure.data("no org named \"\(org)\" (anchorage admin list-orgs lists them)")
                    }
                    orgID = o.id
                }
                return try await admin.tokens(org: orgID)
            }
            if json {
                try Admin.printJSON(
                    tokens.map { t -> [String: Any] in
                        var r: [String: Any] = [
                            "id": "\(t.id)", "org": "\(t.org)", "orgName": t.orgName, "kid": t.kid, "created": t.created.rfc3339,
                            "expires": t.expires.rfc3339,
                        ]
                        if let n = t.name { r["name"] = n }
                        if let rv = t.revoked { r["revoked"] = rv.rfc3339 }
                        return r
                    }
                )
            } else {
                print(
                    Table.render(
                        ["ID", "ORG", "NAME", "KID", "EXPIRES", "REVOKED"],
                        tokens.map { ["\($0.id)", $0.orgName, $0.name ?? "-", $0.kid, $0.expires.rfc3339, $0.revoked?.rfc3339 ?? "-"] }
                    )
                )
            }
        }
    }

    struct RevokeToken: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke an API token by its ID (tok_…); it is refused from then on.")
        @OptionGroup var common: CommonOptions
        @Argument(help: "The token ID (its jti), e.g. tok_01j….") var id: String

        func validate() throws {
            guard TypeID(parsing: id, prefix: IDPrefix.token) != nil else {
                throw ValidationError("\"\(id)\" is not a token ID (tok_ followed by 26 base32 characters)")
            }
        }

        func run() async throws {
            let tokenID = TypeID(parsing: id, prefix: IDPrefix.token)!
            try await Admin.withAdmin(common) { try await $0.revokeToken(tokenID) }
            await Admin.announce(
                common,
                CacheName.denylist.subject,
                CacheInvalidation(cache: .denylist, key: tokenID.description, from: "admin").encoded(),
                catchUp: "refuse it within cache.denylist.ttlSeconds"
            )
            print("revoked \(tokenID)")
        }
    }

    struct RotateKey: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a new signing key; new tokens use it, older keys keep verifying until retired."
        )
        @OptionGroup var common: CommonOptions

        func run() async throws {
            let key = try await Admin.withAdmin(common) { try await $0.rotateKey() }
            print(key.kid)
        }
    }

    struct ResealKeys: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Seal every signing secret with auth.secretsKeyFile (opening old ones with auth.previousSecretsKeyFile).",
            discussion: "Run after adding a secrets key, or during a rotation once every node has both key files (docs/security.md)."
        )
        @OptionGroup var common: CommonOptions

        func run() async throws {
            let changed = try await Admin.withAdmin(common) { try await $0.resealKeys() }
            print("resealed \(changed) signing key(s)")
        }
    }

    struct RetireKey: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Retire a signing key: tokens it signed stop verifying on every node at once (within auth.keyCacheSeconds without NATS)."
        )
        @OptionGroup var common: CommonOptions
        @Argument(help: "The key's kid.") var kid: String

        func run() async throws {
            let keys = try await Admin.withAdmin(common) { admin -> [PostgresAdmin.KeyInfo] in
                try await admin.retireKey(kid: kid)
                return try await admin.keys()
            }
            await Admin.announce(
                common,
                CacheName.signingKeys.subject,
                CacheInvalidation(cache: .signingKeys, key: kid, from: "admin").encoded(),
                catchUp: "stop accepting its tokens within auth.keyCacheSeconds"
            )
            if let active = Admin.activeKey(keys) {
                print("retired \(kid); new tokens are signed with \(active.kid) (created \(active.created.rfc3339))")
            } else {
                print("retired \(kid); no active signing key is left: the next mint-token creates one (or run anchorage admin rotate-key)")
            }
        }
    }

    struct ListKeys: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List signing keys (never their secrets).")
        @OptionGroup var common: CommonOptions
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let keys = try await Admin.withAdmin(common) { try await $0.keys() }
            let active = Admin.activeKey(keys)
            if json {
                try Admin.printJSON(
                    keys.map { k -> [String: Any] in
                        var r: [String: Any] = ["kid": k.kid, "created": k.created.rfc3339, "status": Admin.keyStatus(k, active: active)]
                        if let rt = k.retired { r["retired"] = rt.rfc3339 }
                        return r
                    }
                )
            } else {
                print(
                    Table.render(
                        ["KID", "STATUS", "CREATED", "RETIRED"],
                        keys.map { [$0.kid, Admin.keyStatus($0, active: active), $0.created.rfc3339, $0.retired?.rfc3339 ?? "-"] }
                    )
                )
            }
        }
    }

    struct PruneDenylist: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "prune-denylist",
            abstract: "Drop denylist entries of tokens that have expired anyway."
        )
        @OptionGroup var common: CommonOptions

        func run() async throws {
            let n = try await Admin.withAdmin(common) { try await $0.pruneDenylist() }
            print("pruned \(n) entries")
        }
    }
}
