import Seams
import SimKernel

/// Broker settings of the simulated bus (the JetStream stream/consumer settings production uses).
public struct SimBusConfig: Sendable, Equatable {
    /// A second enqueue with the same msgID within this long of the first is a duplicate.
    public var duplicateWindow: Duration
    /// A fetched job not acked (or `inProgress`-touched) within this long is delivered again.
    public var ackWait: Duration
    /// Deliveries after which a job is no longer redelivered (it stays in the stream); 0 = no limit.
    public var maxDeliver: Int
    /// The work-queue stream's subjects; `enqueue` on anything else fails (no stream: 503).
    public var queueSubjects: String

    public init(
        duplicateWindow: Duration = .seconds(120),
        ackWait: Duration = .seconds(30),
        maxDeliver: Int = 0,
        queueSubjects: String = "pin.jobs.>"
    ) {
        self.duplicateWindow = duplicateWindow
        self.ackWait = ackWait
        self.maxDeliver = maxDeliver
        self.queueSubjects = queueSubjects
    }
}

/// Faults on one endpoint's link to the broker. A pub/sub message crosses the publisher's link
/// and then each subscriber's link; each crossing applies that link's faults independently.
/// Every probability is drawn from the network's seeded entropy, and only when non-zero.
public struct LinkFaults: Sendable, Equatable {
    /// Fixed latency added on this link.
    public var delay: Duration
    /// Random extra latency, uniform in 0...reordering, drawn per message: later messages can
    /// overtake earlier ones.
    public var reordering: Duration
    /// Probability that a pub/sub message crossing this link is lost.
    public var loss: Double
    /// Probability that a pub/sub message crossing this link arrives twice.
    public var duplication: Double
    /// Probability that a request/reply call (enqueue, fetch, ack/nak/…, KV) from this endpoint
    /// fails with `BusError.timeout`. Half of those lose the request (nothing happened), half
    /// lose the reply (it happened, the caller cannot know): the ambiguity real clients face.
    public var timeouts: Double

    public init(delay: Duration = .zero, reordering: Duration = .zero, loss: Double = 0, duplication: Double = 0, timeouts: Double = 0) {
        self.delay = delay
        self.reordering = reordering
        self.loss = loss
        self.duplication = duplication
        self.timeouts = timeouts
    }

    public static let none = LinkFaults()
}

/// Counters over the whole network (for tests, summaries and invariants).
public struct SimBusStats: Sendable, Equatable {
    /// `publish` calls accepted.
    public var published = 0
    /// Messages put into an inbox (duplicates count twice).
    public var delivered = 0
    /// Message crossings lost to `loss`.
    public var lost = 0
    /// Message crossings duplicated by `duplication`.
    public var duplicated = 0
    /// Messages not delivered because the receiver was cut off from the broker.
    public var partitionDropped = 0
    /// Messages pushed out of full inboxes (drop oldest).
    public var inboxDropped = 0
    /// Jobs stored by `enqueue`.
    public var enqueued = 0
    /// Enqueues refused as duplicates within the window.
    public var duplicateEnqueues = 0
    /// Job deliveries by `fetch` (first deliveries and redeliveries).
    public var fetched = 0
    /// Of those, redeliveries (`deliveries > 1`).
    public var redelivered = 0
    public var acked = 0
    public var naked = 0
    public var termed = 0
    /// ack/nak/inProgress/term for a job already gone or a consumer since deleted (ignored).
    public var staleAcks = 0
    /// Calls failed with `.timeout` by the `timeouts` fault.
    public var timeouts = 0
    /// Calls failed with `.unavailable` because the caller was cut off from the broker.
    public var unavailable = 0

    public init() {}
}

/// A job as the broker holds it (for inspection by invariants and tests).
public struct SimQueuedJob: Sendable, Equatable {
    public var sequence: UInt64
    public var subject: String
    public var msgID: String?
    /// Deliveries by the current consumer (0: never delivered or consumer recreated).
    public var deliveries: Int
    /// Delivered and waiting for an ack.
    public var isPending: Bool
}

/// The simulated broker: one NATS server with a JetStream work-queue stream and a KV bucket,
/// shared by every node's ``SimBus`` endpoint. It reads time from, and schedules delayed
/// deliveries on, the world's scheduler; all randomness comes from `entropy`.
///
/// **Topology and partitions.** The broker is a single place. ``partition(_:_:)`` splits the
/// endpoints in two; the broker stays with the larger side (ties: the first set), and every
/// endpoint on the other side is *cut off*: each of its calls throws `BusError.unavailable`,
/// and nothing is delivered to it (messages published before the cut and still in flight are
/// dropped on arrival). So endpoints in different sets never see each other's messages.
/// ``heal()`` ends it. Faults (``LinkFaults``) are off by default.
///
/// **Work queue** (JetStream semantics): one stream, global sequence numbers; dedup by msgID
/// within the window (also after the job was acked); one durable consumer per subject, created
/// by `openQueue`. Closing a queue deletes its consumer: its jobs stay, and a new consumer
/// delivers them again from scratch (their `deliveries` restart at 1, old handles are stale).
/// `fetch` without a consumer throws `BusError.server(code: 10014, …)` as NATSBus does. `fetch`
/// never waits: it returns the jobs due now (virtual time only moves in the scheduler).
/// Jobs are delivered in sequence order. ack/nak/inProgress/term act on the job by its stream
/// sequence when the subject's current consumer has it pending, whichever delivery (or earlier
/// consumer of the same queue) the handle came from, as in JetStream. Otherwise they change
/// nothing and count in ``SimBusStats/staleAcks``; ack and term (synchronous in NATSBus) then
/// fail as they do on NATS: `.unavailable` when the queue is not open (no responders),
/// `.timeout` when the job is gone or not pending (the server does not reply).
///
/// **KV**: one revision sequence for the bucket; deletes consume a revision (the delete marker);
/// an expired key reads as absent and may be created again; update/delete with a revision of a
/// deleted or expired key conflict.
public final class SimBusNetwork: @unchecked Sendable {
    // @unchecked: all mutable state lives in `state`, only touched under `lock`. Nothing here
    // iterates a Dictionary or Set: ordered views are arrays.

    public let config: SimBusConfig
    private let scheduler: any EventScheduling
    private let entropy: any Entropy
    private let log: EventLog?
    private let lock = Lock()
    private var state = State()
    private let queuePattern: [Substring]

    struct Subscription {
        var node: String
        var pattern: [Substring]
        var capacity: Int
        var buffer: [BusMessage] = []
        var dropped = 0
        var closed = false
    }

    struct Job {
        var sequence: UInt64
        var subject: String
        var msgID: String?
        var payload: [UInt8]
        /// Not deliverable before this (enqueue latency).
        var visibleAt: Int64
        /// Not deliverable before this (nak delay).
        var nakUntil: Int64?
        /// Delivered and awaiting an ack until this (ack wait).
        var pendingUntil: Int64?
        var deliveries = 0
    }

    struct KVRecord {
        var value: [UInt8]
        var revision: UInt64
        var expiresAt: Int64?
    }

    struct State {
        var stats = SimBusStats()
        var nodes: [String] = []  // registered endpoints, in registration order
        var defaultFaults = LinkFaults.none
        var faults: [String: LinkFaults] = [:]
        var cutOff: Set<String> = []  // lookups only
        var nextSubscription: UInt64 = 0
        var subscriptions: [UInt64: Subscription] = [:]  // lookups only
        var subscriptionOrder: [UInt64] = []  // live subscriptions, in subscription order
        var streamSequence: UInt64 = 0
        var jobs: [UInt64: Job] = [:]  // lookups only
        var queues: [String: [UInt64]] = [:]  // subject → job sequences, ascending
        var consumers: [String: UInt64] = [:]  // subject → generation of its open consumer
        var generations: [String: UInt64] = [:]  // subject → last generation used
        var dedup: [String: (sequence: UInt64, at: Int64)] = [:]
        var dedupOrder: [(msgID: String, at: Int64)] = []
        var dedupHead = 0
        var kvRevision: UInt64 = 0
        var kv: [String: KVRecord] = [:]  // lookups only
    }

    /// - Parameters:
    ///   - scheduler: the world's event queue (time source, and where delayed deliveries go).
    ///   - entropy: the seeded source of every fault decision.
    ///   - log: when given, fault decisions (lost, duplicated, dropped, timed out) are traced.
    public init(scheduler: any EventScheduling, entropy: any Entropy, config: SimBusConfig = SimBusConfig(), log: EventLog? = nil) {
        self.scheduler = scheduler
        self.entropy = entropy
        self.config = config
        self.log = log
        self.queuePattern = config.queueSubjects.split(separator: ".", omittingEmptySubsequences: false)
    }

    /// The bus as node `node` sees it. Endpoints for the same node share subscriptions and faults.
    public func endpoint(node: String) -> SimBus {
        lock.withLock { if !state.nodes.contains(node) { state.nodes.append(node) } }
        return SimBus(network: self, node: node)
    }

    /// Registered endpoints, in registration order.
    public var nodes: [String] { lock.withLock { state.nodes } }

    // MARK: fault controls

    /// Faults for every endpoint that has none of its own.
    public func setFaults(_ faults: LinkFaults) { lock.withLock { state.defaultFaults = faults } }

    /// Faults for `node`'s link only.
    public func setFaults(_ faults: LinkFaults, for node: String) { lock.withLock { state.faults[node] = faults } }

    /// Back to no faults anywhere (partitions are separate: see ``heal()``).
    public func clearFaults() {
        lock.withLock {
            state.defaultFaults = .none
            state.faults = [:]
        }
    }

    /// Splits the endpoints into `a` and `b` (replacing any earlier partition). The broker stays
    /// with the larger set (ties: `a`), together with every endpoint in neither set; the other
    /// set is cut off.
    public func partition(_ a: [String], _ b: [String]) {
        let cut = Set(b.count > a.count ? a : b)
        lock.withLock { state.cutOff = cut }
        log?.record("  bus: partition [\(a.joined(separator: ","))] | [\(b.joined(separator: ","))]; cut off: \(sortedJoined(cut))")
    }

    /// Cuts `node` off from the broker (in addition to any current partition).
    public func isolate(_ node: String) {
        lock.withLock { _ = state.cutOff.insert(node) }
        log?.record("  bus: isolate \(node)")
    }

    /// Ends every partition.
    public func heal() {
        lock.withLock { state.cutOff = [] }
        log?.record("  bus: heal")
    }

    /// Whether `node` can reach the broker.
    public func isReachable(_ node: String) -> Bool { lock.withLock { !state.cutOff.contains(node) } }

    /// Endpoints currently cut off, sorted.
    public var cutOffNodes: [String] { lock.withLock { state.cutOff.sorted() } }

    /// Closes every subscription of `node` (its process died: its connection is gone). Durable
    /// queue consumers are unaffected, as in NATS.
    public func closeSubscriptions(of node: String) {
        lock.withLock {
            let closing = state.subscriptionOrder.filter { state.subscriptions[$0]?.node == node }
            for id in closing {
                state.subscriptions[id]?.closed = true
                state.subscriptions[id]?.buffer = []
            }
            state.subscriptionOrder.removeAll { closing.contains($0) }
        }
    }

    // MARK: inspection

    public var stats: SimBusStats { lock.withLock { state.stats } }

    /// Live KV entries, sorted by key.
    public func kvEntries() -> [KVEntry] {
        let now = scheduler.now().microseconds
        return lock.withLock {
            state.kv.keys.sorted().compactMap { key in
                guard let r = state.kv[key], Self.isLive(r, now) else { return nil }
                return KVEntry(key: key, value: r.value, revision: r.revision)
            }
        }
    }

    /// Jobs in the stream on `subject`, in sequence order.
    public func queuedJobs(_ subject: String) -> [SimQueuedJob] {
        lock.withLock {
            (state.queues[subject] ?? []).compactMap { seq in
                state.jobs[seq].map {
                    SimQueuedJob(
                        sequence: $0.sequence,
                        subject: $0.subject,
                        msgID: $0.msgID,
                        deliveries: $0.deliveries,
                        isPending: $0.pendingUntil != nil
                    )
                }
            }
        }
    }

    /// Subjects with an open consumer, sorted.
    public var openQueues: [String] { lock.withLock { state.consumers.keys.sorted() } }

    // MARK: internals: shared helpers (lock held)

    private func faults(_ node: String) -> LinkFaults { state.faults[node] ?? state.defaultFaults }

    private func chance(_ p: Double) -> Bool {
        if p <= 0 { return false }
        if p >= 1 { return true }
        return Double(entropy.next() >> 11) / Double(UInt64(1) << 53) < p
    }

    private func latency(_ f: LinkFaults) -> Int64 {
        var us = f.delay.simMicroseconds
        let jitter = f.reordering.simMicroseconds
        if jitter > 0 { us += Int64(entropy.uniform(UInt64(jitter) + 1)) }
        return us
    }

    private static func isLive(_ r: KVRecord, _ now: Int64) -> Bool { r.expiresAt.map { now < $0 } ?? true }

    private func trace(_ line: @autoclosure () -> String) {
        if let log { log.record("  bus: " + line()) }
    }

    /// Runs a request/reply call from `node`: refuses it when cut off, applies the `timeouts`
    /// fault, else runs `body` under the lock.
    func call<T>(_ node: String, _ op: String, _ body: (Int64) throws -> T) throws -> T {
        let now = scheduler.now().microseconds
        return try lock.withLock {
            if state.cutOff.contains(node) {
                state.stats.unavailable += 1
                throw BusError.unavailable("\(node) is cut off from the broker")
            }
            if chance(faults(node).timeouts) {
                state.stats.timeouts += 1
                if chance(0.5) {
                    trace("\(op) from \(node): request lost (timeout)")
                } else {
                    _ = try body(now)
                    trace("\(op) from \(node): reply lost (timeout)")
                }
                throw BusError.timeout
            }
            return try body(now)
        }
    }

    // MARK: pub/sub

    private struct Delivery {
        var subscription: UInt64
        var to: String
        var at: Int64
        var message: BusMessage
    }

    func publish(from node: String, _ subject: String, _ payload: [UInt8]) throws {
        guard let tokens = Subjects.tokens(subject, wildcards: false) else {
            throw BusError.server(code: 400, description: "invalid publish subject '\(subject)'")
        }
        let now = scheduler.now().microseconds
        let message = BusMessage(subject: subject, payload: payload)
        let later: [Delivery] = try lock.withLock {
            if state.cutOff.contains(node) {
                state.stats.unavailable += 1
                throw BusError.unavailable("\(node) is cut off from the broker")
            }
            state.stats.published += 1
            let up = faults(node)
            if chance(up.loss) {
                state.stats.lost += 1
                trace("lost \(subject) from \(node) (uplink)")
                return []
            }
            var upCopies = 1
            if chance(up.duplication) {
                state.stats.duplicated += 1
                upCopies = 2
                trace("duplicated \(subject) from \(node) (uplink)")
            }
            var later: [Delivery] = []
            for _ in 0..<upCopies {
                let upLatency = latency(up)
                for id in state.subscriptionOrder {
                    guard let sub = state.subscriptions[id], Subjects.matches(sub.pattern, tokens) else { continue }
                    if state.cutOff.contains(sub.node) {
                        state.stats.partitionDropped += 1
                        continue
                    }
                    let down = faults(sub.node)
                    if chance(down.loss) {
                        state.stats.lost += 1
                        trace("lost \(subject) \(node)->\(sub.node)")
                        continue
                    }
                    var copies = 1
                    if chance(down.duplication) {
                        state.stats.duplicated += 1
                        copies = 2
                        trace("duplicated \(subject) \(node)->\(sub.node)")
                    }
                    for _ in 0..<copies {
                        let total = upLatency + latency(down)
                        if total == 0 {
                            deliver(message, to: id)
                        } else {
                            later.append(Delivery(subscription: id, to: sub.node, at: now + total, message: message))
                        }
                    }
                }
            }
            return later
        }
        for d in later {
            scheduler.schedule(at: Timestamp(microsecondsSinceEpoch: d.at), label: "bus.deliver \(subject) \(node)->\(d.to)", key: nil) {
                [self] in self.deliverLater(d)
            }
        }
    }

    private func deliverLater(_ d: Delivery) {
        lock.withLock {
            guard let sub = state.subscriptions[d.subscription], !sub.closed else { return }
            if state.cutOff.contains(sub.node) {
                state.stats.partitionDropped += 1
                trace("dropped \(d.message.subject) for \(sub.node) (cut off)")
                return
            }
            deliver(d.message, to: d.subscription)
        }
    }

    /// Puts a message into a subscription's inbox, dropping the oldest when full (lock held).
    private func deliver(_ message: BusMessage, to id: UInt64) {
        guard var sub = state.subscriptions[id], !sub.closed else { return }
        sub.buffer.append(message)
        if sub.buffer.count > sub.capacity {
            sub.buffer.removeFirst(sub.buffer.count - sub.capacity)
            sub.dropped += 1
            state.stats.inboxDropped += 1
        }
        state.subscriptions[id] = sub
        state.stats.delivered += 1
    }

    func subscribe(from node: String, _ subject: String, capacity: Int) throws -> SimInbox {
        guard let pattern = Subjects.tokens(subject, wildcards: true) else {
            throw BusError.server(code: 400, description: "invalid subscription subject '\(subject)'")
        }
        guard capacity > 0 else { throw BusError.server(code: 400, description: "inbox capacity must be positive") }
        return try lock.withLock {
            if state.cutOff.contains(node) {
                state.stats.unavailable += 1
                throw BusError.unavailable("\(node) is cut off from the broker")
            }
            let id = state.nextSubscription
            state.nextSubscription += 1
            state.subscriptions[id] = Subscription(node: node, pattern: pattern, capacity: capacity)
            state.subscriptionOrder.append(id)
            return SimInbox(network: self, id: id)
        }
    }

    func drain(_ id: UInt64) -> [BusMessage] {
        lock.withLock {
            guard let buffer = state.subscriptions[id]?.buffer else { return [] }
            state.subscriptions[id]?.buffer = []
            return buffer
        }
    }

    func dropped(_ id: UInt64) -> Int { lock.withLock { state.subscriptions[id]?.dropped ?? 0 } }

    func close(_ id: UInt64) {
        lock.withLock {
            guard state.subscriptions[id]?.closed == false else { return }
            state.subscriptions[id]?.closed = true
            state.subscriptions[id]?.buffer = []
            state.subscriptionOrder.removeAll { $0 == id }
        }
    }

    // MARK: work queue

    func enqueue(from node: String, _ subject: String, msgID: String, _ payload: [UInt8]) throws -> EnqueueResult {
        guard let tokens = Subjects.tokens(subject, wildcards: false), Subjects.matches(queuePattern, tokens) else {
            throw BusError.server(code: 503, description: "no stream for subject '\(subject)'")
        }
        let window = config.duplicateWindow.simMicroseconds
        return try call(node, "enqueue \(subject)") { now in
            // Forget msgIDs older than the window (they were recorded in time order).
            while state.dedupHead < state.dedupOrder.count, state.dedupOrder[state.dedupHead].at + window <= now {
                let old = state.dedupOrder[state.dedupHead]
                if state.dedup[old.msgID]?.at == old.at { state.dedup.removeValue(forKey: old.msgID) }
                state.dedupHead += 1
            }
            if state.dedupHead > 1024, state.dedupHead * 2 > state.dedupOrder.count {
                state.dedupOrder.removeFirst(state.dedupHead)
                state.dedupHead = 0
            }
            if !msgID.isEmpty, let seen = state.dedup[msgID], now < seen.at + window {
                state.stats.duplicateEnqueues += 1
                return .duplicate(sequence: seen.sequence)
            }
            state.streamSequence += 1
            let seq = state.streamSequence
            state.jobs[seq] = Job(
                sequence: seq,
                subject: subject,
                msgID: msgID.isEmpty ? nil : msgID,
                payload: payload,
                visibleAt: now + latency(faults(node))
            )
            state.queues[subject, default: []].append(seq)
            if !msgID.isEmpty {
                state.dedup[msgID] = (seq, now)
                state.dedupOrder.append((msgID, now))
            }
            state.stats.enqueued += 1
            return .stored(sequence: seq)
        }
    }

    func openQueue(from node: String, _ subject: String) throws {
        try call(node, "openQueue \(subject)") { _ in
            guard state.consumers[subject] == nil else { return }
            let generation = (state.generations[subject] ?? 0) + 1
            state.generations[subject] = generation
            state.consumers[subject] = generation
        }
    }

    func closeQueue(from node: String, _ subject: String) throws {
        try call(node, "closeQueue \(subject)") { _ in
            guard state.consumers.removeValue(forKey: subject) != nil else { return }
            // The consumer's delivery state goes with it; the jobs stay for the next one.
            for seq in state.queues[subject] ?? [] {
                state.jobs[seq]?.pendingUntil = nil
                state.jobs[seq]?.nakUntil = nil
                state.jobs[seq]?.deliveries = 0
            }
        }
    }

    func fetch(from node: String, _ subject: String, max: Int) throws -> [BusJob] {
        let ackWait = config.ackWait.simMicroseconds
        let maxDeliver = config.maxDeliver
        return try call(node, "fetch \(subject)") { now in
            guard let generation = state.consumers[subject] else {
                // 10014: JetStream's "consumer not found", the code NATSBus surfaces.
                throw BusError.server(code: 10014, description: "consumer not found: no open queue on '\(subject)'")
            }
            var out: [BusJob] = []
            guard max > 0 else { return out }
            for seq in state.queues[subject] ?? [] {
                guard out.count < max else { break }
                guard var job = state.jobs[seq] else { continue }
                if maxDeliver > 0, job.deliveries >= maxDeliver { continue }
                if let until = job.pendingUntil {
                    guard until <= now else { continue }  // still within its ack wait
                } else {
                    guard job.visibleAt <= now, (job.nakUntil ?? now) <= now else { continue }
                }
                job.deliveries += 1
                job.pendingUntil = now + ackWait
                job.nakUntil = nil
                state.jobs[seq] = job
                state.stats.fetched += 1
                if job.deliveries > 1 { state.stats.redelivered += 1 }
                out.append(
                    BusJob(
                        subject: subject,
                        msgID: job.msgID,
                        payload: job.payload,
                        deliveries: job.deliveries,
                        handle: "\(generation).\(seq).\(job.deliveries)"
                    )
                )
            }
            return out
        }
    }

    enum Disposition {
        case ack
        case nak(delay: Int64)
        case inProgress, term
    }

    func settle(from node: String, _ job: BusJob, _ disposition: Disposition) throws {
        let parts = job.handle.split(separator: ".")
        guard parts.count == 3, UInt64(parts[0]) != nil, let seq = UInt64(parts[1]), UInt64(parts[2]) != nil else {
            throw BusError.server(code: 400, description: "not a job handle: '\(job.handle)'")
        }
        let ackWait = config.ackWait.simMicroseconds
        // ack/term are requests (NATSBus acks synchronously), nak/inProgress fire-and-forget.
        let expectsReply: Bool
        switch disposition {
        case .ack, .term: expectsReply = true
        case .nak, .inProgress: expectsReply = false
        }
        try call(node, "\(disposition) \(job.subject)#\(seq)") { now in
            // As JetStream: acks go to the consumer by name (the subject's durable), keyed by
            // stream sequence, so a handle from an earlier consumer of the same queue still acts
            // on a job the current one has pending.
            guard state.consumers[job.subject] != nil else {
                state.stats.staleAcks += 1
                // No consumer, no subscriber on the ack subject.
                if expectsReply { throw BusError.unavailable("no responders for the ack of \(job.subject)#\(seq): the queue is not open") }
                return
            }
            guard let stored = state.jobs[seq], stored.subject == job.subject, stored.pendingUntil != nil else {
                state.stats.staleAcks += 1
                // JetStream does not answer an ack for a message its consumer does not have
                // pending (gone, or not delivered yet): the synchronous ack times out.
                if expectsReply { throw BusError.timeout }
                return
            }
            switch disposition {
            case .ack, .term:
                state.jobs.removeValue(forKey: seq)
                state.queues[job.subject]?.removeAll { $0 == seq }
                if case .ack = disposition { state.stats.acked += 1 } else { state.stats.termed += 1 }
            case .nak(let delay):
                state.jobs[seq]?.pendingUntil = nil
                state.jobs[seq]?.nakUntil = now + delay
                state.stats.naked += 1
            case .inProgress:
                if stored.pendingUntil != nil { state.jobs[seq]?.pendingUntil = now + ackWait }
            }
        }
    }

    // MARK: KV

    func kvGet(from node: String, _ key: String) throws -> KVEntry? {
        try call(node, "kvGet \(key)") { now in
            guard let r = state.kv[key], Self.isLive(r, now) else { return nil }
            return KVEntry(key: key, value: r.value, revision: r.revision)
        }
    }

    enum KVWrite {
        case create
        case update(revision: UInt64)
        case put
    }

    func kvWrite(from node: String, _ key: String, _ value: [UInt8], _ mode: KVWrite, ttl: Duration?) throws -> UInt64 {
        let ttlMicroseconds = try ttl.map { t -> Int64 in
            let us = t.simMicroseconds
            guard us > 0 else { throw BusError.server(code: 400, description: "ttl must be positive") }
            return us
        }
        return try call(node, "kv \(mode) \(key)") { now in
            let current = state.kv[key].flatMap { Self.isLive($0, now) ? $0 : nil }
            switch mode {
            case .create:
                if current != nil { throw BusError.conflict(key: key) }
            case .update(let revision):
                guard current?.revision == revision else { throw BusError.conflict(key: key) }
            case .put:
                break
            }
            state.kvRevision += 1
            state.kv[key] = KVRecord(value: value, revision: state.kvRevision, expiresAt: ttlMicroseconds.map { now + $0 })
            return state.kvRevision
        }
    }

    func kvDelete(from node: String, _ key: String, revision: UInt64?) throws {
        try call(node, "kvDelete \(key)") { now in
            let current = state.kv[key].flatMap { Self.isLive($0, now) ? $0 : nil }
            if let revision, current?.revision != revision { throw BusError.conflict(key: key) }
            state.kvRevision += 1  // the delete marker
            state.kv.removeValue(forKey: key)
        }
    }
}

private func sortedJoined(_ nodes: Set<String>) -> String { nodes.sorted().joined(separator: ",") }

/// NATS subject syntax and matching: tokens separated by `.`; in subscriptions `*` matches one
/// token and `>` (last token only) one or more.
enum Subjects {
    static func tokens(_ subject: String, wildcards: Bool) -> [Substring]? {
        guard !subject.isEmpty, !subject.contains(where: { $0 == " " || $0 == "\t" || $0 == "\r" || $0 == "\n" }) else {
            return nil
        }
        let tokens = subject.split(separator: ".", omittingEmptySubsequences: false)
        for (i, t) in tokens.enumerated() {
            if t.isEmpty { return nil }
            if t == "*" || t == ">" {
                guard wildcards else { return nil }
                if t == ">" && i != tokens.count - 1 { return nil }
            } else if t.contains("*") || t.contains(">") {
                return nil
            }
        }
        return tokens
    }

    static func matches(_ pattern: [Substring], _ subject: [Substring]) -> Bool {
        for (i, p) in pattern.enumerated() {
            if p == ">" { return subject.count > i }
            guard i < subject.count else { return false }
            if p != "*" && p != subject[i] { return false }
        }
        return pattern.count == subject.count
    }
}
