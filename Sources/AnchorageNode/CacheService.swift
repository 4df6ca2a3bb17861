import Caches
import Cluster
import Logging
import Seams
import ServiceLifecycle

/// Keeps a node's caches in step with the cluster: once the node has joined, it listens on
/// `cache.invalidate.>` and applies what it heard, and answers `admin cache-stats` requests on
/// `cache.stats`. Each ``pump()`` does what arrived since the last one; production pumps every
/// 100 ms (``CacheService``), independent of the cluster agent's step, so a slow duty never
/// delays a revocation; the simulator pumps from its scheduler.
public actor CacheListener {
    let node: Node
    let logger: Logger
    var inboxes: (invalidations: any BusInbox, stats: any BusInbox, bus: any ClusterBus)?

    public init(node: Node, logger: Logger) {
        self.node = node
        self.logger = logger
    }

    public func pump() async {
        if inboxes == nil, let joined = node.runtime.value {
            do {
                let invalidations = try await joined.bus.subscribe(CacheInvalidation.allSubjects, capacity: 4096)
                let stats = try await joined.bus.subscribe(CacheStatsExchange.subject, capacity: 64)
                inboxes = (invalidations, stats, joined.bus)
            } catch {
                logger.warning("could not subscribe to cache invalidations; retrying", metadata: ["error": "\(error)"])
            }
        }
        guard let (invalidations, stats, bus) = inboxes else { return }
        for message in await invalidations.drain() {
            guard let invalidation = CacheInvalidation.decode(subject: message.subject, message.payload) else { continue }
            await node.caches.apply(invalidation, logger: logger)
        }
        for message in await stats.drain() {
            guard let request = CacheStatsExchange.decodeRequest(message.payload) else { continue }
            let reply = CacheStatsExchange.Reply(node: node.id.description, name: node.environment.nodeName, caches: await node.cacheStats())
            try? await bus.publish(request.reply, CacheStatsExchange.encode(reply))
        }
    }

    /// Stops listening (shutdown, or a simulated crash).
    public func close() async {
        guard let (invalidations, stats, _) = inboxes else { return }
        await invalidations.close()
        await stats.close()
        inboxes = nil
    }
}

/// The production shell of ``CacheListener``: a pump every 100 ms until shutdown.
struct CacheService: Service {
    let node: Node
    let logger: Logger
    static let interval = Duration.milliseconds(100)

    func run() async throws {
        let listener = CacheListener(node: node, logger: logger)
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await listener.pump()
                try? await Task.sleep(for: Self.interval)
            }
        }
        await listener.close()
    }
}
