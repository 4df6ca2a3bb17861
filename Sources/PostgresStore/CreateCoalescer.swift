import Pins
import Seams

/// Group commit for `POST /pins`: concurrent creates share one statement and one commit.
///
/// Creates are spread over `maxInFlight` lanes by org: every create of one org takes the same
/// lane, and a lane writes one batch at a time. A create that finds its lane idle writes at
/// once, alone: an idle node never waits for company. Otherwise it queues in its lane; when the
/// lane's batch finishes, the lane's oldest queued create leads the next batch, taking up to
/// `maxBatch` of the lane's queued creates with it, and writes them from its own task (no
/// background task, nothing to start or stop). So a batch gathers for exactly as long as the
/// database is busy with the one before, and each request gets its own row's result or error.
///
/// Why lanes by org: a batch holds each of its orgs' create lock (and counter rows) until it
/// commits. Batches that each held a slice of every org queued behind one another on those
/// locks, one commit at a time; an org's creates in one lane never wait for their own org's
/// lock in another batch, and lanes of different orgs commit side by side. An org's creates
/// are serialized by its lock anyway, so nothing is lost by keeping them in one lane.
///
/// With `maxBatch` 1 (no coalescing) there is one lane of `maxInFlight` writers: each create is
/// written alone as soon as a writer is free. Past `maxQueued` waiting creates (all lanes), a
/// create is refused with a retryable 503 instead of queueing without bound.
public actor CreateCoalescer {
    public struct Settings: Sendable, Equatable {
        /// `db.coalesce.maxBatch`: creates written by one statement (1: no coalescing).
        public var maxBatch = 64
        /// `db.coalesce.maxInFlight`: batches written at once (each holds a pooled connection),
        /// which is also the number of lanes orgs are spread over.
        public var maxInFlight = 4
        /// `db.coalesce.maxQueued`: creates waiting for a batch before new ones are refused.
        public var maxQueued = 4096

        public init() {}
    }

    /// What one create asks to write.
    public struct Create: Sendable {
        public var org: TypeID
        public var pin: NewPin
    }

    /// Batches and rows written so far, for tests and `/metrics`.
    public struct Stats: Sendable, Equatable {
        public var batches = 0
        public var rows = 0
        public var largestBatch = 0
        /// Creates waiting right now.
        public var queued = 0
        public var refused = 0
        /// Batches being written right now.
        public var inFlight = 0
    }

    typealias Outcome = Result<PinRecord, any Error>

    /// The queued create's turn: lead a batch (these creates, its own first) or take its result.
    enum Turn: Sendable {
        case lead([Waiter])
        case done(Outcome)
    }

    struct Waiter: Sendable {
        var create: Create
        var lane: Int
        var continuation: CheckedContinuation<Turn, Never>?
    }

    /// Creates that write one after another: `writers` batches at most at once (1 when
    /// coalescing), the rest queued in arrival order.
    struct Lane {
        var writers = 0
        var queue: [Waiter] = []
        var head = 0
        var waiting: Int { queue.count - head }

        /// Up to `count` queued creates, oldest first.
        mutating func take(_ count: Int) -> [Waiter] {
            let end = min(queue.count, head + count)
            let next = Array(queue[head..<end])
            head = end
            if head == queue.count {
                queue.removeAll(keepingCapacity: true)
                head = 0
            } else if head > 1024, head * 2 > queue.count {
                queue.removeFirst(head)
                head = 0
            }
            return next
        }
    }

    public let settings: Settings
    let write: @Sendable ([Create]) async -> [Outcome]
    let observe: @Sendable (Int, Int) -> Void
    var lanes: [Lane]
    let laneCount: Int
    /// Writers a lane may run at once.
    let writersPerLane: Int
    var queued = 0
    var stats = Stats()

    /// `write` answers each create of a batch, in order; `observe` hears each batch's size and
    /// how many creates were waiting when it was written.
    public init(
        settings: Settings,
        observe: @escaping @Sendable (_ size: Int, _ queued: Int) -> Void = { _, _ in },
        write: @escaping @Sendable ([Create]) async -> [Result<PinRecord, any Error>]
    ) {
        self.settings = settings
        self.write = write
        self.observe = observe
        let slots = max(settings.maxInFlight, 1)
        let coalescing = settings.maxBatch > 1
        self.laneCount = coalescing ? slots : 1
        self.lanes = Array(repeating: Lane(), count: laneCount)
        self.writersPerLane = coalescing ? 1 : slots
    }

    public nonisolated func create(org: TypeID, pin: NewPin) async throws -> PinRecord {
        switch try await enter(Create(org: org, pin: pin)) {
        case .done(let outcome):
            return try outcome.get()
        case .lead(let batch):
            // Written in a task of its own, which the leader awaits: the batch holds other
            // requests' rows, so the leader's cancellation (its client went away) must not
            // cancel their statement. The task ends with the statement; nothing outlives it.
            let creates = batch.map(\.create)
            let write = self.write
            let outcomes = await Task { await write(creates) }.value
            await leave(batch, outcomes)
            return try outcomes[0].get()
        }
    }

    public func currentStats() -> Stats {
        var s = stats
        s.queued = queued
        s.inFlight = lanes.reduce(0) { $0 + $1.writers }
        return s
    }

    /// The org's lane: a hash of its id, the same for every create of the org on every node.
    nonisolated func lane(of org: TypeID) -> Int {
        guard laneCount > 1 else { return 0 }
        // The UUIDv7's random bits, mixed (splitmix64's finalizer) so that any lane count spreads.
        var x = org.low ^ (org.high & 0x0FFF)
        x = (x ^ (x >> 30)) &* 0xbf58_476d_1ce4_e5b9
        x = (x ^ (x >> 27)) &* 0x94d0_49bb_1331_11eb
        x ^= x >> 31
        return Int(x % UInt64(laneCount))
    }

    func enter(_ create: Create) async throws -> Turn {
        let l = lane(of: create.org)
        if lanes[l].writers < writersPerLane {
            // Nothing can be queued in this lane here: a lane's queue forms only while its
            // writers are busy, and a finishing batch hands its writer to the queue's head.
            lanes[l].writers += 1
            return .lead([Waiter(create: create, lane: l, continuation: nil)])
        }
        guard queued < settings.maxQueued else {
            stats.refused += 1
            var error = PinsError.unavailable("too many pins are being created at once; retry shortly")
            error.retryAfter = 1
            throw error
        }
        queued += 1
        return await withCheckedContinuation { lanes[l].queue.append(Waiter(create: create, lane: l, continuation: $0)) }
    }

    func leave(_ batch: [Waiter], _ outcomes: [Outcome]) {
        stats.batches += 1
        stats.rows += batch.count
        stats.largestBatch = max(stats.largestBatch, batch.count)
        observe(batch.count, queued)
        for (waiter, outcome) in zip(batch, outcomes).dropFirst() {
            waiter.continuation?.resume(returning: .done(outcome))
        }
        let l = batch[0].lane
        guard lanes[l].waiting > 0 else {
            lanes[l].writers -= 1
            return
        }
        let next = lanes[l].take(settings.maxBatch)
        queued -= next.count
        next[0].continuation?.resume(returning: .lead(next))
    }
}
