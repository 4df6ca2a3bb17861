import AnchorageTesting
import AsyncHTTPClient
import Cluster
import DeterministicSeams
import Foundation
import LocalNATS
import LocalPostgres
import LocalProcess
import Logging
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import Pins
import PostgresNIO
import PostgresStore
import Seams

/// A real cluster on one machine: one throwaway PostgreSQL database, one nats-server, and N
/// `anchorage serve` processes, each paired with its own `fake-kubo` process, all on loopback,
/// with short cluster timings so that drains, failovers and sweeps happen in seconds.
public final class ClusterHarness: @unchecked Sendable {
    // @unchecked: `nodes` is only mutated by the test that owns the harness, sequentially.
    public static var binDir: URL { URL(fileURLWithPath: ProcessInfo.processInfo.arguments[0]).deletingLastPathComponent() }
    public static var anchorage: String { binDir.appendingPathComponent("anchorage").path }
    public static var fakeKubo: String { binDir.appendingPathComponent("fake-kubo").path }

    /// Timings (seconds) every node and admin command shares.
    public static let timings: [String: String] = [
        "ANCHORAGE_CLUSTER_HEARTBEAT_INTERVAL": "1s", "ANCHORAGE_CLUSTER_LIVE_AFTER": "3s",
        "ANCHORAGE_CLUSTER_NODE_LOST_AFTER": "6s", "ANCHORAGE_CLUSTER_LEADER_LEASE_TTL": "4s",
        "ANCHORAGE_CLUSTER_LEADER_RENEW_INTERVAL": "1s", "ANCHORAGE_CLUSTER_DRAIN_GRACE_PERIOD": "2s",
        "ANCHORAGE_CLUSTER_REQUEUE_AFTER": "4s", "ANCHORAGE_CLUSTER_SWEEP_INTERVAL": "1s",
        "ANCHORAGE_CLUSTER_REBALANCE_INTERVAL": "1s", "ANCHORAGE_CLUSTER_RECONCILE_INTERVAL": "3s",
        "ANCHORAGE_CLUSTER_TICK_MILLISECONDS": "100", "ANCHORAGE_WORKER_POLL_MILLISECONDS": "200",
        "ANCHORAGE_CLUSTER_REPLICATION_FACTOR": "2",
        "ANCHORAGE_KUBO_PIN_STALL_TIMEOUT_SECONDS": "3", "ANCHORAGE_KUBO_PIN_ATTEMPT_TIMEOUT_SECONDS": "5",
        "ANCHORAGE_WORKER_LEASE_GRACE_SECONDS": "1", "ANCHORAGE_KUBO_RETRY_BACKOFF_SECONDS": "1",
        "ANCHORAGE_KUBO_MAX_RETRY_BACKOFF_SECONDS": "2", "ANCHORAGE_METRICS_COUNTS_INTERVAL": "1s",
    ]

    public final class Node: @unchecked Sendable {
        // @unchecked: mutated only by the owning test, sequentially.
        public let index: Int
        public let id: TypeID
        /// Learnt from the processes' own logs: they bind port 0, so no other process can take
        /// the port between our choosing it and their binding it.
        public var httpPort: Int
        public var kuboPort: Int
        /// The embedded nats-server's client port (``ClusterHarness/embeddedNATS``), kept across restarts.
        public var natsPort = 0
        /// The embedded nats-server's JetStream store.
        public var natsStore: String { URL(fileURLWithPath: dataDir).appendingPathComponent("nats").standardizedFileURL.path }
        public let dataDir: String
        public var serve: ChildProcess?
        public var kubo: ChildProcess?
        public var url: String { "http://127.0.0.1:\(httpPort)" }
        public var kuboURL: String { "http://127.0.0.1:\(kuboPort)" }

        public init(index: Int, id: TypeID, httpPort: Int, kuboPort: Int, dataDir: String) {
            self.index = index
            self.id = id
            self.httpPort = httpPort
            self.kuboPort = kuboPort
            self.dataDir = dataDir
        }
    }

    public let db: LocalPostgres.Database
    public let nats: LocalNATSServer
    public let ops: PostgresClient
    public let store: PostgresClusterStore
    public let http = HTTPClient(eventLoopGroupProvider: .singleton)
    public let root: String
    public var nodes: [Node] = []
    public var token = ""

    /// Each node runs its own embedded nats-server (`nats.url` unset) instead of joining the
    /// harness's: for a single node whose server the test kills.
    public let embeddedNATS: Bool

    /// Extra environment for each node's `serve` process (a stepped clock, for instance).
    let nodeEnvironment: (@Sendable (Node) -> [String: String])?

    init(
        db: LocalPostgres.Database,
        nats: LocalNATSServer,
        ops: PostgresClient,
        root: String,
        embeddedNATS: Bool,
        nodeEnvironment: (@Sendable (Node) -> [String: String])?
    ) {
        self.embeddedNATS = embeddedNATS
        self.nodeEnvironment = nodeEnvironment
        self.db = db
        self.nats = nats
        self.ops = ops
        self.root = root
        self.store = PostgresClusterStore(client: ops, entropy: SeededEntropy(seed: 99), logger: Logger(label: "harness"))
    }

    /// Runs `body` with a started cluster of `nodes` nodes; stops everything afterwards.
    /// `postgres`: a server of the test's own (one it may restart); by default a fresh database
    /// on the suite's shared server.
    public static func with(
        nodes count: Int,
        postgres: LocalPostgres? = nil,
        embeddedNATS: Bool = false,
        nodeEnvironment: (@Sendable (Node) -> [String: String])? = nil,
        _ body: @Sendable (ClusterHarness) async throws -> Void
    ) async throws {
        try require(FileManager.default.isExecutableFile(atPath: anchorage), "build the executables first (swift build)")
        try require(FileManager.default.isExecutableFile(atPath: fakeKubo), "build fake-kubo first (swift build)")
        let db =
            if let postgres {
                try await postgres.createDatabase("faults", clock: VirtualWallClock(), logger: Logger(label: "harness"))
            } else {
                try await SharedPostgres.shared.freshDatabase()
            }
        let nats = try await LocalNATSServer.start()
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("anchorage-cluster-\(getpid())-\(UInt32.random(in: 0 ... .max))")
            .path
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        let ops = PostgresClient(configuration: db.ops.clientConfiguration(maxConnections: 4), backgroundLogger: Logger(label: "harness"))
        let harness = ClusterHarness(db: db, nats: nats, ops: ops, root: root, embeddedNATS: embeddedNATS, nodeEnvironment: nodeEnvironment)
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await ops.run() }
                defer { group.cancelAll() }
                for _ in 0..<count { try await harness.addNode() }
                try await harness.waitAllReady()
                // Ready means joined; two heartbeat intervals more and every node has heard every
                // other, so the tests' first pins are placed over the whole cluster.
                try await Task.sleep(for: .seconds(2))
                let (code, out) = try await harness.admin(["mint-token", "--org", "acme", "--create-org", "--ttl", "1h"])
                try require(code == 0, "\(out)")
                harness.token = String(out.split(separator: "\n").last ?? "")
                do {
                    try await body(harness)
                } catch {
                    if let rows = try? await harness.placements() {
                        FileHandle.standardError.write(
                            Data("---- placements ----\n\(rows.map { "\($0.pin) \($0.node) \($0.status)" }.joined(separator: "\n"))\n".utf8)
                        )
                    }
                    for action in ["move", "requeue"] {
                        if let rows = try? await harness.audit(action) {
                            FileHandle.standardError.write(
                                Data(
                                    "---- audit \(action) ----\n\(rows.map { "\($0.subject) \($0.detail) fence=\($0.fence ?? -1)" }.joined(separator: "\n"))\n"
                                        .utf8
                                )
                            )
                        }
                    }
                    throw error
                }
            }
        } catch {
            harness.dumpLogs()
            harness.shutdown()
            await nats.stop()
            throw error
        }
        harness.shutdown()
        await nats.stop()
        try? FileManager.default.removeItem(atPath: root)
    }

    public func dumpLogs() {
        for n in nodes {
            let log = n.serve?.output ?? ""
            let state = n.serve.map { $0.poll().map { "exited \($0)" } ?? "running" } ?? "never started"
            FileHandle.standardError.write(Data("---- node \(n.index) (\(n.id)) \(state) port \(n.httpPort) ----\n\(log.suffix(6000))\n".utf8))
        }
    }

    public func environment() -> [String: String] {
        var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("ANCHORAGE_") }
        env["ANCHORAGE_DB_URL"] = db.api.urlString
        env["ANCHORAGE_DB_OPS_URL"] = db.ops.urlString
        env["ANCHORAGE_DB_OWNER_URL"] = db.owner.urlString
        if !embeddedNATS { env["ANCHORAGE_NATS_URL"] = nats.url }
        env["ANCHORAGE_LOG_LEVEL"] = "info"
        for (k, v) in Self.timings { env[k] = v }
        return env
    }

    /// Starts a new node (its fake Kubo first) and returns it once it answers ready.
    @discardableResult
    public func addNode() async throws -> Node {
        let index = nodes.count
        let id = TypeID(prefix: IDPrefix.node, high: 0x0193_0000_0000_7000 | UInt64(index + 1), low: 0x8000_0000_0000_0000 | UInt64(index + 1) << 8)
        let dir = "\(root)/node\(index)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let node = Node(index: index, id: id, httpPort: 0, kuboPort: 0, dataDir: dir)
        nodes.append(node)
        try await startKubo(node)
        try await start(node)
        return node
    }

    public func startKubo(_ node: Node) async throws {
        let kubo = try ChildProcess(
            Self.fakeKubo,
            ["--listen", "127.0.0.1:0", "--seed", "\(node.index + 1)", "--state", "\(node.dataDir)/kubo.json"],
            outputPath: "\(node.dataDir)/kubo.log"
        )
        node.kubo = kubo
        node.kuboPort = try await Self.port(in: kubo, after: "listening on /ip4/127.0.0.1/tcp/")
        try await eventually("fake kubo \(node.index) up", timeout: .seconds(20)) {
            (try? await self.status("\(node.kuboURL)/api/v0/version", method: .POST)) == 200
        }
    }

    /// The port a child printed after `marker` (it bound port 0).
    public static func port(in child: ChildProcess, after marker: String) async throws -> Int {
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            let out = child.output
            if let range = out.range(of: marker) {
                let digits = out[range.upperBound...].prefix { $0.isNumber }
                if let port = Int(digits), port > 0 { return port }
            }
            if let code = child.poll() { throw ChildFailed(description: "exited \(code) before listening: \(out.suffix(2000))") }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw ChildFailed(description: "no \"\(marker)\" within 60 s: \(child.output.suffix(2000))")
    }

    public struct ChildFailed: Error, CustomStringConvertible { public let description: String }

    public func start(_ node: Node) async throws {
        var env = environment()
        if embeddedNATS {
            if node.natsPort == 0 { node.natsPort = try FreePort.loopback() }
            env["ANCHORAGE_NATS_PORT"] = "\(node.natsPort)"
        }
        for (key, value) in nodeEnvironment?(node) ?? [:] { env[key] = value }
        env["ANCHORAGE_NODE_ID"] = node.id.description
        env["ANCHORAGE_NODE_DATA_DIR"] = node.dataDir
        env["ANCHORAGE_HTTP_PORT"] = "0"
        env["ANCHORAGE_KUBO_URL"] = node.kuboURL
        let serve = try ChildProcess(
            Self.anchorage,
            ["serve"],
            environment: env,
            outputPath: "\(node.dataDir)/serve-\(UInt32.random(in: 0 ... .max)).log"
        )
        node.serve = serve
        node.httpPort = try await Self.port(in: serve, after: "listening on 127.0.0.1:")
    }

    public func waitAllReady() async throws {
        for n in nodes { try await eventually("node \(n.index) ready", timeout: .seconds(60)) { try await self.ready(n) == 200 } }
    }

    public func shutdown() {
        for n in nodes {
            for p in [n.serve, n.kubo].compactMap({ $0 }) where p.poll() == nil {
                p.signal(SIGCONT)
                p.signal(SIGKILL)
                p.wait()
            }
        }
        try? http.syncShutdown()
    }

    /// Kills a node's anchorage process (SIGKILL: no goodbye, no lease release).
    public func kill(_ node: Node) {
        guard let p = node.serve, p.poll() == nil else { return }
        p.signal(SIGKILL)
        p.wait()
    }

    // MARK: HTTP

    public func status(_ url: String, method: HTTPMethod = .GET) async throws -> Int {
        var request = HTTPClientRequest(url: url)
        request.method = method
        let response = try await http.execute(request, timeout: .seconds(3))
        _ = try await response.body.collect(upTo: 1 << 20)
        return Int(response.status.code)
    }

    public func ready(_ node: Node) async throws -> Int { try await status("\(node.url)/v1/ready") }

    public func api(_ node: Node, _ method: HTTPMethod, _ path: String, body: String? = nil) async throws -> (Int, [String: Any]) {
        try await api(url: node.url, method, path, body: body, token: token)
    }

    /// A Pinning API call to the node at `url` as the org of `token`.
    public func api(url: String, _ method: HTTPMethod, _ path: String, body: String? = nil, token: String) async throws -> (Int, [String: Any]) {
        var request = HTTPClientRequest(url: "\(url)\(path)")
        request.method = method
        request.headers.add(name: "Authorization", value: "Bearer \(token)")
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: body))
        }
        let response = try await http.execute(request, timeout: .seconds(10))
        let bytes = try await response.body.collect(upTo: 1 << 22)
        let object = (try? JSONSerialization.jsonObject(with: Data(buffer: bytes))) as? [String: Any] ?? [:]
        return (Int(response.status.code), object)
    }

    /// POSTs a pin through `node`; returns its requestid.
    public func pin(_ cid: String, via node: Node) async throws -> String {
        let (code, object) = try await api(node, .POST, "/pins", body: #"{"cid":"\#(cid)"}"#)
        try require(code == 202, "POST /pins answered \(code): \(object)")
        guard let id = object["requestid"] as? String else { throw HarnessFailure(description: "POST /pins: no requestid in \(object)") }
        return id
    }

    /// A Kubo's recursive pins with their names (`pin/ls`, one-shot), over its RPC API.
    public func kuboPinList(kuboURL: String) async throws -> [(cid: String, name: String)] {
        var request = HTTPClientRequest(url: "\(kuboURL)/api/v0/pin/ls?type=recursive&names=true")
        request.method = .POST
        let response = try await http.execute(request, timeout: .seconds(10))
        let bytes = try await response.body.collect(upTo: 1 << 26)
        try require(response.status == .ok, "pin/ls answered \(response.status)")
        let object = (try? JSONSerialization.jsonObject(with: Data(buffer: bytes))) as? [String: Any] ?? [:]
        let keys = object["Keys"] as? [String: [String: Any]] ?? [:]
        return keys.map { ($0.key, $0.value["Name"] as? String ?? "") }
    }

    public func setKuboKnobs(_ node: Node, _ json: String) async throws {
        var request = HTTPClientRequest(url: "\(node.kuboURL)/fake/knobs")
        request.method = .POST
        request.body = .bytes(ByteBuffer(string: json))
        let response = try await http.execute(request, timeout: .seconds(3))
        _ = try await response.body.collect(upTo: 1 << 20)
        try require(response.status == .ok, "POST /fake/knobs answered \(response.status)")
    }

    // MARK: admin CLI

    public func admin(_ args: [String]) async throws -> (Int32, String) {
        let child = try ChildProcess(Self.anchorage, ["admin"] + args, environment: environment())
        while child.poll() == nil { try await Task.sleep(for: .milliseconds(50)) }
        let out = child.output
        unlink(child.outputPath)
        return (child.wait(), out)
    }

    // MARK: PostgreSQL views

    public struct PlacementRow: Sendable, Equatable {
        public var pin: TypeID
        public var node: TypeID
        public var status: String
    }

    public func placements() async throws -> [PlacementRow] {
        var out: [PlacementRow] = []
        let rows = try await ops.query("SELECT pin_id, node_id, status FROM placements ORDER BY pin_id, node_id", logger: Logger(label: "harness"))
        for try await (p, n, s) in rows.decode((UUID, UUID, String).self) {
            out.append(PlacementRow(pin: TypeID(prefix: "pin", uuid: p), node: TypeID(prefix: "nod", uuid: n), status: s))
        }
        return out
    }

    /// Pins with no pinned placement at all (must stay empty while placements move).
    public func pinsWithoutAPinnedReplica() async throws -> Int {
        let rows = try await ops.query(
            """
            SELECT count(*)::int8 FROM pins p
            WHERE NOT EXISTS (SELECT 1 FROM placements pl WHERE pl.org_id = p.org_id AND pl.pin_id = p.id AND pl.status = 'pinned')
            """,
            logger: Logger(label: "harness")
        )
        for try await n in rows.decode(Int64.self) { return Int(n) }
        return 0
    }

    public func audit(_ action: String) async throws -> [(subject: String, detail: [String: String], fence: Int64?)] {
        var out: [(String, [String: String], Int64?)] = []
        let rows = try await ops.query(
            "SELECT subject, detail::text, fence FROM audit_log WHERE action = \(action) ORDER BY at, id",
            logger: Logger(label: "harness")
        )
        for try await (s, d, f) in rows.decode((String, String, Int64?).self) {
            let detail = (try? JSONSerialization.jsonObject(with: Data(d.utf8))) as? [String: String] ?? [:]
            out.append((s, detail, f))
        }
        return out
    }

    /// The newest leader term: (fence, node).
    public func leaderTerm() async throws -> (fence: Int64, node: TypeID)? {
        let rows = try await ops.query("SELECT fence, node_id FROM leader_terms ORDER BY fence DESC LIMIT 1", logger: Logger(label: "harness"))
        for try await (f, n) in rows.decode((Int64, UUID).self) { return (f, TypeID(prefix: "nod", uuid: n)) }
        return nil
    }

    public func pinnedCount() async throws -> Int {
        let (code, object) = try await api(nodes.first { $0.serve?.poll() == nil } ?? nodes[0], .GET, "/pins?status=pinned&limit=1")
        return code == 200 ? (object["count"] as? Int ?? -1) : -1
    }
}

/// Polls `condition` until it holds or `timeout` passes (then records a failure and throws).
public func eventually(
    _ what: String,
    timeout: Duration,
    every: Duration = .milliseconds(200),
    _ condition: @Sendable () async throws -> Bool
) async throws {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if (try? await condition()) == true { return }
        try await Task.sleep(for: every)
    }
    if try await condition() { return }
    throw HarnessFailure(description: "timed out after \(timeout): \(what)")
}

/// A harness step that did not hold: thrown, so the test that called it fails with this text.
public struct HarnessFailure: Error, CustomStringConvertible {
    public let description: String
    public init(description: String) { self.description = description }
}

/// Throws a ``HarnessFailure`` saying `message` unless `condition` holds.
public func require(_ condition: Bool, _ message: @autoclosure () -> String) throws {
    if !condition { throw HarnessFailure(description: message()) }
}

/// CIDs that rendezvous places on `node` (and on `replicas` nodes in all) among `nodes`.
public func cids(placedOn node: TypeID, among nodes: [TypeID], replicas: Int, count: Int, namespace: UInt64) -> [String] {
    var out: [String] = []
    var i: UInt64 = 0
    while out.count < count {
        let cid = CIDText.synthetic(i, namespace: namespace)
        if Rendezvous.choose(cid: cid, among: nodes, replicas: replicas).contains(node) { out.append(cid) }
        i += 1
    }
    return out
}
