import Caches
import Cluster
import Logging
import Seams
import ServiceLifecycle

/// Keeps the node's caches in step with the cluster: once the node has joined, it listens on
/// `cache.invalidate.>` and applies what it hears within `interval` (100 ms), independent of
/// the cluster agent's step (a slow duty must not delay a revocation), and answers
/// `admin cache-stats` requests on `cache.stats`.
struct CacheService: Service {
    let node: Node
    let logger: Logger
    static let interval = Duration.milliseconds(100)

    func run() async throws {
        await cancelWhenGracefulShutdown {
            var inboxes: (invalidations: any BusInbox, stats: any BusInbox, bus: any ClusterBus)?
            while !Task.isCancelled {
                if inboxes == nil, let joined = node.runtime.value {
                    do {
                        let invalidations = try await joined.bus.subscribe(CacheInvalidation.allSubjects, capacity: 4096)
                        let stats = try await joined.bus.subscribe(CacheStatsExchange.subject, capacity: 64)
                        inboxes = (invalidations, stats, joined.bus)
                    } catch {
                        logger.warning("could not subscribe to cache invalidations; retrying", metadata: ["error": "\(error)"])
                    }
                }
                if let (invalidations, stats, bus) = inboxes {
                    for message in await invalidations.drain() {
                        guard let invalidation = CacheInvalidation.decode(subject: message.subject, message.payload) else { continue }
                        await node.caches.apply(invalidation, logger: logger)
                    }
                    for message in await stats.drain() {
                        guard let request = CacheStatsExchange.decodeRequest(message.payload) else { continue }
                        let reply = CacheStatsExchange.Reply(
                            node: node.id.description,
                            name: node.environment.nodeName,
                            caches: await node.cacheStats()
                        )
                        try? await bus.publish(request.reply, CacheStatsExchange.encode(reply))
                    }
                }
                try? await Task.sleep(for: Self.interval)
            }
        }
    }
}
