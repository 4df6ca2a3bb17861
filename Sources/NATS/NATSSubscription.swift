/// A live subscription: an `AsyncSequence` of messages (ends when unsubscribed or the client
/// closes) with a bounded buffer that drops the oldest message when full.
public struct NATSSubscription: AsyncSequence, Sendable {
    public typealias Element = NATSMessage

    public let subject: String
    public let sid: UInt64
    let buffer: MessageBuffer
    let client: NATSClient

    /// Everything buffered now, oldest first, without waiting.
    public func drain() -> [NATSMessage] { buffer.drain() }
    /// Messages dropped because the buffer was full.
    public var dropped: Int { buffer.dropped }

    public func unsubscribe() async {
        await client.unsubscribe(sid)
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        let buffer: MessageBuffer
        public mutating func next() async -> NATSMessage? { await buffer.next() }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(buffer: buffer) }
}
