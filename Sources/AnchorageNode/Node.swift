import Caches
import Cluster
import Hummingbird
import Logging
import Observability
import Pins
import PinsHTTP
import PostgresNIO
import PostgresStore
import Seams
import ServiceLifecycle
import Tokens
import Worker

/// Everything a node reaches outside itself. `anchorage serve` passes the live environment
/// (wall clock, system entropy, NATS, the Kubo RPC client, PostgreSQL); the tests, the benchmark
/// and every simulated node pass theirs. The caller owns and runs the PostgreSQL clients.
public struct NodeEnvironment: Sendable {
    public var nodeID: TypeID
    /// A human name for the node (the host name in production).
    public var nodeName: String
    /// Where operators reach the node's HTTP API (shown by `admin cluster-presences`).
    public var nodeAddress: String?
    public var version: String
    public var clock: any WallClock
    public var entropy: any Entropy
    /// The API role's client (forced row-level security).
    public var api: PostgresClient
    /// The ops role's client; without it the node only stores pins (no worker, no cluster).
    public var ops: PostgresClient?
    /// The paired Kubo; without it there is no worker (pins are still placed on this node).
    public var kubo: (any KuboAPI)?
    /// Connects to the bus (clustered nodes); called again after a failed join.
    public var connectBus: (@Sendable () async throws -> any ClusterBus)?
    /// The addresses answered as `delegates`.
    public var delegates: [String]
    /// A logger for a component label (`anchorage.worker`, …).
    public var logger: @Sendable (String) -> Logger
    /// Wraps the cluster store (the simulator observes leader writes and plants broken policies
    /// here; production passes nil).
    public var decorateClusterStore: (@Sendable (any ClusterStore) -> any ClusterStore)?
    /// Opens the signing secrets sealed at rest (`auth.secretsKeyFile`); none: stored in clear.
    public var sealer: SecretSealer
    /// The pools' sizes when their clients carry ``DatabasePool/applicationName(node:)``: the
    /// node then samples its connections from `pg_stat_activity` for `/metrics`.
    public var poolSizes: [DatabasePool: Int] = [:]

    public init(
        nodeID: TypeID,
        nodeName: String,
        version: String,
        clock: any WallClock,
        entropy: any Entropy,
        api: PostgresClient,
        ops: PostgresClient? = nil,
        kubo: (any KuboAPI)? = nil,
        connectBus: (@Sendable () async throws -> any ClusterBus)? = nil,
        delegates: [String],
        logger: @escaping @Sendable (String) -> Logger = { Logger(label: $0) },
        decorateClusterStore: (@Sendable (any ClusterStore) -> any ClusterStore)? = nil,
        sealer: SecretSealer = SecretSealer()
    ) {
        self.sealer = sealer
        self.nodeID = nodeID
        self.nodeName = nodeName
        self.version = version
        self.clock = clock
        self.entropy = entropy
        self.api = api
        self.ops = ops
        self.kubo = kubo
        self.connectBus = connectBus
        self.delegates = delegates
        self.logger = logger
        self.decorateClusterStore = decorateClusterStore
    }
}

/// What the HTTP layer and the worker need from the cluster once the node has joined.
public struct ClusterRuntime: Sendable {
    public let agent: ClusterAgent
    public let bus: any ClusterBus
}

/// One assembled node: its API, its pin worker and its cluster agent's factory, plus the
/// production shells that run them (``services``). Built only by ``buildNode(_:_:)``.
public struct Node: @unchecked Sendable {
    // @unchecked: Hummingbird's `Router` is a builder class; it is complete when `buildNode`
    // returns and only read after (by `Application`, or a test client), like every other field.
    public let id: TypeID
    public let configuration: NodeConfiguration
    public let environment: NodeEnvironment
    public let service: PinService<PostgresPinStore>
    public let router: Router<AppRequestContext>
    /// Nil when the node only stores pins (worker off, or no ops role or Kubo).
    public let worker: PinWorker?
    /// Whether the node takes part in a cluster (placement by rendezvous, jobs on the bus).
    public let isClustered: Bool
    public let policy: PlacementPolicy
    /// The joined cluster, once ``join()`` succeeded (nil before and after).
    public let runtime: LockedBox<ClusterRuntime?>
    let clusterStore: (any ClusterStore)?
    /// This node's Prometheus registry and families (`/metrics`).
    public let metrics: NodeMetrics
    /// The denylist and signing-key caches (the live set is the cluster agent's).
    public let caches: NodeCaches
    /// The `/metrics` endpoint (served by ``router`` unless `metrics.listen` names its own
    /// listener; nil when `metrics.enabled` is off).
    public let metricsEndpoint: MetricsEndpoint?

    /// Every cache's numbers, for `/metrics` and `admin cache-stats`.
    public func cacheStats() async -> [CacheStats] {
        let status = await runtime.value?.agent.status
        return await caches.stats(cluster: status, heartbeatSeconds: configuration.cluster.heartbeatSeconds)
    }

    /// Revokes a token on behalf of its org or an operator: the denylist row (ops role), this
    /// node's cache at once, and every other node's through `cache.invalidate.denylist`. If the
    /// bus is down the others refuse it within `cache.denylist.ttlSeconds`.
    public func revokeToken(_ id: TypeID) async throws {
        guard let ops = environment.ops else { throw ConfigurationError("revoking a token needs the ops database role") }
        let admin = PostgresAdmin(client: ops, clock: environment.clock, entropy: environment.entropy, logger: environment.logger("anchorage.db"))
        try await admin.revokeToken(id)
        caches.denylist?.revoked(id)
        await announce(CacheInvalidation(cache: .denylist, key: id.description, from: self.id.description))
    }

    /// Publishes an invalidation for the other nodes (best effort: their TTL bounds a loss).
    public func announce(_ invalidation: CacheInvalidation) async {
        guard let bus = runtime.value?.bus else { return }
        do {
            try await invalidation.publish(on: bus)
            if invalidation.cache == .denylist { caches.denylist?.cache.countSent() }
        } catch {
            environment.logger("anchorage.cache").warning(
                "could not announce a cache invalidation; other nodes catch up within the cache TTL",
                metadata: ["cache": "\(invalidation.cache.rawValue)", "error": "\(error)"]
            )
        }
    }

    /// Connects to the bus, makes the cluster agent and starts it (register, subscribe, open
    /// the job queue); on success the runtime is published for the API and the worker.
    public func join() async throws -> ClusterRuntime {
        guard isClustered, let connect = environment.connectBus, let clusterStore else {
            throw ConfigurationError("this node is not clustered")
        }
        let bus = try await connect()
        let agent = ClusterAgent(
            node: id,
            name: environment.nodeName,
            address: environment.nodeAddress,
            version: environment.version,
            bus: bus,
            store: clusterStore,
            kubo: environment.kubo,
            clock: environment.clock,
            settings: configuration.cluster,
            policy: policy,
            logger: environment.logger("anchorage.cluster")
        )
        try await agent.start()
        let joined = ClusterRuntime(agent: agent, bus: bus)
        runtime.value = joined
        metrics.observe(cluster: await agent.status)
        return joined
    }

    /// A worker loop whose performed actions are this node's, with `hooks` for the shell.
    public func workerLoop(hooks: WorkerLoop.Hooks) -> WorkerLoop? {
        worker.map { WorkerLoop(worker: $0, hooks: hooks) }
    }

    /// The clean shutdown's first step on a clustered node (nil standalone): to be listed last
    /// in the `ServiceGroup`, after the HTTP server, since a group stops services in reverse
    /// order. The leader gives up its lease before the node stops serving and pinning.
    public var leaseHandover: (any Service)? { isClustered ? LeaseHandover(node: self) : nil }

    /// The production shells, to run in a `ServiceGroup` beside the HTTP server and the
    /// PostgreSQL clients: the cluster service (clustered), the worker service (when there is a
    /// worker), or a one-off registration (standalone).
    public var services: [any Service] {
        var out: [any Service] = []
        let logger = environment.logger("anchorage.node")
        if isClustered {
            out.append(ClusterService(node: self, logger: environment.logger("anchorage.cluster")))
        } else if let ops = environment.ops, worker != nil {
            out.append(RegisterNode(id: id, name: environment.nodeName, client: ops, clock: environment.clock, logger: logger))
        }
        if worker != nil {
            out.append(WorkerService(node: self, logger: environment.logger("anchorage.worker")))
        }
        if isClustered {
            out.append(CacheService(node: self, logger: environment.logger("anchorage.cache")))
        }
        if !environment.poolSizes.isEmpty {
            out.append(DatabaseSampler(node: self, logger: environment.logger("anchorage.db")))
        }
        return out
    }
}

/// Assembles a node from its configuration and environment: the one place where the pin
/// service, the router, the worker and the cluster are wired (DESIGN §9). `anchorage serve`,
/// the test kit, the benchmark, the conformance targets and every simulated node call it.
public func buildNode(_ configuration: NodeConfiguration, _ environment: NodeEnvironment) -> Node {
    let env = environment
    let dbLogger = env.logger("anchorage.db")
    let metrics = NodeMetrics(version: env.version, maintenanceMaxSeconds: configuration.cluster.maintenanceMaxSeconds)
    let store = PostgresPinStore(
        client: env.api,
        maxPinsPerOrg: configuration.limits.maxPinsPerOrg,
        coalescing: configuration.coalescing,
        observeBatch: { metrics.createBatch(size: $0, queued: $1) },
        logger: dbLogger
    )
    let lookup = PostgresTokenLookup(client: env.api, sealer: env.sealer, logger: dbLogger)

    // The worker serves every org, so it runs with the ops role.
    let places = configuration.workerEnabled && env.ops != nil
    var worker: PinWorker?
    if places, let ops = env.ops, let kubo = env.kubo {
        var settings = configuration.worker
        // In a cluster the leader's sweeper requeues abandoned claims of every node.
        settings.requeueOwnExpired = !configuration.clusterEnabled
        worker = PinWorker(
            node: env.nodeID,
            store: PostgresPlacementStore(client: ops, minReplicas: configuration.cluster.minReplicas, logger: dbLogger),
            kubo: kubo,
            clock: env.clock,
            entropy: env.entropy,
            settings: settings,
            logger: env.logger("anchorage.worker")
        )
    }
    let clustered = configuration.clusterEnabled && worker != nil && env.connectBus != nil
    var clusterStore: (any ClusterStore)?
    if clustered, let ops = env.ops {
        let postgres = PostgresClusterStore(client: ops, entropy: env.entropy, minReplicas: configuration.cluster.minReplicas, logger: dbLogger)
        clusterStore = env.decorateClusterStore?(postgres) ?? postgres
    }

    let keyRing = KeyRing(source: lookup, clock: env.clock, refreshSeconds: configuration.keyCacheSeconds)
    // The denylist is asked on every authenticated request: cached, it costs no query while an
    // answer is younger than the TTL; revocations arrive as invalidations (CacheService). A
    // standalone node hears none, so by default it asks PostgreSQL every time.
    let denylistTTL = configuration.denylistCacheSeconds ?? (clustered ? NodeConfiguration.clusteredDenylistCacheSeconds : 0)
    let cachedDenylist: CachedDenylist? =
        denylistTTL > 0
        ? CachedDenylist(
            source: lookup,
            cache: BoundedCache(
                name: CacheName.denylist.rawValue,
                capacity: configuration.denylistCacheEntries,
                ttlSeconds: denylistTTL,
                clock: env.clock
            )
        ) : nil
    let caches = NodeCaches(denylist: cachedDenylist, keys: keyRing)
    let verifier = TokenVerifier(
        keys: keyRing,
        denylist: cachedDenylist ?? lookup,
        clock: env.clock,
        leewaySeconds: configuration.leewaySeconds
    )

    // Clustered: placement by rendezvous over the live set, one job per placement on the bus
    // once the pin is stored. Standalone: every pin is placed on this node. Storage only:
    // pins are stored, never placed.
    let runtime = LockedBox<ClusterRuntime?>(nil)
    let policy = PlacementPolicy(replicationFactor: configuration.cluster.replicationFactor)
    let nodeID = env.nodeID
    let clusterLogger = env.logger("anchorage.cluster")
    let service = PinService(
        store: store,
        clock: env.clock,
        entropy: env.entropy,
        limits: configuration.limits,
        options: configuration.api,
        placement: { request in
            guard places else { return [] }
            guard clustered else { return [nodeID] }
            return policy.nodes(for: request.cidKey)  // one CID, one placement, whatever its spelling
        },
        placed: { org, pin in
            guard clustered else { return }
            if pin.nodes.isEmpty {
                // Accepted with no live, active node to take it: the leader places it once one
                // is eligible again. Said once per episode; counted in /v1/ready and /metrics.
                metrics.pinAcceptedUnplaced()
                if policy.acceptedUnplaced(at: pin.created) {
                    clusterLogger.warning(
                        "accepted a pin no node can take: it waits until a node is active",
                        metadata: ["pin": "\(pin.id)", "org": "\(org)", "eligible": "0"]
                    )
                }
            }
            guard let joined = runtime.value else { return }
            let dispatches = Dispatch.forNewPin(org: org, pin: pin.id, cid: pin.request.cidKey, nodes: pin.nodes, created: pin.created)
            await ClusterAgent.publish(dispatches, bus: joined.bus, logger: clusterLogger)
        }
    )
    // A probe every second from a load balancer must not become a query each: the database's
    // answer is reused for a second.
    let runtimeForMetrics = runtime
    let heartbeatSeconds = configuration.cluster.heartbeatSeconds
    let metricsEndpoint: MetricsEndpoint? =
        configuration.metrics.enabled
        ? MetricsEndpoint(policy: configuration.metrics.policy) {
            // Memory only: the caches' numbers and the last NATS state; the cluster's come in
            // after every agent step (ClusterService), the leader's counts on their interval.
            let status = await runtimeForMetrics.value?.agent.status
            metrics.observe(caches: await caches.stats(cluster: status, heartbeatSeconds: heartbeatSeconds))
            if let health = runtimeForMetrics.value?.bus as? any BusHealth {
                metrics.observe(natsConnected: health.isConnected, reconnects: health.reconnects)
            }
            return metrics.render()
        } : nil
    let schemaReadiness = CachedReadiness(clock: env.clock, maxAgeMicroseconds: 1_000_000) { await lookup.notReadyReason() }
    let router = makeRouter(
        HTTPDependencies(
            service: service,
            verifier: verifier,
            delegates: StaticDelegates(env.delegates),
            readiness: ReadinessProbe {
                if let reason = await schemaReadiness.notReadyReason() { return reason }
                guard clustered else { return nil }
                guard let joined = runtime.value else { return "joining the cluster (NATS not reachable yet)" }
                return await joined.agent.notReadyReason()
            } unplaced: {
                policy.unplaced.map { UnplacedPins(count: $0.count, since: $0.since) }
            },
            logRequests: configuration.logRequests,
            observer: metrics,
            metrics: configuration.metrics.listen == nil ? metricsEndpoint : nil
        )
    )
    return Node(
        id: env.nodeID,
        configuration: configuration,
        environment: env,
        service: service,
        router: router,
        worker: worker,
        isClustered: clustered,
        policy: policy,
        runtime: runtime,
        clusterStore: clusterStore,
        metrics: metrics,
        caches: caches,
        metricsEndpoint: metricsEndpoint
    )
}

/// A bus that can say whether it is connected (NATS; for `/metrics`).
public protocol BusHealth: Sendable {
    var isConnected: Bool { get }
    var reconnects: Int { get }
}

extension NodeMetrics: HTTPObserver {}

/// The node's PostgreSQL pools, as `/metrics` labels them.
public enum DatabasePool: String, Sendable, CaseIterable {
    case api, ops

    /// The `application_name` a pool's connections carry (`anchorage-api-nod_…`).
    public func applicationName(node: TypeID) -> String { "anchorage-\(rawValue)-\(node)" }
}
