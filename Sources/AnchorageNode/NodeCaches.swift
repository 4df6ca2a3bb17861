import Caches
import Cluster
import Logging
import Seams
import Tokens

/// The node's caches: the token denylist and the signing keys (both on every request's path),
/// and the live-node set (kept by the cluster agent from heartbeats). Invalidations arrive on
/// `cache.invalidate.<cache>` from whichever node or admin command changed the row
/// (``CacheService``); ``stats(cluster:)`` answers `/metrics` and `admin cache-stats`.
public struct NodeCaches: Sendable {
    /// Nil when `cache.denylist.ttlSeconds` is 0 (every request asks PostgreSQL).
    public let denylist: CachedDenylist?
    public let keys: KeyRing

    /// Applies an invalidation received from the bus (or made on this node).
    public func apply(_ message: CacheInvalidation, logger: Logger) async {
        switch message.cache {
        case .denylist:
            guard let denylist else { return }
            if let id = TypeID(parsing: message.key, prefix: IDPrefix.token) {
                denylist.revoked(id)
            } else {
                denylist.cache.invalidateAll()
            }
        case .signingKeys:
            await keys.invalidate()
        case .liveNodes:
            break  // the cluster agent listens for these itself (it owns the live set)
        }
        logger.debug(
            "cache invalidated",
            metadata: ["cache": "\(message.cache.rawValue)", "key": "\(message.key.prefix(64))", "from": "\(message.from.prefix(64))"]
        )
    }

    /// Every cache's numbers; the live set's come from the agent's last status.
    public func stats(cluster: ClusterStatus?, heartbeatSeconds: Int64) async -> [CacheStats] {
        var out: [CacheStats] = []
        if let denylist { out.append(denylist.cache.stats()) }
        let ring = await keys.snapshot()
        var keyCounters = CacheCounters()
        keyCounters.hits = await keys.hits
        keyCounters.misses = await keys.loads
        keyCounters.invalidationsReceived = await keys.invalidations
        out.append(
            CacheStats(
                cache: CacheName.signingKeys.rawValue,
                entries: ring.entries,
                capacity: ring.entries,
                ttlSeconds: await keys.refreshSeconds,
                counters: keyCounters,
                oldestEntryAgeSeconds: ring.ageMicroseconds.map { Double($0) / 1_000_000 }
            )
        )
        if let cluster {
            var live = CacheCounters()
            live.invalidationsReceived = cluster.liveNodeInvalidations
            out.append(
                CacheStats(
                    cache: CacheName.liveNodes.rawValue,
                    entries: cluster.eligible.count,
                    capacity: cluster.eligible.count,
                    ttlSeconds: heartbeatSeconds,
                    counters: live,
                    oldestEntryAgeSeconds: nil
                )
            )
        }
        return out
    }
}
