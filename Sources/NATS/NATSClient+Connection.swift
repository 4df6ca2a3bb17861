import Logging
import NIOCore
import NIOPosix
import Seams
import Synchronization

extension NATSClient {
    /// Opens a TCP connection to the next URL and completes the INFO/CONNECT/PING/PONG handshake.
    func establish() async throws -> (any Channel, ServerInfo) {
        let url = state.withLock { s in
            defer { s.nextURL = (s.nextURL + 1) % options.urls.count }
            return options.urls[s.nextURL]
        }
        let address = try ServerAddress(url)
        let handshake = group.next().makePromise(of: ServerInfo.self)
        let connectFrame = ConnectOptions(options).frame()
        let bootstrap = ClientBootstrap(group: group)
            .connectTimeout(.nanoseconds(options.connectTimeout.nanoseconds))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    let handler = NATSChannelHandler(
                        parser: NATSProtocolParser(),
                        connectFrame: connectFrame,
                        handshake: handshake,
                        sink: { [weak self] op, id in self?.handle(op, from: id) }
                    )
                    try channel.pipeline.syncOperations.addHandler(handler)
                }
            }
        let channel: any Channel
        do {
            channel = try await bootstrap.connect(host: address.host, port: address.port).get()
        } catch {
            handshake.fail(error)
            throw BusError.unavailable("cannot connect to \(address.host):\(address.port): \(error)")
        }
        let timer = channel.eventLoop.scheduleTask(in: .nanoseconds(options.connectTimeout.nanoseconds)) {
            handshake.fail(BusError.timeout)
            channel.close(promise: nil)
        }
        do {
            let info = try await handshake.futureResult.get()
            timer.cancel()
            return (channel, info)
        } catch {
            timer.cancel()
            channel.close(promise: nil)
            if let e = error as? NATSError { throw e }
            throw BusError.unavailable("handshake with \(address.host):\(address.port) failed: \(error)")
        }
    }

    /// Makes `channel` current: resubscribes everything, then sends what was buffered while
    /// disconnected, all before any new publish can be written (we hold the lock throughout).
    func didConnect(_ channel: any Channel, info: ServerInfo, first: Bool) {
        let accepted = state.withLock { s in
            guard !s.isClosed else { return false }
            var b = ByteBufferAllocator().buffer(capacity: 256 + s.outboxBytes)
            for (sid, sub) in s.subscriptions.sorted(by: { $0.key < $1.key }) {
                ClientFrame.sub(sub.subject, queue: sub.queue, sid: sid, into: &b)
            }
            for var frame in s.outbox { b.writeBuffer(&frame) }
            s.outbox = []
            s.outboxBytes = 0
            s.info = info
            s.phase = .connected(channel)
            s.keepAlivePingsOut = 0
            if b.readableBytes > 0 { _ = Self.send(b, on: channel) }
            return true
        }
        guard accepted else {
            channel.close(promise: nil)
            return
        }
        logger.info(
            first ? "NATS connected" : "NATS reconnected",
            metadata: ["server": "\(info.serverName ?? info.serverID)", "version": "\(info.version)"]
        )
        if !first { state.withLock { $0.reconnects += 1 } }
        eventSink.yield(first ? .connected(serverVersion: info.version) : .reconnected(serverVersion: info.version))
    }

    /// The connection is gone: pending requests and flushes fail at once (their replies would
    /// never come); subscriptions stay and are renewed on reconnect.
    func connectionLost(_ channel: any Channel) {
        let waiters: Waiters? = state.withLock { s in
            guard let current = s.channel, current === channel else { return nil }
            s.phase = .disconnected
            return Self.takeWaiters(&s, subscriptions: false)
        }
        guard let waiters else { return }
        waiters.fail(BusError.unavailable("connection lost"))
        logger.warning("NATS disconnected; reconnecting")
        eventSink.yield(.disconnected)
    }

    func startBackgroundTasks(_ channel: any Channel) {
        let supervisor = Task { [self] in await supervise(channel) }
        let pinger = Task { [self] in await keepAlive() }
        let stale: [Task<Void, Never>] = state.withLock { s in
            if s.isClosed { return [supervisor, pinger] }
            s.supervisor = supervisor
            s.pinger = pinger
            return []
        }
        for t in stale { t.cancel() }
    }

    /// Waits for the connection to close, then reconnects with capped exponential backoff
    /// (with jitter), forever, until the client is closed.
    private func supervise(_ first: any Channel) async {
        var channel: (any Channel)? = first
        var attempt = 0
        while !Task.isCancelled {
            if let current = channel {
                try? await current.closeFuture.get()
                connectionLost(current)
                channel = nil
            }
            if state.withLock({ $0.isClosed }) || Task.isCancelled { return }
            let delay = Self.backoff(attempt: attempt, base: options.reconnectBaseDelay, max: options.maxReconnectDelay)
            attempt += 1
            do { try await Task.sleep(for: delay) } catch { return }
            do {
                let (c, info) = try await establish()
                didConnect(c, info: info, first: false)
                channel = c
                attempt = 0
            } catch {
                logger.debug("NATS reconnect attempt failed", metadata: ["attempt": "\(attempt)", "error": "\(error)"])
            }
        }
    }

    /// base·2^attempt capped at `max`, minus up to 25% jitter so clients do not reconnect in step.
    static func backoff(attempt: Int, base: Duration, max: Duration) -> Duration {
        guard attempt > 0 else { return .zero }
        let raw = base * Double(1 << Swift.min(attempt - 1, 20))
        let capped = Swift.min(raw, max)
        return capped * Double.random(in: 0.75...1.0)
    }

    /// Sends a PING every `pingInterval`; after `maxPingsOut` unanswered ones the connection is
    /// considered dead and closed, which makes `supervise` reconnect.
    private func keepAlive() async {
        while !Task.isCancelled {
            do { try await Task.sleep(for: options.pingInterval) } catch { return }
            let dead: (any Channel)? = state.withLock { s in
                guard let channel = s.channel else { return nil }
                if s.keepAlivePingsOut >= options.maxPingsOut { return channel }
                s.keepAlivePingsOut += 1
                s.pongs.append(.init(id: s.nextPongID, continuation: nil, timeout: nil))
                s.nextPongID += 1
                var b = ByteBufferAllocator().buffer(capacity: 6)
                ClientFrame.ping(into: &b)
                _ = Self.send(b, on: channel)
                return nil
            }
            if let dead {
                logger.warning("NATS server stopped answering PINGs; dropping the connection")
                dead.close(promise: nil)
            }
        }
    }

    /// Drops the current connection as if the network failed (tests, or a forced failover);
    /// the client reconnects by itself.
    public func dropConnection() {
        state.withLock { $0.channel }?.close(promise: nil)
    }
}
