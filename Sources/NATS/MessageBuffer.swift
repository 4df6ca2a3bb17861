import Synchronization

/// A bounded FIFO between the connection (producer, on the event loop) and one consumer: when
/// full the oldest message is dropped and counted. Supports both async iteration and `drain()`.
final class MessageBuffer: Sendable {
    private struct State {
        var items: [NATSMessage] = []
        var head = 0
        var dropped = 0
        var finished = false
        var waiters: [CheckedContinuation<NATSMessage?, Never>] = []
        var count: Int { items.count - head }
    }

    let capacity: Int
    private let state = Mutex(State())

    init(capacity: Int) { self.capacity = max(1, capacity) }

    func push(_ message: NATSMessage) {
        let waiter: CheckedContinuation<NATSMessage?, Never>? = state.withLock { s in
            if s.finished { return nil }
            if !s.waiters.isEmpty { return s.waiters.removeFirst() }
            if s.count >= capacity {
                s.head += 1
                s.dropped += 1
            }
            s.items.append(message)
            if s.head > 1024, s.head * 2 > s.items.count {  // compact now and then
                s.items.removeFirst(s.head)
                s.head = 0
            }
            return nil
        }
        waiter?.resume(returning: message)
    }

    /// No more messages; waiting consumers get nil once the buffer is empty.
    func finish() {
        let waiters = state.withLock { s in
            s.finished = true
            defer { s.waiters = [] }
            return s.waiters
        }
        for w in waiters { w.resume(returning: nil) }
    }

    func drain() -> [NATSMessage] {
        state.withLock { s in
            let out = Array(s.items[s.head...])
            s.items = []
            s.head = 0
            return out
        }
    }

    var dropped: Int { state.withLock { $0.dropped } }
    var isFinished: Bool { state.withLock { $0.finished } }

    /// The next message, or nil when finished (or the task is cancelled).
    func next() async -> NATSMessage? {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<NATSMessage?, Never>) in
                let ready: NATSMessage?? = state.withLock { s in
                    if s.count > 0 {
                        let m = s.items[s.head]
                        s.head += 1
                        if s.head == s.items.count {
                            s.items = []
                            s.head = 0
                        }
                        return .some(m)
                    }
                    if s.finished || Task.isCancelled { return .some(nil) }
                    s.waiters.append(c)
                    return .none
                }
                if let ready { c.resume(returning: ready) }
            }
        } onCancel: {
            let waiters = state.withLock { s in
                defer { s.waiters = [] }
                return s.waiters
            }
            for w in waiters { w.resume(returning: nil) }
        }
    }
}
