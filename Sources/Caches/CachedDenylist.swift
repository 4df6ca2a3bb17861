import Seams
import Tokens

/// The token denylist with the answers held on the node: a verified token's `jti` costs one
/// query the first time and none while its answer is younger than the TTL. A revocation
/// reaches every node as an invalidation carrying the `jti` (``CacheInvalidation``), which
/// marks it revoked here without a query; if that message is lost, the TTL bounds how long
/// the old answer is served. Only tokens with a valid signature get this far, so an attacker
/// cannot fill the cache with junk IDs.
public struct CachedDenylist: Denylist {
    public let source: any Denylist
    public let cache: BoundedCache<TypeID, Bool>

    public init(source: any Denylist, cache: BoundedCache<TypeID, Bool>) {
        self.source = source
        self.cache = cache
    }

    public func isRevoked(tokenID: TypeID) async throws -> Bool {
        if let known = cache.get(tokenID) { return known }
        let generation = cache.generation
        let revoked = try await source.isRevoked(tokenID: tokenID)
        // A revocation that arrived while the query ran wins over what the query read.
        cache.put(tokenID, revoked, ifGeneration: generation)
        return revoked
    }

    /// This node (or an admin command) revoked `tokenID`, or another node said so.
    public func revoked(_ tokenID: TypeID) { cache.invalidate(tokenID, replacement: true) }
}
