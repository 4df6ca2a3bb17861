/// Errors of the NATS client itself. Connectivity problems are reported as `BusError.unavailable`
/// and request timeouts as `BusError.timeout` (from Seams), so that callers of the bus seam see
/// one vocabulary; JetStream API refusals are `JetStreamError`.
public enum NATSError: Error, Sendable, Equatable, CustomStringConvertible {
    /// `close()` was called.
    case closed
    /// A request reached no subscriber (the server answered with status 503).
    case noResponders(subject: String)
    case invalidSubject(String)
    /// The payload (plus headers) exceeds the server's `max_payload`.
    case payloadTooLarge(size: Int, max: Int)
    /// While disconnected, publishes are buffered up to `reconnectBufferBytes`; this one did not fit.
    case reconnectBufferFull(limit: Int)
    case tooManyPendingRequests(limit: Int)
    /// The server sent `-ERR`.
    case serverError(String)
    /// The server sent something this client cannot parse.
    case protocolViolation(String)
    case connectFailed(String)

    public var description: String {
        switch self {
        case .closed: "NATS connection closed"
        case .noResponders(let s): "no responders for \(s)"
        case .invalidSubject(let s): "invalid NATS subject \"\(s)\""
        case .payloadTooLarge(let size, let max): "payload of \(size) bytes exceeds the server's max_payload \(max)"
        case .reconnectBufferFull(let limit): "disconnected and the reconnect buffer (\(limit) bytes) is full"
        case .tooManyPendingRequests(let limit): "more than \(limit) requests pending"
        case .serverError(let s): "NATS server error: \(s)"
        case .protocolViolation(let s): "NATS protocol violation: \(s)"
        case .connectFailed(let s): "cannot connect to NATS: \(s)"
        }
    }
}

/// A JetStream API refusal: `code` is HTTP-like, `errCode` the JetStream-specific code
/// (e.g. 10071 "wrong last sequence", 10059 "stream not found", 10014 "consumer not found").
public struct JetStreamError: Error, Sendable, Equatable, CustomStringConvertible {
    public var code: Int
    public var errCode: Int
    public var errorDescription: String

    public init(code: Int, errCode: Int, description: String) {
        self.code = code
        self.errCode = errCode
        self.errorDescription = description
    }

    public static let wrongLastSequence = 10071
    public static let streamNotFound = 10059
    public static let consumerNotFound = 10014
    public static let streamNameInUse = 10058
    public static let messageNotFound = 10037

    public var description: String { "JetStream error \(code)/\(errCode): \(errorDescription)" }
}
