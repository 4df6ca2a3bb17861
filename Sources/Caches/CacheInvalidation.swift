import Foundation
import Seams

/// The node caches that other nodes can invalidate, and their NATS subjects.
public enum CacheName: String, Sendable, CaseIterable, Codable {
    /// Revoked token IDs (`jti`).
    case denylist
    /// The active signing keys (`KeyRing`).
    case signingKeys = "signing_keys"
    /// The nodes new pins may be placed on.
    case liveNodes = "live_nodes"

    /// `cache.invalidate.<cache>`.
    public var subject: String { CacheInvalidation.subjectPrefix + rawValue }
}

/// An invalidation as it travels on `cache.invalidate.<cache>`: the key that changed, as text
/// (a `tok_…` for the denylist, a `kid` for signing keys, a `nod_…` with its new state for
/// live nodes). Pub/sub, at most once: a lost message costs staleness up to the cache's TTL.
public struct CacheInvalidation: Sendable, Equatable, Codable {
    public var cache: CacheName
    public var key: String
    /// For live nodes: the node's new state (`draining`, `drained`, `active`).
    public var state: String?
    /// Who sent it (a node ID, or `admin`), for the log.
    public var from: String

    public init(cache: CacheName, key: String, state: String? = nil, from: String) {
        self.cache = cache
        self.key = key
        self.state = state
        self.from = from
    }

    public static let subjectPrefix = "cache.invalidate."
    /// Every cache's subject.
    public static let allSubjects = "cache.invalidate.>"
    /// Longest message accepted (a key is a TypeID or a kid).
    public static let maxBytes = 1024

    public func encoded() -> [UInt8] { Array((try? JSONEncoder().encode(self)) ?? Data()) }

    /// Decodes a message received on `subject`; nil for anything malformed or mismatched.
    public static func decode(subject: String, _ payload: [UInt8]) -> CacheInvalidation? {
        guard payload.count <= maxBytes, let message = try? JSONDecoder().decode(CacheInvalidation.self, from: Data(payload)),
            subject == message.cache.subject, message.key.utf8.count <= 256
        else { return nil }
        return message
    }

    /// Publishes on the cache's subject.
    public func publish(on bus: any ClusterBus) async throws {
        try await bus.publish(cache.subject, encoded())
    }
}

/// `anchorage admin cache-stats` over the bus: the command publishes a request naming a
/// private reply subject on `cache.stats`; every node answers there with its caches.
public enum CacheStatsExchange {
    public static let subject = "cache.stats"
    /// Replies go only to inbox subjects: a node never publishes where a request tells it to
    /// unless that is a private inbox (never a job queue or a heartbeat subject).
    public static let replyPrefix = "_INBOX.anchorage.cache-stats."

    public struct Request: Sendable, Codable, Equatable {
        public var reply: String
        public init(reply: String) { self.reply = reply }
    }

    public struct Reply: Sendable, Codable, Equatable {
        public var node: String
        public var name: String
        public var caches: [CacheStats]
        public init(node: String, name: String, caches: [CacheStats]) {
            self.node = node
            self.name = name
            self.caches = caches
        }
    }

    public static func decodeRequest(_ payload: [UInt8]) -> Request? {
        guard payload.count <= 512, let request = try? JSONDecoder().decode(Request.self, from: Data(payload)),
            request.reply.hasPrefix(replyPrefix), request.reply.utf8.count <= 128,
            !request.reply.contains(where: { $0 == " " || $0 == "*" || $0 == ">" })
        else { return nil }
        return request
    }

    public static func encode<T: Encodable>(_ value: T) -> [UInt8] { Array((try? JSONEncoder().encode(value)) ?? Data()) }

    public static func decodeReply(_ payload: [UInt8]) -> Reply? { try? JSONDecoder().decode(Reply.self, from: Data(payload)) }
}
