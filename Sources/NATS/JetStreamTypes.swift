/// Stream configuration (the fields this client sets; nil fields are left to the server).
/// Durations are nanoseconds on the wire.
public struct StreamConfig: Codable, Sendable, Equatable {
    public enum Retention: String, Codable, Sendable { case limits, interest, workqueue }
    public enum Storage: String, Codable, Sendable { case file, memory }
    public enum Discard: String, Codable, Sendable { case old, new }

    public var name: String
    public var subjects: [String]?
    public var retention: Retention?
    public var storage: Storage?
    public var discard: Discard?
    public var numReplicas: Int?
    public var maxMsgs: Int64?
    public var maxBytes: Int64?
    public var maxAge: Int64?
    public var maxMsgsPerSubject: Int64?
    public var maxMsgSize: Int32?
    public var duplicateWindow: Int64?
    public var allowDirect: Bool?
    public var allowRollupHeaders: Bool?
    public var denyDelete: Bool?
    public var denyPurge: Bool?
    public var allowMsgTTL: Bool?
    public var subjectDeleteMarkerTTL: Int64?

    enum CodingKeys: String, CodingKey {
        case name, subjects, retention, storage, discard
        case numReplicas = "num_replicas", maxMsgs = "max_msgs", maxBytes = "max_bytes", maxAge = "max_age"
        case maxMsgsPerSubject = "max_msgs_per_subject", maxMsgSize = "max_msg_size"
        case duplicateWindow = "duplicate_window", allowDirect = "allow_direct"
        case allowRollupHeaders = "allow_rollup_hdrs", denyDelete = "deny_delete", denyPurge = "deny_purge"
        case allowMsgTTL = "allow_msg_ttl", subjectDeleteMarkerTTL = "subject_delete_marker_ttl"
    }

    public init(name: String, subjects: [String]? = nil) {
        self.name = name
        self.subjects = subjects
    }

    /// True when every field set here has the same value in `other` (the server's full config).
    func isSatisfied(by other: StreamConfig) -> Bool {
        func same<T: Equatable>(_ k: KeyPath<StreamConfig, T?>) -> Bool { self[keyPath: k] == nil || self[keyPath: k] == other[keyPath: k] }
        return same(\.subjects) && same(\.retention) && same(\.storage) && same(\.discard) && same(\.numReplicas)
            && same(\.maxMsgs) && same(\.maxBytes) && same(\.maxAge) && same(\.maxMsgsPerSubject) && same(\.maxMsgSize)
            && same(\.duplicateWindow) && same(\.allowDirect) && same(\.allowRollupHeaders) && same(\.denyDelete)
            && same(\.denyPurge) && same(\.allowMsgTTL) && same(\.subjectDeleteMarkerTTL)
    }
}

public struct StreamState: Codable, Sendable, Equatable {
    public var messages: UInt64
    public var bytes: UInt64
    public var firstSeq: UInt64
    public var lastSeq: UInt64
    public var consumerCount: Int

    enum CodingKeys: String, CodingKey {
        case messages, bytes, firstSeq = "first_seq", lastSeq = "last_seq", consumerCount = "consumer_count"
    }
}

public struct StreamInfo: Decodable, Sendable {
    public var config: StreamConfig
    public var state: StreamState
}

/// Consumer configuration. Pull consumers leave `deliverSubject` nil.
public struct ConsumerConfig: Codable, Sendable, Equatable {
    public enum DeliverPolicy: String, Codable, Sendable {
        case all, last, new
        case lastPerSubject = "last_per_subject"
        case byStartSequence = "by_start_sequence"
    }
    public enum AckPolicy: String, Codable, Sendable { case none, all, explicit }

    public var name: String?
    public var durableName: String?
    public var deliverPolicy: DeliverPolicy?
    public var optStartSeq: UInt64?
    public var ackPolicy: AckPolicy?
    public var ackWait: Int64?
    public var maxDeliver: Int?
    public var filterSubject: String?
    public var replayPolicy: String?
    public var maxAckPending: Int?
    public var maxWaiting: Int?
    public var deliverSubject: String?
    public var flowControl: Bool?
    public var idleHeartbeat: Int64?
    public var memStorage: Bool?
    public var numReplicas: Int?
    public var inactiveThreshold: Int64?

    enum CodingKeys: String, CodingKey {
        case name, durableName = "durable_name", deliverPolicy = "deliver_policy", optStartSeq = "opt_start_seq"
        case ackPolicy = "ack_policy", ackWait = "ack_wait", maxDeliver = "max_deliver"
        case filterSubject = "filter_subject", replayPolicy = "replay_policy", maxAckPending = "max_ack_pending"
        case maxWaiting = "max_waiting", deliverSubject = "deliver_subject", flowControl = "flow_control"
        case idleHeartbeat = "idle_heartbeat", memStorage = "mem_storage", numReplicas = "num_replicas"
        case inactiveThreshold = "inactive_threshold"
    }

    public init() {}
}

public struct ConsumerInfo: Decodable, Sendable {
    public var streamName: String
    public var name: String
    public var config: ConsumerConfig
    public var numPending: UInt64?
    public var numAckPending: Int?
    public var numRedelivered: Int?

    enum CodingKeys: String, CodingKey {
        case streamName = "stream_name", name, config, numPending = "num_pending"
        case numAckPending = "num_ack_pending", numRedelivered = "num_redelivered"
    }
}

/// The server's answer to a JetStream publish.
public struct PubAck: Decodable, Sendable, Equatable {
    public var stream: String
    public var seq: UInt64
    public var duplicate: Bool

    enum CodingKeys: String, CodingKey { case stream, seq, duplicate }

    public init(stream: String, seq: UInt64, duplicate: Bool) {
        (self.stream, self.seq, self.duplicate) = (stream, seq, duplicate)
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        stream = try c.decode(String.self, forKey: .stream)
        seq = try c.decode(UInt64.self, forKey: .seq)
        duplicate = try c.decodeIfPresent(Bool.self, forKey: .duplicate) ?? false
    }
}

/// `{"error": {...}}` present in every failed API response.
struct APIErrorEnvelope: Decodable {
    struct Body: Decodable {
        var code: Int
        var errCode: Int?
        var description: String?
        enum CodingKeys: String, CodingKey { case code, errCode = "err_code", description }
    }
    var error: Body?
}

struct StreamCreateResponse: Decodable { var config: StreamConfig }
struct DeleteResponse: Decodable { var success: Bool }
struct ConsumerCreateRequest: Encodable {
    var streamName: String
    var config: ConsumerConfig
    enum CodingKeys: String, CodingKey { case streamName = "stream_name", config }
}
struct PullRequest: Encodable {
    var batch: Int
    var expires: Int64?
    var noWait: Bool?
    enum CodingKeys: String, CodingKey { case batch, expires, noWait = "no_wait" }
}
