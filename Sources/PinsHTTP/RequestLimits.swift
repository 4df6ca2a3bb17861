import Seams

/// Per-token request rate on `/pins`: a token bucket per API token (`limits.requestsPerSecond`
/// sustained, `limits.requestBurst` at once). Time comes from the injected clock, so a
/// simulated node limits in virtual time. Memory is bounded: past `capacity` tracked tokens,
/// buckets that have refilled (idle tokens) are forgotten, and if every one is busy, all are
/// (a flood of distinct valid tokens then briefly runs unlimited rather than growing memory).
public final class TokenRateLimiter: @unchecked Sendable {
    // @unchecked: `buckets` is only touched under `lock`.
    private struct Bucket {
        var tokens: Double
        var at: Int64  // µs
    }

    public let perSecond: Double
    public let burst: Double
    let clock: any WallClock
    let capacity: Int
    private let lock = Lock()
    private var buckets: [TypeID: Bucket] = [:]

    /// `perSecond` 0 switches the limit off.
    public init(perSecond: Double, burst: Int, clock: any WallClock, capacity: Int = 100_000) {
        self.perSecond = perSecond
        self.burst = Double(max(burst, 1))
        self.clock = clock
        self.capacity = capacity
    }

    public var isEnabled: Bool { perSecond > 0 }

    /// nil when the request may proceed (and is counted); otherwise the whole seconds after
    /// which one would.
    public func admit(_ token: TypeID) -> Int? {
        guard isEnabled else { return nil }
        let now = clock.now().microseconds
        return lock.withLock {
            var bucket = buckets[token] ?? Bucket(tokens: burst, at: now)
            let elapsed = Double(max(now - bucket.at, 0)) / 1_000_000
            bucket.tokens = min(burst, bucket.tokens + elapsed * perSecond)
            bucket.at = now
            guard bucket.tokens >= 1 else {
                buckets[token] = bucket
                return Int(((1 - bucket.tokens) / perSecond).rounded(.up))
            }
            bucket.tokens -= 1
            if buckets[token] == nil, buckets.count >= capacity { prune(now: now) }
            buckets[token] = bucket
            return nil
        }
    }

    private func prune(now: Int64) {
        buckets = buckets.filter { _, b in b.tokens + Double(now - b.at) / 1_000_000 * perSecond < burst }
        if buckets.count >= capacity { buckets.removeAll(keepingCapacity: true) }
    }
}

/// At most `limit` requests of one kind in flight per API token (`limits.maxConcurrentListsPerToken`
/// for `GET /pins`, whose pages are the API's largest answers). Entries exist only while a
/// request is in flight, so memory follows the concurrency, not the number of tokens.
public final class ConcurrencyGate: @unchecked Sendable {
    // @unchecked: `inFlight` is only touched under `lock`.
    public let limit: Int
    private let lock = Lock()
    private var inFlight: [TypeID: Int] = [:]

    /// `limit` 0 switches the gate off.
    public init(limit: Int) { self.limit = limit }

    /// Runs `body` if `key` has fewer than `limit` requests in flight; nil (and no call) otherwise.
    public func run<T>(_ key: TypeID, _ body: () async throws -> T) async rethrows -> T? {
        guard limit > 0 else { return try await body() }
        let entered = lock.withLock {
            let n = inFlight[key, default: 0]
            guard n < limit else { return false }
            inFlight[key] = n + 1
            return true
        }
        guard entered else { return nil }
        defer {
            lock.withLock {
                let n = inFlight[key, default: 1] - 1
                inFlight[key] = n > 0 ? n : nil
            }
        }
        return try await body()
    }
}
