import Seams

/// A cache bounded twice: by entries (the least recently used goes first) and by age (an entry
/// older than `ttl` is a miss, so a lost invalidation is stale for at most the TTL). Time comes
/// from the clock seam. Every operation is O(1) under one lock; ``stats()`` walks the entries.
///
/// `generation` guards a load racing an invalidation: a caller reads the generation, queries
/// the source, and stores the answer only if no invalidation arrived meanwhile
/// (``put(_:_:ifGeneration:)``), so an answer read before a revocation cannot overwrite it.
public final class BoundedCache<Key: Hashable & Sendable, Value: Sendable>: @unchecked Sendable {
    // @unchecked: every stored property below `lock` is touched only under it.
    public let name: String
    public let capacity: Int
    public let ttlMicroseconds: Int64
    private let clock: any WallClock
    private let lock = Lock()

    private struct Slot {
        var key: Key
        var value: Value
        var storedAt: Int64
        var newer: Int  // towards the most recently used; -1 at the head
        var older: Int  // towards the least recently used; -1 at the tail
    }
    private var index: [Key: Int] = [:]
    private var slots: [Slot] = []
    private var free: [Int] = []
    private var head = -1  // most recently used
    private var tail = -1  // least recently used
    private var counters = CacheCounters()
    private var generationValue: UInt64 = 0

    public init(name: String, capacity: Int, ttlSeconds: Int64, clock: any WallClock) {
        self.name = name
        self.capacity = max(capacity, 1)
        self.ttlMicroseconds = max(ttlSeconds, 0) * 1_000_000
        self.clock = clock
        index.reserveCapacity(min(self.capacity, 4096))
    }

    /// The value for `key` if present and younger than the TTL; counts a hit or a miss.
    public func get(_ key: Key) -> Value? {
        let now = clock.now().microseconds
        return lock.withLock {
            guard let i = index[key] else {
                counters.misses += 1
                return nil
            }
            if now - slots[i].storedAt >= ttlMicroseconds {
                unlink(i)
                release(i)
                counters.expirations += 1
                counters.misses += 1
                return nil
            }
            moveToHead(i)
            counters.hits += 1
            return slots[i].value
        }
    }

    /// Bumped by every invalidation.
    public var generation: UInt64 { lock.withLock { generationValue } }

    /// Stores `value`, evicting the least recently used entry when full.
    public func put(_ key: Key, _ value: Value) {
        let now = clock.now().microseconds
        lock.withLock { store(key, value, now: now) }
    }

    /// Stores `value` unless an invalidation arrived since `generation` was read; returns
    /// whether it stored.
    @discardableResult
    public func put(_ key: Key, _ value: Value, ifGeneration generation: UInt64) -> Bool {
        let now = clock.now().microseconds
        return lock.withLock {
            guard generationValue == generation else { return false }
            store(key, value, now: now)
            return true
        }
    }

    /// An invalidation from this node or another: `value` replaces the entry (a revocation is
    /// known without asking the database), or with nil the entry is dropped.
    public func invalidate(_ key: Key, replacement value: Value? = nil) {
        let now = clock.now().microseconds
        lock.withLock {
            generationValue &+= 1
            counters.invalidationsReceived += 1
            if let value {
                store(key, value, now: now)
            } else if let i = index[key] {
                unlink(i)
                release(i)
            }
        }
    }

    /// Drops every entry (an invalidation whose key is unknown, or a reload).
    public func invalidateAll() {
        lock.withLock {
            generationValue &+= 1
            counters.invalidationsReceived += 1
            index.removeAll(keepingCapacity: true)
            slots.removeAll(keepingCapacity: true)
            free.removeAll(keepingCapacity: true)
            head = -1
            tail = -1
        }
    }

    /// Counts an invalidation this node published for others.
    public func countSent() { lock.withLock { counters.invalidationsSent += 1 } }

    public func stats() -> CacheStats {
        let now = clock.now().microseconds
        return lock.withLock {
            let oldest = index.values.lazy.map { self.slots[$0].storedAt }.min()
            return CacheStats(
                cache: name,
                entries: index.count,
                capacity: capacity,
                ttlSeconds: ttlMicroseconds / 1_000_000,
                counters: counters,
                oldestEntryAgeSeconds: oldest.map { Double(now - $0) / 1_000_000 }
            )
        }
    }

    // MARK: the list (under the lock)

    private func store(_ key: Key, _ value: Value, now: Int64) {
        if let i = index[key] {
            slots[i].value = value
            slots[i].storedAt = now
            moveToHead(i)
            return
        }
        if index.count >= capacity, tail >= 0 {
            let victim = tail
            unlink(victim)
            release(victim)
            counters.evictions += 1
        }
        let slot = Slot(key: key, value: value, storedAt: now, newer: -1, older: head)
        let i: Int
        if let reused = free.popLast() {
            slots[reused] = slot
            i = reused
        } else {
            slots.append(slot)
            i = slots.count - 1
        }
        if head >= 0 { slots[head].newer = i }
        head = i
        if tail < 0 { tail = i }
        index[key] = i
    }

    private func moveToHead(_ i: Int) {
        guard head != i else { return }
        unlink(i)
        slots[i].older = head
        slots[i].newer = -1
        if head >= 0 { slots[head].newer = i }
        head = i
        if tail < 0 { tail = i }
    }

    private func unlink(_ i: Int) {
        let newer = slots[i].newer
        let older = slots[i].older
        if newer >= 0 { slots[newer].older = older } else { head = older }
        if older >= 0 { slots[older].newer = newer } else { tail = newer }
        slots[i].newer = -1
        slots[i].older = -1
    }

    private func release(_ i: Int) {
        index[slots[i].key] = nil
        free.append(i)
    }
}

/// What a cache has done since the node started.
public struct CacheCounters: Sendable, Equatable, Codable {
    public var hits = 0
    public var misses = 0
    /// Entries dropped to make room (capacity).
    public var evictions = 0
    /// Entries dropped because they outlived the TTL.
    public var expirations = 0
    public var invalidationsSent = 0
    public var invalidationsReceived = 0

    public init() {}
}

/// One cache's state, for `/metrics` and `anchorage admin cache-stats`.
public struct CacheStats: Sendable, Equatable, Codable {
    public var cache: String
    public var entries: Int
    public var capacity: Int
    public var ttlSeconds: Int64
    public var counters: CacheCounters
    /// Age of the oldest entry held (nil when empty).
    public var oldestEntryAgeSeconds: Double?

    public init(cache: String, entries: Int, capacity: Int, ttlSeconds: Int64, counters: CacheCounters, oldestEntryAgeSeconds: Double?) {
        self.cache = cache
        self.entries = entries
        self.capacity = capacity
        self.ttlSeconds = ttlSeconds
        self.counters = counters
        self.oldestEntryAgeSeconds = oldestEntryAgeSeconds
    }

    /// hits / (hits + misses), nil before the first lookup.
    public var hitRatio: Double? {
        let lookups = counters.hits + counters.misses
        return lookups == 0 ? nil : Double(counters.hits) / Double(lookups)
    }
}
