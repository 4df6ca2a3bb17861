extension KeyValue {
    /// Watches keys matching `keys` (NATS wildcards): first the current value of each (with
    /// `includeCurrent`), then every write, delete and purge as it happens.
    ///
    /// Built on an ephemeral push consumer (flow control, idle heartbeats, in-memory). If the
    /// server loses it (restart), the watcher goes quiet: stop it and watch again.
    public func watch(_ keys: String = ">", includeCurrent: Bool = true, capacity: Int = 1024) async throws -> KeyValueWatcher {
        let inbox = js.client.newInbox()
        let sub = try await js.client.subscribe(inbox, capacity: capacity)
        var c = ConsumerConfig()
        c.deliverSubject = inbox
        c.deliverPolicy = includeCurrent ? .lastPerSubject : .new
        c.ackPolicy = ConsumerConfig.AckPolicy.none
        c.filterSubject = subject(keys)
        c.replayPolicy = "instant"
        c.flowControl = true
        c.idleHeartbeat = Duration.seconds(5).nanoseconds
        c.memStorage = true
        c.numReplicas = 1
        c.inactiveThreshold = Duration.seconds(60).nanoseconds
        do {
            let info = try await js.createConsumer(stream: streamName, c)
            return KeyValueWatcher(kv: self, subscription: sub, consumer: info.name)
        } catch {
            await sub.unsubscribe()
            throw error
        }
    }
}

/// An `AsyncSequence` of bucket changes; call `stop()` when done.
public struct KeyValueWatcher: AsyncSequence, Sendable {
    public typealias Element = KeyValueEntry

    let kv: KeyValue
    let subscription: NATSSubscription
    public let consumer: String

    public func stop() async {
        await subscription.unsubscribe()
        _ = try? await kv.js.deleteConsumer(stream: kv.streamName, name: consumer)
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        var messages: NATSSubscription.AsyncIterator
        let kv: KeyValue

        public mutating func next() async -> KeyValueEntry? {
            while let m = await messages.next() {
                if m.status == 100 {
                    // Flow control asks for an (empty) answer; idle heartbeats have no reply subject.
                    if let reply = m.replyTo { try? await kv.js.client.publish(reply, []) }
                    continue
                }
                guard m.status == nil else { continue }
                let prefix = "$KV.\(kv.bucket)."
                guard m.subject.hasPrefix(prefix) else { continue }
                let meta = m.replyTo.flatMap(AckMetadata.init(ackSubject:))
                return KeyValueEntry(
                    bucket: kv.bucket,
                    key: String(m.subject.dropFirst(prefix.count)),
                    value: m.payload,
                    revision: meta?.streamSequence ?? 0,
                    operation: KeyValue.operation(m.headers)
                )
            }
            return nil
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(messages: subscription.makeAsyncIterator(), kv: kv)
    }
}
