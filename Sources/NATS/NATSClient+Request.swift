import NIOCore
import Seams
import Synchronization

extension NATSClient {
    /// Sends a request and waits for the first reply, through one shared inbox subscription
    /// (`_INBOX.<id>.*`). Throws `NATSError.noResponders` when nobody listens,
    /// `BusError.timeout` after `timeout`, and `BusError.unavailable` at once when disconnected
    /// (or when the connection drops before the reply).
    public func request(
        _ subject: String,
        _ payload: [UInt8],
        headers: NATSHeaders? = nil,
        timeout: Duration? = nil
    ) async throws -> NATSMessage {
        let token = NUID.next()
        let reply = inboxPrefix + "." + token
        let frame = try makePub(subject, replyTo: reply, headers: headers, payload: payload)
        let timeout = timeout ?? options.requestTimeout
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (c: CheckedContinuation<NATSMessage, any Error>) in
                let failure: (any Error)? = state.withLock { s in
                    guard let channel = s.channel else {
                        return s.isClosed ? NATSError.closed : BusError.unavailable("not connected (reconnecting)")
                    }
                    guard s.requests.count < options.maxPendingRequests else {
                        return NATSError.tooManyPendingRequests(limit: options.maxPendingRequests)
                    }
                    if Task.isCancelled { return CancellationError() }
                    var out = ByteBufferAllocator().buffer(capacity: frame.readableBytes + 64)
                    if s.requestInboxSID == nil {
                        let sid = s.nextSID
                        s.nextSID += 1
                        s.requestInboxSID = sid
                        s.subscriptions[sid] = .init(subject: inboxPrefix + ".*", queue: nil, buffer: nil)
                        ClientFrame.sub(inboxPrefix + ".*", queue: nil, sid: sid, into: &out)
                    }
                    let timer = channel.eventLoop.scheduleTask(in: .nanoseconds(timeout.nanoseconds)) { [self] in
                        failRequest(token, BusError.timeout)
                    }
                    s.requests[token] = .init(subject: subject, continuation: c, timeout: timer)
                    var f = frame
                    out.writeBuffer(&f)
                    _ = Self.send(out, on: channel)
                    return nil
                }
                if let failure { c.resume(throwing: failure) }
            }
        } onCancel: {
            failRequest(token, CancellationError())
        }
    }

    func failRequest(_ token: String, _ error: any Error) {
        let r = state.withLock { $0.requests.removeValue(forKey: token) }
        r?.timeout?.cancel()
        r?.continuation.resume(throwing: error)
    }
}
