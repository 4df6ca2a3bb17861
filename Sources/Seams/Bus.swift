/// The bus seam: what cluster code needs from NATS, shaped by our needs rather than by the NATS
/// protocol. Production implements it on a NATS client talking to a real nats-server
/// (`NATSBus`); the simulator implements it in memory with the same semantics plus faults.
///
/// Every call returns promptly (nothing here blocks waiting for traffic except `fetch` up to its
/// `wait`), so cluster code can be driven in ticks: the simulator calls each step itself and
/// production loops over the same steps.
public protocol ClusterBus: Sendable {
    // MARK: pub/sub (at most once): heartbeats, cache invalidation.

    /// Publishes `payload` on `subject`; no reply, no delivery guarantee.
    func publish(_ subject: String, _ payload: [UInt8]) async throws
    /// Starts buffering messages on `subject` (NATS wildcards `*` and `>` allowed). At most
    /// `capacity` messages wait in the inbox; when it is full the oldest is dropped and counted.
    func subscribe(_ subject: String, capacity: Int) async throws -> any BusInbox

    // MARK: work queue: one JetStream work-queue stream, one subject and durable consumer per node.

    /// Queues a job on `subject` (e.g. `pin.jobs.<nodeID>`). A second job with the same `msgID`
    /// inside the duplicate window is dropped by the bus (`.duplicate`), never delivered twice.
    func enqueue(_ subject: String, msgID: String, _ payload: [UInt8]) async throws -> EnqueueResult
    /// Creates (or resumes) the durable consumer for `subject`. Idempotent.
    func openQueue(_ subject: String) async throws
    /// Deletes the durable consumer for `subject`: nothing more is delivered; unacked jobs stay
    /// in the stream for the next consumer. Idempotent.
    func closeQueue(_ subject: String) async throws
    /// Up to `max` jobs from `subject`'s consumer, waiting at most `wait` for the first one.
    /// A job not acked within the ack wait is delivered again (its `deliveries` goes up).
    func fetch(_ subject: String, max: Int, wait: Duration) async throws -> [BusJob]
    /// Done: the job is removed from the queue.
    func ack(_ job: BusJob) async throws
    /// Not done: deliver again after `delay` (at once when nil).
    func nak(_ job: BusJob, delay: Duration?) async throws
    /// Still working: restart the ack-wait timer.
    func inProgress(_ job: BusJob) async throws
    /// Never deliver again.
    func term(_ job: BusJob) async throws

    // MARK: KV (the `ANCHORAGE_CLUSTER` bucket): revisions, compare-and-set, per-key TTL.

    func kvGet(_ key: String) async throws -> KVEntry?
    /// Stores `key` only if it does not exist (or was deleted/expired); throws
    /// `BusError.conflict` otherwise. With `ttl` the key disappears that long after this write.
    @discardableResult
    func kvCreate(_ key: String, _ value: [UInt8], ttl: Duration?) async throws -> UInt64
    /// Stores `key` only if its current revision is `revision`; throws `BusError.conflict`
    /// otherwise. With `ttl` the key disappears that long after this write.
    @discardableResult
    func kvUpdate(_ key: String, _ value: [UInt8], revision: UInt64, ttl: Duration?) async throws -> UInt64
    /// Stores `key` unconditionally.
    @discardableResult
    func kvPut(_ key: String, _ value: [UInt8], ttl: Duration?) async throws -> UInt64
    /// Deletes `key`; with `revision`, only if that is still its revision.
    func kvDelete(_ key: String, revision: UInt64?) async throws
}

/// Messages received by a subscription, buffered until drained.
public protocol BusInbox: Sendable {
    /// Everything received since the last call, oldest first.
    func drain() async -> [BusMessage]
    /// Messages dropped because the inbox was full.
    func dropped() async -> Int
    func close() async
}

public struct BusMessage: Sendable, Equatable {
    public var subject: String
    public var payload: [UInt8]

    public init(subject: String, payload: [UInt8]) {
        self.subject = subject
        self.payload = payload
    }
}

public enum EnqueueResult: Sendable, Equatable {
    case stored(sequence: UInt64)
    case duplicate(sequence: UInt64)
}

/// A delivered job. `handle` identifies this delivery to the bus (NATS: the reply subject).
public struct BusJob: Sendable, Equatable {
    public var subject: String
    public var msgID: String?
    public var payload: [UInt8]
    /// 1 on the first delivery.
    public var deliveries: Int
    public var handle: String

    public init(subject: String, msgID: String?, payload: [UInt8], deliveries: Int, handle: String) {
        self.subject = subject
        self.msgID = msgID
        self.payload = payload
        self.deliveries = deliveries
        self.handle = handle
    }
}

public struct KVEntry: Sendable, Equatable {
    public var key: String
    public var value: [UInt8]
    public var revision: UInt64

    public init(key: String, value: [UInt8], revision: UInt64) {
        self.key = key
        self.value = value
        self.revision = revision
    }
}

public enum BusError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A compare-and-set lost: the key exists (create) or has another revision (update/delete).
    case conflict(key: String)
    /// Not connected (the client is reconnecting); the call may be retried.
    case unavailable(String)
    /// The server refused the request.
    case server(code: Int, description: String)
    case timeout

    public var description: String {
        switch self {
        case .conflict(let key): "compare-and-set conflict on \(key)"
        case .unavailable(let s): "bus unavailable: \(s)"
        case .server(let code, let d): "bus error \(code): \(d)"
        case .timeout: "bus request timed out"
        }
    }
}
