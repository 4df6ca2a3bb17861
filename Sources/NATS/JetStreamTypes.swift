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
        case numReplicas = "num_replicas"
        case maxMsgs = "max_msgs"
        case maxBytes = "max_bytes"
        case maxAge = "max_age"
        case maxMsgsPerSubject = "max_msgs_per_subject"
        case maxMsgSize = "max_msg_size"
        case duplicateWindow = "duplicate_window"
        case allowDirect = "allow_direct"
        case allowRollupHeaders = "allow_rollup_hdrs"
        case denyDelete = "deny_delete"
        case denyPurge = "deny_purge"
        case allowMsgTTL = "allow_msg_ttl"
        case subjectDeleteMarkerTTL = "subject_delete_marker_ttl"
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
        case messages, bytes
        case firstSeq = "first_seq"
        case lastSeq = "last_seq"
        case consumerCount = "consumer_count"
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
        case name
        case durableName = "durable_name"
        case deliverPolicy = "deliver_policy"
        case optStartSeq = "opt_start_seq"
        case ackPolicy = "ack_policy"
        case ackWait = "ack_wait"
        case maxDeliver = "max_deliver"
        case filterSubject = "filter_subject"
        case replayPolicy = "replay_policy"
        case maxAckPending = "max_ack_pending"
        case maxWaiting = "max_waiting"
        case deliverSubject = "deliver_subject"
        case flowControl = "flow_control"
        case idleHeartbeat = "idle_heartbeat"
        case memStorage = "mem_storage"
        case numReplicas = "num_replicas"
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
        case streamName = "stream_name"
        case name, config
        case numPending = "num_pending"
        case numAckPending = "num_ack_pending"
        case numRedelivered = "num_redelivered"
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
        enum CodingKeys: String, CodingKey {
            case code
            case errCode = "err_code"
            case description
        }
    }
    var error: Body?
}

struct StreamCreateResponse: Decodable { var config: StreamConfig }
struct DeleteResponse: Decodable { var success: Bool }
struct ConsumerCreateRequest: Encodable {
    var streamName: String
    var config: ConsumerConfig
    enum CodingKeys: String, CodingKey {
        case streamName = "stream_name"
        case config
    }
}
struct PullRequest: Encodable {
    var batch: Int
    var expires: Int64?
    var noWait: Bool?
    enum CodingKeys: String, CodingKey {
        case batch, expires
        case noWait = "no_wait"
    }
}
