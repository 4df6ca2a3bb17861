import Hummingbird
import LocalPostgres
import Logging
import Pins
import PinsHTTP
import PostgresNIO
import PostgresStore
import Seams
import Sim
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

/// A node's worth of wiring over a fresh database: the real Postgres stores, the real router,
/// a virtual clock and seeded entropy so that every run is the same.
public struct TestNode: Sendable {
    public let database: LocalPostgres.Database
    public let clock: VirtualWallClock
    public let entropy: SeededEntropy
    public let apiClient: PostgresClient
    public let opsClient: PostgresClient
    public let store: PostgresPinStore
    public let admin: PostgresAdmin
    public let lookup: PostgresTokenLookup
    public let service: PinService<PostgresPinStore>
    public let delegates: [String]

    public static let defaultDelegates = ["/ip4/203.0.113.7/tcp/4001/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN"]

    public func router(logRequests: Bool = false) -> Router<AppRequestContext> {
        router(service: service, logRequests: logRequests)
    }

    /// The real router over another service (e.g. one that places pins, `placingService`).
    public func router(service: PinService<PostgresPinStore>, logRequests: Bool = false) -> Router<AppRequestContext> {
        let verifier = TokenVerifier(keys: lookup, denylist: lookup, clock: clock)
        return makeRouter(
            HTTPDependencies(
                service: service, verifier: verifier, delegates: StaticDelegates(delegates),
                readiness: ReadinessProbe { await lookup.notReadyReason() }, logRequests: logRequests))
    }

    /// The pin service as `serve` runs it with its worker on: every new pin is placed on `node`.
    public func placingService(on node: TypeID) -> PinService<PostgresPinStore> {
        PinService(
            store: store, clock: clock, entropy: entropy, limits: service.limits, options: service.options,
            placement: { _ in [node] })
    }

    /// A pin worker for `node` over this database (ops role) and the given Kubo.
    public func worker(node: TypeID, kubo: any KuboAPI, settings: WorkerSettings = WorkerSettings()) -> PinWorker {
        PinWorker(
            node: node, store: PostgresPlacementStore(client: opsClient, logger: Logger(label: "anchorage.test.worker")),
            kubo: kubo, clock: clock, entropy: entropy, settings: settings, logger: Logger(label: "anchorage.test.worker"))
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
    limits: Limits = Limits(), options: APIOptions = APIOptions(), seed: UInt64 = 1,
    _ body: (TestNode) async throws -> T
) async throws -> T {
    let database = try await SharedPostgres.shared.freshDatabase()
    let logger = Logger(label: "anchorage.test")
    let api = PostgresClient(configuration: database.api.clientConfiguration(maxConnections: 8), backgroundLogger: logger)
    let ops = PostgresClient(configuration: database.ops.clientConfiguration(maxConnections: 4), backgroundLogger: logger)
    let clock = VirtualWallClock()
    let entropy = SeededEntropy(seed: seed)
    return try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { await api.run() }
        group.addTask { await ops.run() }
        defer { group.cancelAll() }
        let store = PostgresPinStore(client: api, logger: logger)
        let node = TestNode(
            database: database, clock: clock, entropy: entropy, apiClient: api, opsClient: ops, store: store,
            admin: PostgresAdmin(client: ops, clock: clock, entropy: entropy, logger: logger),
            lookup: PostgresTokenLookup(client: api, logger: logger),
            service: PinService(store: store, clock: clock, entropy: entropy, limits: limits, options: options),
            delegates: TestNode.defaultDelegates)
        return try await body(node)
    }
}
