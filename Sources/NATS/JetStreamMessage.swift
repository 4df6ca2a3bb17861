/// A message delivered by a JetStream consumer, with what its ack subject tells.
public struct JetStreamMessage: Sendable, Equatable {
    public var message: NATSMessage
    public var metadata: AckMetadata?

    public var subject: String { message.subject }
    public var payload: [UInt8] { message.payload }
    public var headers: NATSHeaders? { message.headers }
    /// Where acks go: `$JS.ACK.…`.
    public var ackSubject: String? { message.replyTo }

    public init(_ message: NATSMessage) {
        self.message = message
        self.metadata = message.replyTo.flatMap(AckMetadata.init(ackSubject:))
    }
}

/// Parsed `$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>` (v1) or
/// `$JS.ACK.<domain>.<account>.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>[.<token>]` (v2).
public struct AckMetadata: Sendable, Equatable {
    public var stream: String
    public var consumer: String
    /// 1 on the first delivery.
    public var numDelivered: Int
    public var streamSequence: UInt64
    public var consumerSequence: UInt64
    /// Nanoseconds since the epoch.
    public var timestamp: Int64
    public var pending: UInt64

    public init?(ackSubject: String) {
        let t = ackSubject.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard t.count >= 9, t[0] == "$JS", t[1] == "ACK" else { return nil }
        let base = t.count == 9 ? 2 : 4
        guard t.count >= base + 7,
            let delivered = Int(t[base + 2]), let sseq = UInt64(t[base + 3]), let cseq = UInt64(t[base + 4]),
            let ts = Int64(t[base + 5]), let left = UInt64(t[base + 6])
        else { return nil }
        stream = t[base]
        consumer = t[base + 1]
        numDelivered = delivered
        streamSequence = sseq
        consumerSequence = cseq
        timestamp = ts
        pending = left
    }
}

public enum AckKind: Sendable, Equatable {
    case ack
    /// Redeliver, after `delay` when given.
    case nak(delay: Duration?)
    /// Still working: restart the ack-wait timer.
    case inProgress
    /// Never redeliver.
    case term

    var body: [UInt8] {
        switch self {
        case .ack: Array("+ACK".utf8)
        case .nak(nil): Array("-NAK".utf8)
        case .nak(let d?): Array("-NAK {\"delay\":\(d.nanoseconds)}".utf8)
        case .inProgress: Array("+WPI".utf8)
        case .term: Array("+TERM".utf8)
        }
    }
}
