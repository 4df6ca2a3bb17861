import Pins
import Seams

/// Group commit for `POST /pins`: concurrent creates share one statement and one commit.
///
/// A create that finds fewer than `maxInFlight` batches running writes at once, alone: an idle
/// node never waits for company. Otherwise it queues; when a running batch finishes, the oldest
/// queued create leads the next batch, taking up to `maxBatch` queued creates with it, and
/// writes them from its own task (no background task, nothing to start or stop). So a batch
/// gathers for exactly as long as the database is busy with the one before, and each request
/// gets its own row's result or error. Past `maxQueued` waiting creates, a create is refused
/// with a retryable 503 instead of queueing without bound.
public actor CreateCoalescer {
    public struct Settings: Sendable, Equatable {
        /// `db.coalesce.maxBatch`: creates written by one statement (1: no coalescing).
        public var maxBatch = 64
        /// `db.coalesce.maxInFlight`: batches written at once (each holds a pooled connection).
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
        var continuation: CheckedContinuation<Turn, Never>?
    }

    public let settings: Settings
    let write: @Sendable ([Create]) async -> [Outcome]
    let observe: @Sendable (Int, Int) -> Void
    var queue: [Waiter] = []
    var head = 0
    var inFlight = 0
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
        s.queued = queue.count - head
        s.inFlight = inFlight
        return s
    }

    func enter(_ create: Create) async throws -> Turn {
        if inFlight < settings.maxInFlight {
            // Nothing queued can be waiting here: a queue forms only while every slot is taken,
            // and a finishing batch hands its slot to the queue's head.
            inFlight += 1
            return .lead([Waiter(create: create, continuation: nil)])
        }
        guard queue.count - head < settings.maxQueued else {
            stats.refused += 1
            var error = PinsError.unavailable("too many pins are being created at once; retry shortly")
            error.retryAfter = 1
            throw error
        }
        return await withCheckedContinuation { queue.append(Waiter(create: create, continuation: $0)) }
    }

    func leave(_ batch: [Waiter], _ outcomes: [Outcome]) {
        stats.batches += 1
        stats.rows += batch.count
        stats.largestBatch = max(stats.largestBatch, batch.count)
        observe(batch.count, queue.count - head)
        for (waiter, outcome) in zip(batch, outcomes).dropFirst() {
            waiter.continuation?.resume(returning: .done(outcome))
        }
        guard head < queue.count else {
            inFlight -= 1
            return
        }
        let end = min(queue.count, head + settings.maxBatch)
        let next = Array(queue[head..<end])
        head = end
        if head == queue.count {
            queue.removeAll(keepingCapacity: true)
            head = 0
        } else if head > 1024, head * 2 > queue.count {
            queue.removeFirst(head)
            head = 0
        }
        next[0].continuation?.resume(returning: .lead(next))
    }
}
