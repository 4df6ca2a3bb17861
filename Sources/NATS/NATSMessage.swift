/// A message received on a subscription.
public struct NATSMessage: Sendable, Equatable {
    public var subject: String
    public var replyTo: String?
    public var headers: NATSHeaders?
    public var payload: [UInt8]
    /// The subscription id it arrived on.
    public var sid: UInt64

    public init(subject: String, replyTo: String? = nil, headers: NATSHeaders? = nil, payload: [UInt8], sid: UInt64 = 0) {
        self.subject = subject
        self.replyTo = replyTo
        self.headers = headers
        self.payload = payload
        self.sid = sid
    }

    /// Status from the header block (503 no responders, 404/408/409 pull statuses, 100 heartbeats).
    public var status: Int? { headers?.status }
}
