import AnchorageTesting
import Cluster
import DeterministicSeams
import Foundation
import LocalPostgres
import LocalProcess
import Logging
import PostgresNIO
import PostgresStore
import Seams
import Testing

/// The admin CLI as an operator meets it at 3 a.m.: each mistake gets one line naming what was
/// wrong and what to do, and the documented exit status (64 usage, 65 data, 69 unavailable);
/// commands that change nothing say so. The whole output is compared, so a stray warning, a
/// usage banner or a Swift type dump fails the test.
@Suite struct AdminCLITests {
    static var binary: String { ProcessTests.binary }

    func environment(_ db: LocalPostgres.Database) -> [String: String] {
        var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("ANCHORAGE_") }
        env["ANCHORAGE_DB_URL"] = db.api.urlString
        env["ANCHORAGE_DB_OPS_URL"] = db.ops.urlString
        env["ANCHORAGE_DB_OWNER_URL"] = db.owner.urlString
        return env
    }

    func admin(_ args: [String], _ env: [String: String]) throws -> (Int32, String) {
        try ChildProcess.run(Self.binary, ["admin"] + args, environment: env)
    }

    static var now: Timestamp { Timestamp(microsecondsSinceEpoch: Int64(Date().timeIntervalSince1970 * 1_000_000)) }

    static func nodeID(_ n: UInt64) -> TypeID { TypeID(prefix: IDPrefix.node, high: 0x0193_0000_0000_7000 | n, low: 0x8000_0000_0000_0000 | n) }

    /// Registers nodes as their agents do, last seen `ageSeconds` ago.
    func register(_ db: LocalPostgres.Database, _ nodes: [(TypeID, ageSeconds: Int64)]) async throws {
        let client = PostgresClient(configuration: db.ops.clientConfiguration(maxConnections: 1), backgroundLogger: Logger(label: "t"))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            defer { group.cancelAll() }
            let store = PostgresClusterStore(client: client, entropy: SeededEntropy(seed: 1), minReplicas: 1, logger: Logger(label: "t"))
            for (i, (id, age)) in nodes.enumerated() {
                try await store.register(node: id, name: "n\(i + 1)", version: "test", now: Self.now.adding(seconds: -age))
            }
        }
    }

    @Test func anUnknownTokenIDIsNamedNotDumped() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.binary), "build the anchorage executable first (swift build)")
        let env = environment(try await SharedPostgres.shared.freshDatabase())
        let unknown = "tok_01jc000000e00r0000000000zz"
        let (code, out) = try admin(["revoke-token", unknown], env)
        #expect(code == 65)
        #expect(out == "Error: no token \(unknown) exists; `anchorage admin list-tokens` lists them\n")
    }

    @Test func anUnreachableDatabaseIsNamedWithHostPortAndReason() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.binary), "build the anchorage executable first (swift build)")
        let port = try FreePort.loopback()  // nothing listens there
        var env = environment(try await SharedPostgres.shared.freshDatabase())
        env["ANCHORAGE_DB_OPS_URL"] = "postgres://anchorage_ops@127.0.0.1:\(port)/anchorage"
        env["ANCHORAGE_DB_OWNER_URL"] = "postgres://anchorage_owner@127.0.0.1:\(port)/anchorage"
        let expected = { (user: String) in
            "Error: cannot reach PostgreSQL at 127.0.0.1:\(port) (database anchorage, user \(user)): connection refused (is it running on that port?)\n"
        }
        let (code, out) = try admin(["list-orgs"], env)
        #expect(code == 69)
        #expect(out == expected("anchorage_ops"))
        let (migrateCode, migrate) = try ChildProcess.run(Self.binary, ["migrate", "status"], environment: env)
        #expect(migrateCode == 69)
        #expect(migrate == expected("anchorage_owner"))
    }

    @Test func durationsAreReadAsConfigurationReadsThemAndMustBePositive() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.binary), "build the anchorage executable first (swift build)")
        let env = environment(try await SharedPostgres.shared.freshDatabase())
        for bad in ["0s", "0", "-5m"] {
            let (code, out) = try admin(["maintenance", "on", "--reason", "x", "--ttl", bad], env)
            #expect(code == 64, "\(bad)")
            #expect(out.hasPrefix("Error: --ttl must be > 0 (got \(bad))\n"), "\(out)")
        }
        let (code, out) = try admin(["mint-token", "--org", "acme", "--create-org", "--ttl", "soon"], env)
        #expect(code == 64)
        #expect(out.hasPrefix("Error: --ttl must be a duration such as 90s, 30m, 12h or 30d, or a number of seconds (got soon)\n"), "\(out)")
        // A bare number is seconds, as in the configuration file.
        let (okCode, ok) = try admin(["mint-token", "--org", "acme", "--create-org", "--ttl", "90", "--json"], env)
        #expect(okCode == 0, "\(ok)")
        let minted = try? JSONSerialization.jsonObject(with: Data(ok.utf8)) as? [String: Any]
        let expires = try #require((minted?["expires"] as? String).flatMap { ParsedDateTime(rfc3339: $0)?.floor })
        #expect(abs(expires.microseconds - Self.now.microseconds - 90_000_000) < 30_000_000, "\(ok)")
    }

    @Test func uncordonOfAnActiveNodeAndDrainOfADrainingOneChangeNothingAndSaySo() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.binary), "build the anchorage executable first (swift build)")
        let db = try await SharedPostgres.shared.freshDatabase()
        let env = environment(db)
        let (a, b, c) = (Self.nodeID(1), Self.nodeID(2), Self.nodeID(3))
        try await register(db, [(a, 1), (b, 1), (c, 1)])
        let (uncordonCode, uncordon) = try admin(["uncordon", a.description], env)
        #expect(uncordonCode == 0)
        #expect(uncordon == "node \(a) is already active; nothing changed\n")

        let (drainCode, drain) = try admin(["drain", c.description], env)
        #expect(drainCode == 0, "\(drain)")
        #expect(drain.hasPrefix("node \(c) is draining: /v1/ready answers 503"), "\(drain)")
        let (againCode, again) = try admin(["drain", c.description], env)
        #expect(againCode == 0)
        let since = try #require(again.firstMatch(of: /since (\S+);/).map { String($0.1) }, "\(again)")
        #expect(ParsedDateTime(rfc3339: since) != nil)
        #expect(again == "node \(c) is already draining since \(since); nothing changed (anchorage admin uncordon \(c) restores it)\n")

        let (backCode, back) = try admin(["uncordon", c.description], env)
        #expect(backCode == 0)
        #expect(back == "node \(c) is active again (was draining); new pins land on it\n")
    }

    @Test func drainingBelowTheReplicationFactorNeedsForce() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.binary), "build the anchorage executable first (swift build)")
        let db = try await SharedPostgres.shared.freshDatabase()
        let env = environment(db)
        // Two live nodes and one dead for ten minutes: the dead one does not count.
        let (a, b, dead) = (Self.nodeID(1), Self.nodeID(2), Self.nodeID(3))
        try await register(db, [(a, 1), (b, 1), (dead, 600)])
        let (code, out) = try admin(["drain", a.description], env)
        #expect(code == 65)
        #expect(
            out
                == "Error: refusing to drain \(a): it would leave 1 live, active node, fewer than cluster.replicationFactor (2); new pins would get fewer replicas than the factor. Add --force to drain it anyway.\n"
        )
        let (forcedCode, forced) = try admin(["drain", a.description, "--force"], env)
        #expect(forcedCode == 0, "\(forced)")
        // The last live, active node.
        let (lastCode, last) = try admin(["drain", b.description], env)
        #expect(lastCode == 65)
        #expect(
            last
                == "Error: refusing to drain \(b): it would leave no live, active node, fewer than cluster.replicationFactor (2); /v1/ready would answer 503 on every node and new pins would wait unplaced. Add --force to drain it anyway.\n"
        )
        var single = env
        single["ANCHORAGE_CLUSTER_REPLICATION_FACTOR"] = "1"
        let (stillCode, _) = try admin(["drain", b.description], single)
        #expect(stillCode == 65, "a factor of 1 still refuses to leave no node at all")
    }

    @Test func removeNodeForgetsADeadNodeAndRefusesALiveOne() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.binary), "build the anchorage executable first (swift build)")
        let db = try await SharedPostgres.shared.freshDatabase()
        let env = environment(db)
        let (live, dead) = (Self.nodeID(1), Self.nodeID(2))
        try await register(db, [(live, 1), (dead, 3600)])
        let (refusedCode, refused) = try admin(["remove-node", live.description], env)
        #expect(refusedCode == 65)
        #expect(
            refused
                == "Error: node \(live) is live and active: drain it first (anchorage admin drain \(live)), wait until cluster-presences shows it drained, then remove it\n"
        )
        let (code, out) = try admin(["remove-node", dead.description], env)
        #expect(code == 0, "\(out)")
        #expect(out == "removed node \(dead) (n2): it no longer shows in cluster-presences; if it starts again it registers afresh\n")
        let (againCode, again) = try admin(["remove-node", dead.description], env)
        #expect(againCode == 65)
        #expect(again == "Error: no node \(dead) is registered; `anchorage admin cluster-presences` lists them\n")
    }

    @Test func keysSayWhichOneSignsAndTokensNameTheirOrg() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.binary), "build the anchorage executable first (swift build)")
        var env = environment(try await SharedPostgres.shared.freshDatabase())
        let natsPort = try FreePort.loopback()  // no NATS there: retire-key says so and still retires
        env["ANCHORAGE_NATS_URL"] = "nats://127.0.0.1:\(natsPort)"
        let (mintCode, mint) = try admin(["mint-token", "--org", "acme", "--create-org", "--name", "ci"], env)
        #expect(mintCode == 0, "\(mint)")
        let (_, first) = try admin(["rotate-key"], env)
        let (_, second) = try admin(["rotate-key"], env)
        let (k1, k2) = (first.trimmingCharacters(in: .whitespacesAndNewlines), second.trimmingCharacters(in: .whitespacesAndNewlines))
        let (retireCode, retire) = try admin(["retire-key", k2], env)
        #expect(retireCode == 0)
        let lines = retire.split(separator: "\n").map(String.init)
        #expect(
            lines.first
                == "warning: done in PostgreSQL, but the nodes could not be told over NATS (cannot reach NATS at nats://127.0.0.1:\(natsPort): connection refused (is it running on that port?); set nats.url, ANCHORAGE_NATS_URL or --nats-url to a running server); they stop accepting its tokens within auth.keyCacheSeconds",
            "\(retire)"
        )
        #expect(lines.count == 2 && lines[1].hasPrefix("retired \(k2); new tokens are signed with \(k1) (created "), "\(retire)")
        let (_, keys) = try admin(["list-keys"], env)
        let statuses = Dictionary(
            keys.split(separator: "\n").dropFirst().map { line -> (String, String) in
                let cells = line.split(separator: " ", omittingEmptySubsequences: true)
                return (String(cells[0]), String(cells[1]))
            },
            uniquingKeysWith: { a, _ in a }
        )
        #expect(statuses[k1] == "active" && statuses[k2] == "retired", "\(keys)")
        #expect(statuses.values.filter { $0 == "verifying" }.count == 1, "the first key still verifies: \(keys)")
        let (_, tokens) = try admin(["list-tokens"], env)
        let row = try #require(tokens.split(separator: "\n").dropFirst().first.map(String.init), "\(tokens)")
        #expect(row.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first == "acme", "\(tokens)")
        let (unknownCode, unknown) = try admin(["retire-key", k2], env)
        #expect(unknownCode == 65)
        #expect(unknown == "Error: no active signing key \"\(k2)\" (unknown or already retired; `anchorage admin list-keys` lists them)\n")
    }
}
