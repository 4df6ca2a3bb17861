import AnchorageNode
import DeterministicSeams
import Hummingbird
import LocalPostgres
import Logging
import Pins
import PinsHTTP
import PostgresNIO
import PostgresStore
import Seams
import ServiceLifecycle
import Tokens
import Worker

/// One throwaway PostgreSQL cluster per test process, with a migrated template database from
/// which every test clones its own database (fast, and tests never share rows).
public actor SharedPostgres {
    public static let shared = SharedPostgres()
    static let template = "anchorage_template"

    private var cluster: Task<LocalPostgres, any Error>?
    private var counter = 0
    private let logger = Logger(label: "anchorage.test.postgres")

    /// The cluster, started on first use. Memoised as a task so that concurrent first callers
    /// (tests run in parallel) share one start instead of racing to make two.
    public func local() async throws -> LocalPostgres {
        if let cluster { return try await cluster.value }
        let logger = self.logger
        let task = Task {
            let pg = try await LocalPostgres.start(logger: logger)
            _ = try await pg.createDatabase(Self.template, clock: VirtualWallClock(), logger: logger)
            return pg
        }
        cluster = task
        return try await task.value
    }

    /// A new database cloned from the migrated template.
    public func freshDatabase() async throws -> LocalPostgres.Database {
        let pg = try await local()
        counter += 1
        return try await pg.createDatabase("test_\(counter)", template: Self.template, clock: VirtualWallClock(), logger: logger)
    }
}

/// A node's worth of wiring over a fresh database, built by the production node builder
/// (`buildNode`) with a virtual clock and seeded entropy so that every run is the same.
/// `service` and `router()` are a storage-only node's (no worker); ``node(id:kubo:configure:)``
/// builds a standalone node that places pins on itself and has a worker when given a Kubo.
public struct TestNode: Sendable {
    public let database: LocalPostgres.Database
    public let clock: VirtualWallClock
    public let entropy: SeededEntropy
    public let apiClient: PostgresClient
    public let opsClient: PostgresClient
    public let admin: PostgresAdmin
    public let lookup: PostgresTokenLookup
    public let delegates: [String]
    /// Production's defaults, standalone (no NATS), with the limits and options of the test.
    public let configuration: NodeConfiguration
    /// The storage-only node (`worker.enabled` off): its service never places pins.
    public let storage: Node

    public static let defaultDelegates = ["/ip4/203.0.113.7/tcp/4001/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN"]
    static let storageNodeID = TypeID(prefix: IDPrefix.node, high: 0x0193_0000_0000_7000, low: 0x8000_0000_0000_0001)

    public var service: PinService<PostgresPinStore> { storage.service }
    public var store: PostgresPinStore { storage.service.store }

    public func router(logRequests: Bool = false) -> Router<AppRequestContext> {
        var configuration = configuration
        configuration.logRequests = logRequests
        configuration.workerEnabled = false
        return buildNode(configuration, environment(id: Self.storageNodeID, ops: nil, kubo: nil)).router
    }

    func environment(
        id: TypeID,
        ops: PostgresClient?,
        kubo: (any KuboAPI)?,
        bus: (@Sendable () async throws -> any ClusterBus)? = nil,
        logger: (@Sendable (String) -> Logger)? = nil
    ) -> NodeEnvironment {
        NodeEnvironment(
            nodeID: id,
            nodeName: "test",
            version: "test",
            clock: clock,
            entropy: entropy,
            api: apiClient,
            ops: ops,
            kubo: kubo,
            connectBus: bus,
            delegates: delegates,
            logger: logger ?? { Logger(label: $0) },
            sealer: Self.sealer
        )
    }

    /// Every test node seals its signing secrets, as production does with `auth.secretsKeyFile`.
    public static let sealer = SecretSealer(current: try! SecretSealer.Key(bytes: Array(repeating: 0xA5, count: 32)))

    /// A standalone node `id` (every new pin placed on it) through the production builder; with
    /// a Kubo it has a worker (`node.worker`, or run `node.services` for the production shell).
    /// With `bus` (and `cluster.enabled` set by `configure`) the node is clustered.
    /// `logger` makes each component's logger (default: swift-log's bootstrap).
    public func node(
        id: TypeID,
        kubo: (any KuboAPI)? = nil,
        configure: (inout NodeConfiguration) -> Void = { _ in },
        bus: (@Sendable () async throws -> any ClusterBus)? = nil,
        logger: (@Sendable (String) -> Logger)? = nil
    ) -> Node {
        var configuration = configuration
        configure(&configuration)
        return buildNode(configuration, environment(id: id, ops: opsClient, kubo: kubo, bus: bus, logger: logger))
    }

    /// The pin service as `serve` runs it with its worker on: every new pin is placed on `node`.
    public func placingService(on node: TypeID) -> PinService<PostgresPinStore> {
        self.node(id: node).service
    }

    /// A pin worker for `node` over this database (ops role) and the given Kubo.
    public func worker(node: TypeID, kubo: any KuboAPI, settings: WorkerSettings = WorkerSettings()) -> PinWorker {
        // Non-nil: the node has the ops role and a Kubo.
        self.node(id: node, kubo: kubo) { $0.worker = settings }.worker!
    }

    /// Mints a token for the org named `org`, creating the org if needed.
    public func token(org: String, ttlSeconds: Int64 = 3600) async throws -> String {
        try await mint(org: org, ttlSeconds: ttlSeconds).token
    }

    public func mint(org: String, ttlSeconds: Int64 = 3600) async throws -> PostgresAdmin.MintedToken {
        let existing = try await admin.org(named: org)
        let id: TypeID
        if let existing { id = existing.id } else { id = try await admin.createOrg(name: org).id }
        return try await admin.mintToken(org: id, name: "test", ttlSeconds: ttlSeconds)
    }
}

/// Runs `body` with a `TestNode` on a fresh database; the Postgres clients run for exactly as
/// long as the body (structured: no task outlives the call).
public func withTestNode<T: Sendable>(
    limits: Limits = Limits(),
    options: APIOptions = APIOptions(),
    seed: UInt64 = 1,
    _ body: (TestNode) async throws -> T
) async throws -> T {
    let database = try await SharedPostgres.shared.freshDatabase()
    let logger = Logger(label: "anchorage.test")
    let production = NodeConfiguration()
    let api = PostgresClient(
        configuration: database.api.clientConfiguration(maxConnections: 8, statementTimeoutSeconds: production.dbStatementTimeoutSeconds),
        backgroundLogger: logger
    )
    let ops = PostgresClient(
        configuration: database.ops.clientConfiguration(maxConnections: 4, statementTimeoutSeconds: production.dbOpsStatementTimeoutSeconds),
        backgroundLogger: logger
    )
    let clock = VirtualWallClock()
    let entropy = SeededEntropy(seed: seed)
    var configuration = NodeConfiguration()
    configuration.clusterEnabled = false
    configuration.limits = limits
    configuration.api = options
    configuration.logRequests = false
    // Tokens are minted and revoked mid-test; a key cache would hide a rotation for 30 s.
    configuration.keyCacheSeconds = 0
    // Likewise the denylist cache: these tests revoke through PostgreSQL directly, where no node
    // hears the invalidation (DenylistCacheTests and the cluster tests cover the cache).
    configuration.denylistCacheSeconds = 0
    var storageConfiguration = configuration
    storageConfiguration.workerEnabled = false
    return try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { await api.run() }
        group.addTask { await ops.run() }
        defer { group.cancelAll() }
        let storage = buildNode(
            storageConfiguration,
            NodeEnvironment(
                nodeID: TestNode.storageNodeID,
                nodeName: "test",
                version: "test",
                clock: clock,
                entropy: entropy,
                api: api,
                delegates: TestNode.defaultDelegates,
                sealer: TestNode.sealer
            )
        )
        let node = TestNode(
            database: database,
            clock: clock,
            entropy: entropy,
            apiClient: api,
            opsClient: ops,
            admin: PostgresAdmin(client: ops, clock: clock, entropy: entropy, sealer: TestNode.sealer, logger: logger),
            lookup: PostgresTokenLookup(client: api, sealer: TestNode.sealer, logger: logger),
            delegates: TestNode.defaultDelegates,
            configuration: configuration,
            storage: storage
        )
        return try await body(node)
    }
}

/// Runs `node`'s production shells (`node.services`: the worker service, and the cluster
/// service or registration) for exactly as long as `body` runs.
public func withRunning<T: Sendable>(_ node: Node, _ body: () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: Void.self) { group in
        for service in node.services {
            group.addTask { try await service.run() }
        }
        defer { group.cancelAll() }
        return try await body()
    }
}
