import Logging
import NATS
import Seams

/// `ClusterBus` on NATS: core pub/sub, one JetStream work-queue stream with a durable pull
/// consumer per subject, and a KV bucket with per-key TTLs (nats-server 2.11+).
public final class NATSBus: ClusterBus {
    public struct Configuration: Sendable {
        public var nats: NATSOptions
        public var bucket = "ANCHORAGE_CLUSTER"
        public var jobsStream = "PIN_JOBS"
        public var jobsSubjects = "pin.jobs.>"
        /// A repeated msgID inside this window is dropped as a duplicate.
        public var duplicateWindow: Duration = .seconds(120)
        /// A job not acked (or `inProgress`'d) within this is delivered again.
        public var ackWait: Duration = .seconds(30)
        /// Deliveries before the server gives up on a job (-1: unlimited).
        public var maxDeliver = -1
        /// JetStream replicas for the stream and the bucket (1 or 3 in a cluster).
        public var replicas = 1
        /// How long `connect` keeps retrying stream/bucket setup while JetStream comes up.
        public var setupTimeout: Duration = .seconds(30)

        public init(nats: NATSOptions) { self.nats = nats }
    }

    public let configuration: Configuration
    public let client: NATSClient
    public let jetStream: JetStream
    public let kv: KeyValue
    let logger: Logger

    private init(configuration: Configuration, client: NATSClient, kv: KeyValue, logger: Logger) {
        self.configuration = configuration
        self.client = client
        self.jetStream = kv.js
        self.kv = kv
        self.logger = logger
    }

    /// Connects, refuses servers older than 2.11 or without JetStream, and ensures the
    /// work-queue stream and the KV bucket exist with this configuration.
    public static func connect(
        urls: [String],
        auth: NATSAuth = .none,
        bucket: String = "ANCHORAGE_CLUSTER",
        jobsStream: String = "PIN_JOBS",
        jobsSubjects: String = "pin.jobs.>",
        duplicateWindow: Duration = .seconds(120),
        ackWait: Duration = .seconds(30),
        maxDeliver: Int = -1,
        replicas: Int = 1,
        logger: Logger = Logger(label: "anchorage.bus")
    ) async throws -> NATSBus {
        var c = Configuration(nats: NATSOptions(urls: urls, auth: auth))
        c.bucket = bucket
        c.jobsStream = jobsStream
        c.jobsSubjects = jobsSubjects
        c.duplicateWindow = duplicateWindow
        c.ackWait = ackWait
        c.maxDeliver = maxDeliver
        c.replicas = replicas
        return try await connect(c, logger: logger)
    }

    public static func connect(_ configuration: Configuration, logger: Logger = Logger(label: "anchorage.bus")) async throws -> NATSBus {
        let client = try await NATSClient.connect(configuration.nats, logger: logger)
        do {
            guard let info = client.serverInfo else { throw BusError.unavailable("no INFO from server") }
            try NATSBusError.check(info)
            let js = JetStream(client: client)
            let kv = try await setUp(js, configuration, logger: logger)
            return NATSBus(configuration: configuration, client: client, kv: kv, logger: logger)
        } catch {
            await client.close()
            throw error
        }
    }

    /// Creates or updates the stream and bucket, retrying while JetStream is still starting
    /// (a fresh cluster elects its meta leader first).
    private static func setUp(_ js: JetStream, _ c: Configuration, logger: Logger) async throws -> KeyValue {
        var stream = StreamConfig(name: c.jobsStream, subjects: [c.jobsSubjects])
        stream.retention = .workqueue
        stream.storage = .file
        stream.numReplicas = c.replicas
        stream.duplicateWindow = nanoseconds(c.duplicateWindow)
        var bucket = KeyValueConfig(bucket: c.bucket)
        bucket.history = 1
        bucket.allowMsgTTL = true
        bucket.replicas = c.replicas
        let deadline = ContinuousClock.now + c.setupTimeout
        while true {
            do {
                try await js.createOrUpdateStream(stream)
                return try await KeyValue.create(js, bucket)
            } catch let e where isTransient(e) && ContinuousClock.now < deadline {
                logger.info("JetStream not ready yet; retrying", metadata: ["error": "\(e)"])
                try await Task.sleep(for: .milliseconds(250))
            }
        }
    }

    private static func isTransient(_ e: any Error) -> Bool {
        switch e {
        case BusError.unavailable, BusError.timeout: true
        // 503: JetStream not ready; 10005 "no suitable peers for placement": a fresh cluster
        // whose peers have not all joined yet (permanent if replicas > servers: then the
        // error surfaces when setupTimeout is over).
        case let j as JetStreamError: j.code == 503 || j.errCode == 10005
        default: false
        }
    }

    public func close() async { await client.close() }

    // MARK: pub/sub

    public func publish(_ subject: String, _ payload: [UInt8]) async throws {
        try await mapping { try await client.publish(subject, payload) }
    }

    public func subscribe(_ subject: String, capacity: Int) async throws -> any BusInbox {
        try await mapping { NATSBusInbox(subscription: try await client.subscribe(subject, capacity: capacity)) }
    }

    // MARK: work queue

    public func enqueue(_ subject: String, msgID: String, _ payload: [UInt8]) async throws -> EnqueueResult {
        try await mapping {
            let ack = try await jetStream.publish(subject, payload, msgID: msgID)
            return ack.duplicate ? .duplicate(sequence: ack.seq) : .stored(sequence: ack.seq)
        }
    }

    public func openQueue(_ subject: String) async throws {
        var c = ConsumerConfig()
        c.durableName = QueueNames.consumer(for: subject)
        c.filterSubject = subject
        c.ackPolicy = .explicit
        c.ackWait = nanoseconds(configuration.ackWait)
        c.maxDeliver = configuration.maxDeliver
        c.deliverPolicy = .all
        _ = try await mapping { try await jetStream.createConsumer(stream: configuration.jobsStream, c) }
    }

    public func closeQueue(_ subject: String) async throws {
        _ = try await mapping {
            try await jetStream.deleteConsumer(stream: configuration.jobsStream, name: QueueNames.consumer(for: subject))
        }
    }

    /// Throws `BusError.server(code: 10014, …)` when the subject's queue is not open.
    public func fetch(_ subject: String, max: Int, wait: Duration) async throws -> [BusJob] {
        let consumer = QueueNames.consumer(for: subject)
        let msgs: [JetStreamMessage]
        do {
            msgs = try await mapping {
                try await jetStream.fetch(stream: configuration.jobsStream, consumer: consumer, batch: max, wait: wait)
            }
        } catch BusError.server(let code, _) where code == JetStreamError.consumerNotFound {
            throw BusError.server(code: code, description: "queue \(subject) is not open (no consumer \(consumer)): call openQueue first")
        }
        return msgs.compactMap { m in
            guard let handle = m.ackSubject else { return nil }
            return BusJob(
                subject: m.subject,
                msgID: m.headers?["Nats-Msg-Id"],
                payload: m.payload,
                deliveries: m.metadata?.numDelivered ?? 1,
                handle: handle
            )
        }
    }

    public func ack(_ job: BusJob) async throws { try await acknowledge(job, .ack) }
    public func nak(_ job: BusJob, delay: Duration?) async throws { try await acknowledge(job, .nak(delay: delay)) }
    public func inProgress(_ job: BusJob) async throws { try await acknowledge(job, .inProgress) }
    public func term(_ job: BusJob) async throws { try await acknowledge(job, .term) }

    private func acknowledge(_ job: BusJob, _ kind: AckKind) async throws {
        try await mapping { try await jetStream.ack(subject: job.handle, kind) }
    }

    // MARK: KV

    public func kvGet(_ key: String) async throws -> KVEntry? {
        try await mapping { try await kv.get(key).map { KVEntry(key: key, value: $0.value, revision: $0.revision) } }
    }

    @discardableResult
    public func kvCreate(_ key: String, _ value: [UInt8], ttl: Duration?) async throws -> UInt64 {
        try await mapping { try await kv.create(key, value, ttl: ttl) }
    }

    @discardableResult
    public func kvUpdate(_ key: String, _ value: [UInt8], revision: UInt64, ttl: Duration?) async throws -> UInt64 {
        try await mapping { try await kv.update(key, value, revision: revision, ttl: ttl) }
    }

    @discardableResult
    public func kvPut(_ key: String, _ value: [UInt8], ttl: Duration?) async throws -> UInt64 {
        try await mapping { try await kv.put(key, value, ttl: ttl) }
    }

    public func kvDelete(_ key: String, revision: UInt64?) async throws {
        try await mapping { try await kv.delete(key, revision: revision) }
    }

    // MARK: errors

    /// Everything leaving the bus is a `BusError`: JetStream refusals become `.server` with
    /// the JetStream error code, a closed client or missing responders `.unavailable`.
    private func mapping<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let e as BusError {
            throw e
        } catch let e as JetStreamError {
            throw BusError.server(code: e.errCode != 0 ? e.errCode : e.code, description: e.errorDescription)
        } catch let e as NATSError {
            switch e {
            case .closed, .noResponders, .reconnectBufferFull, .tooManyPendingRequests:
                throw BusError.unavailable(e.description)
            default:
                throw BusError.server(code: 0, description: e.description)
            }
        }
    }
}

/// JetStream durations are nanoseconds on the wire.
func nanoseconds(_ d: Duration) -> Int64 {
    let (s, atto) = d.components
    return s * 1_000_000_000 + atto / 1_000_000_000
}
