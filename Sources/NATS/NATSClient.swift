import Logging
import NIOCore
import NIOPosix
import Seams
import Synchronization

/// A NATS connection: publish, subscribe, request/reply, with automatic reconnection.
///
/// All state sits behind one mutex, so the event loop can deliver messages synchronously (no
/// hop through a task, hence in order) and callers never wait on an actor queue. Channel writes
/// are always scheduled on the event loop (`send`), never run inline under the lock, so no
/// pipeline callback can re-enter the lock.
public final class NATSClient: Sendable {
    public let options: NATSOptions
    let logger: Logger
    let group: any EventLoopGroup
    private let ownsGroup: Bool
    let state = Mutex(ClientState())
    let inboxPrefix: String
    public let events: AsyncStream<NATSEvent>
    let eventSink: AsyncStream<NATSEvent>.Continuation

    init(options: NATSOptions, group: (any EventLoopGroup)?, logger: Logger) {
        self.options = options
        self.logger = logger
        self.group = group ?? MultiThreadedEventLoopGroup(numberOfThreads: 1)
        self.ownsGroup = group == nil
        self.inboxPrefix = "_INBOX." + NUID.next()
        (events, eventSink) = AsyncStream.makeStream(of: NATSEvent.self, bufferingPolicy: .bufferingNewest(64))
    }

    /// Connects to the first reachable URL (throws if none is), then keeps the connection up
    /// in the background until `close()`. Without `eventLoopGroup` the client owns a
    /// one-thread group and shuts it down on close.
    public static func connect(
        _ options: NATSOptions,
        eventLoopGroup: (any EventLoopGroup)? = nil,
        logger: Logger = Logger(label: "nats")
    ) async throws -> NATSClient {
        guard !options.urls.isEmpty else { throw NATSError.connectFailed("no server URL") }
        let client = NATSClient(options: options, group: eventLoopGroup, logger: logger)
        var lastError: any Error = NATSError.connectFailed("no server URL")
        for _ in options.urls {
            do {
                let (channel, info) = try await client.establish()
                client.didConnect(channel, info: info, first: true)
                client.startBackgroundTasks(channel)
                return client
            } catch {
                lastError = error
            }
        }
        await client.close()
        throw lastError
    }

    public var serverInfo: ServerInfo? { state.withLock { $0.info } }
    public var isConnected: Bool { state.withLock { $0.channel != nil } }
    /// Times the connection was re-established (for the node's metrics).
    public var reconnects: Int { state.withLock { $0.reconnects } }
    /// The last `-ERR` the server sent, if any.
    public var lastServerError: String? { state.withLock { $0.lastServerError } }

    /// A fresh subject under this client's inbox prefix.
    public func newInbox() -> String { inboxPrefix + "." + NUID.next() }

    // MARK: publish

    public func publish(_ subject: String, _ payload: [UInt8], replyTo: String? = nil, headers: NATSHeaders? = nil) async throws {
        let frame = try makePub(subject, replyTo: replyTo, headers: headers, payload: payload)
        try await enqueue(frame)
    }

    func makePub(_ subject: String, replyTo: String?, headers: NATSHeaders?, payload: [UInt8]) throws -> ByteBuffer {
        try ClientFrame.validate(subject: subject, wildcardsAllowed: false)
        if let replyTo { try ClientFrame.validate(subject: replyTo, wildcardsAllowed: false) }
        var frame = ByteBufferAllocator().buffer(capacity: payload.count + subject.count + 64)
        ClientFrame.pub(subject, reply: replyTo, headers: headers, payload: payload, into: &frame)
        let size = payload.count + (headers?.encoded().count ?? 0)
        let max = state.withLock { $0.info?.maxPayload } ?? Int.max
        guard size <= max else { throw NATSError.payloadTooLarge(size: size, max: max) }
        return frame
    }

    /// Writes `frame` now, or keeps it for the reconnect when disconnected (bounded).
    func enqueue(_ frame: ByteBuffer) async throws {
        let write: EventLoopFuture<Void>? = try state.withLock { s in
            switch s.phase {
            case .closed:
                throw NATSError.closed
            case .connected(let channel):
                return Self.send(frame, on: channel)
            case .connecting, .disconnected:
                guard s.outboxBytes + frame.readableBytes <= options.reconnectBufferBytes else {
                    throw NATSError.reconnectBufferFull(limit: options.reconnectBufferBytes)
                }
                s.outbox.append(frame)
                s.outboxBytes += frame.readableBytes
                return nil
            }
        }
        do {
            try await write?.get()
        } catch {
            throw BusError.unavailable("write failed: \(error)")
        }
    }

    /// Schedules the write on the channel's event loop (never inline; see the type comment).
    static func send(_ bytes: ByteBuffer, on channel: any Channel) -> EventLoopFuture<Void> {
        let promise = channel.eventLoop.makePromise(of: Void.self)
        channel.eventLoop.execute { channel.writeAndFlush(bytes, promise: promise) }
        return promise.futureResult
    }

    // MARK: subscribe

    /// Subscribes (wildcards allowed). The subscription is registered with the server once this
    /// returns (a PING round trip confirms it when connected). `capacity` bounds its buffer.
    public func subscribe(_ subject: String, queue: String? = nil, capacity: Int? = nil) async throws -> NATSSubscription {
        try ClientFrame.validate(subject: subject, wildcardsAllowed: true)
        if let queue { try ClientFrame.validate(subject: queue, wildcardsAllowed: false) }
        let buffer = MessageBuffer(capacity: capacity ?? options.subscriptionCapacity)
        let sid: UInt64 = try state.withLock { s in
            guard !s.isClosed else { throw NATSError.closed }
            let sid = s.nextSID
            s.nextSID += 1
            s.subscriptions[sid] = .init(subject: subject, queue: queue, buffer: buffer)
            if let channel = s.channel {
                var b = ByteBufferAllocator().buffer(capacity: subject.count + 32)
                ClientFrame.sub(subject, queue: queue, sid: sid, into: &b)
                _ = Self.send(b, on: channel)
            }
            return sid
        }
        if isConnected { try? await flush() }
        return NATSSubscription(subject: subject, sid: sid, buffer: buffer, client: self)
    }

    func unsubscribe(_ sid: UInt64) async {
        let buffer: MessageBuffer? = state.withLock { s in
            guard let sub = s.subscriptions.removeValue(forKey: sid) else { return nil }
            if let channel = s.channel {
                var b = ByteBufferAllocator().buffer(capacity: 32)
                ClientFrame.unsub(sid, into: &b)
                _ = Self.send(b, on: channel)
            }
            return sub.buffer
        }
        buffer?.finish()
    }

    // MARK: flush

    /// Sends a PING and waits for its PONG: everything written before has been processed.
    public func flush(timeout: Duration? = nil) async throws {
        let timeout = timeout ?? options.requestTimeout
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, any Error>) in
            let failure: (any Error)? = state.withLock { s in
                guard let channel = s.channel else {
                    return s.isClosed ? NATSError.closed : BusError.unavailable("not connected")
                }
                let id = s.nextPongID
                s.nextPongID += 1
                let timer = channel.eventLoop.scheduleTask(in: .nanoseconds(timeout.nanoseconds)) { [self] in
                    failPong(id, BusError.timeout)
                }
                s.pongs.append(.init(id: id, continuation: c, timeout: timer))
                var b = ByteBufferAllocator().buffer(capacity: 6)
                ClientFrame.ping(into: &b)
                _ = Self.send(b, on: channel)
                return nil
            }
            if let failure { c.resume(throwing: failure) }
        }
    }

    private func failPong(_ id: UInt64, _ error: any Error) {
        let c: CheckedContinuation<Void, any Error>? = state.withLock { s in
            guard let i = s.pongs.firstIndex(where: { $0.id == id }) else { return nil }
            defer { s.pongs[i].continuation = nil }
            return s.pongs[i].continuation
        }
        c?.resume(throwing: error)
    }

    // MARK: inbound

    /// Called on the event loop for every operation after the handshake.
    func handle(_ op: ServerOp, from channelID: ObjectIdentifier) {
        switch op {
        case .msg(let m):
            deliver(m, from: channelID)
        case .pong:
            let slot: ClientState.PongSlot? = state.withLock { s in
                s.keepAlivePingsOut = 0
                return s.pongs.isEmpty ? nil : s.pongs.removeFirst()
            }
            slot?.timeout?.cancel()
            slot?.continuation?.resume()
        case .err(let text):
            logger.warning("NATS server error", metadata: ["error": "\(text)"])
            state.withLock { $0.lastServerError = text }
            eventSink.yield(.serverError(text))
        case .info(let info):
            state.withLock { $0.info = info }
            if info.lameDuckMode { logger.info("NATS server entering lame duck mode") }
        case .ok, .ping:
            break
        }
    }

    private func deliver(_ m: NATSMessage, from channelID: ObjectIdentifier) {
        enum Target {
            case none
            case buffer(MessageBuffer)
            case reply(ClientState.PendingRequest)
        }
        let target: Target = state.withLock { s in
            guard let channel = s.channel, ObjectIdentifier(channel) == channelID,
                let sub = s.subscriptions[m.sid]
            else { return .none }
            if let buffer = sub.buffer { return .buffer(buffer) }
            let token = m.subject.split(separator: ".").last.map(String.init) ?? ""
            return s.requests.removeValue(forKey: token).map(Target.reply) ?? .none
        }
        switch target {
        case .none:
            break
        case .buffer(let b):
            b.push(m)
        case .reply(let r):
            r.timeout?.cancel()
            if m.status == 503 {
                r.continuation.resume(throwing: NATSError.noResponders(subject: r.subject))
            } else {
                r.continuation.resume(returning: m)
            }
        }
    }

    // MARK: close

    /// Flushes pending writes (up to `drainTimeout`), closes the connection, ends every
    /// subscription and fails pending requests; shuts down the event loop group if owned.
    public func close() async {
        if isConnected { try? await flush(timeout: options.drainTimeout) }
        let (channel, tasks, failed) = state.withLock { s in
            let channel = s.channel
            let tasks = [s.supervisor, s.pinger].compactMap { $0 }
            s.supervisor = nil
            s.pinger = nil
            let failed = s.isClosed ? nil : Self.takeWaiters(&s)
            s.phase = .closed
            return (channel, tasks, failed)
        }
        guard let failed else { return }  // already closed
        failed.fail(NATSError.closed)
        for t in tasks { t.cancel() }
        try? await channel?.close()
        for t in tasks { await t.value }
        eventSink.yield(.closed)
        eventSink.finish()
        if ownsGroup { try? await group.shutdownGracefully() }
    }
}

/// Continuations and buffers taken out of the state to be resumed outside the lock.
struct Waiters {
    var requests: [ClientState.PendingRequest] = []
    var pongs: [ClientState.PongSlot] = []
    var buffers: [MessageBuffer] = []

    func fail(_ error: any Error) {
        for r in requests {
            r.timeout?.cancel()
            r.continuation.resume(throwing: error)
        }
        for p in pongs {
            p.timeout?.cancel()
            p.continuation?.resume(throwing: error)
        }
        for b in buffers { b.finish() }
    }
}

extension NATSClient {
    /// Takes every pending request and flush; with `subscriptions`, also ends all subscriptions.
    static func takeWaiters(_ s: inout ClientState, subscriptions: Bool = true) -> Waiters {
        var w = Waiters()
        w.requests = Array(s.requests.values)
        s.requests = [:]
        w.pongs = s.pongs
        s.pongs = []
        s.keepAlivePingsOut = 0
        if subscriptions {
            w.buffers = s.subscriptions.values.compactMap(\.buffer)
            s.subscriptions = [:]
        }
        return w
    }
}
