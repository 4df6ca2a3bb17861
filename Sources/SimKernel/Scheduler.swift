import DeterministicSeams
import Seams

/// An action the world runs at a point in virtual time.
public typealias SimAction = @Sendable () async throws -> Void

/// Where world components (the bus, fake Kubo, node drivers) put future work. ``Scheduler``
/// is the implementation; components depend on this protocol so they can be tested alone.
public protocol EventScheduling: AnyObject, Sendable {
    /// The current virtual time.
    func now() -> Timestamp
    /// Runs `action` at `time` (clamped to now). A pending event with the same `key` is
    /// cancelled first, so a key names at most one pending event (a timer).
    @discardableResult
    func schedule(at time: Timestamp, label: String, key: String?, action: @escaping SimAction) -> UInt64
}

extension EventScheduling {
    /// Runs `action` `delay` from now.
    @discardableResult
    public func schedule(after delay: Duration, label: String, key: String? = nil, action: @escaping SimAction) -> UInt64 {
        schedule(at: now().adding(microseconds: delay.simMicroseconds), label: label, key: key, action: action)
    }

    @discardableResult
    public func schedule(at time: Timestamp, label: String, action: @escaping SimAction) -> UInt64 {
        schedule(at: time, label: label, key: nil, action: action)
    }
}

/// One event the scheduler has run (handed to the `afterEach` hook and to failures).
public struct EventIndex: Sendable, Equatable, CustomStringConvertible {
    /// 0 for the first event the scheduler ran, then 1, 2, …
    public var index: Int
    /// The event's sequence number (its tie-breaker among events at the same time).
    public var sequence: UInt64
    /// The virtual time the event ran at.
    public var time: Timestamp
    /// Microseconds of virtual time since the scheduler was created.
    public var elapsed: Int64
    public var label: String

    public var description: String { "event #\(index) (seq \(sequence)) at +\(formatElapsed(elapsed))s \(label)" }
}

/// Why the world stopped.
public struct SimulationFailure: Error, Sendable, CustomStringConvertible {
    public enum Phase: Sendable, Equatable {
        /// The event's action threw.
        case action
        /// The `afterEach` hook (invariant checks) threw.
        case check
        /// `run(until:maxEvents:)` ran out of its event budget (a livelock guard).
        case eventLimit
    }

    public var phase: Phase
    /// The event during or after which the failure happened (for `.eventLimit`: the next event).
    public var event: EventIndex
    /// The thrown error.
    public var error: any Error
    /// The invariant violations, when the error was an ``InvariantFailure``.
    public var violations: [Violation]
    /// The last lines of the trace up to the failure, oldest first.
    public var recentLog: [String]

    public var description: String {
        var out = "SIM FAIL (\(phase)) at \(event)\n"
        if violations.isEmpty {
            out += "  error: \(error)\n"
        } else {
            for v in violations { out += "  violated \(v)\n" }
        }
        if !recentLog.isEmpty {
            out += "  last \(recentLog.count) trace lines:\n"
            for line in recentLog { out += "    \(line)\n" }
        }
        return out
    }
}

/// The world's event loop: a queue of actions ordered by (virtual time, sequence number).
///
/// `run(until:)` pops events in order, moves the virtual clock to each event's time (idle time
/// is skipped), records `elapsed seq label` in the ``EventLog``, awaits the action to completion
/// (actions may schedule more events), then awaits the `afterEach` hook. Nothing runs
/// concurrently, so for the same script the order of everything, and hence the trace digest,
/// depends only on the seed. The scheduler never reads a real clock, never sleeps and never
/// starts a task.
public final class Scheduler: EventScheduling, @unchecked Sendable {
    // @unchecked: all mutable state is only touched under `lock`; actions run outside it.

    private struct Event {
        var time: Int64  // µs since the epoch
        var sequence: UInt64
        var label: String
        var key: String?
        var action: SimAction

        func precedes(_ other: Event) -> Bool { (time, sequence) < (other.time, other.sequence) }
    }

    public let clock: VirtualWallClock
    public let log: EventLog
    /// How many trailing trace lines a ``SimulationFailure`` carries.
    public let failureContextLines: Int
    public let start: Timestamp

    private let lock = Lock()
    private var heap: [Event] = []
    private var nextSequence: UInt64 = 0
    private var cancelled: Set<UInt64> = []  // lookups only, never iterated
    private var pendingByKey: [String: UInt64] = [:]  // lookups only, never iterated
    private var eventsRunTotal = 0
    private var running = false
    private var afterEachHook: (@Sendable (EventIndex) async throws -> Void)?
    private var failed: SimulationFailure?

    public init(clock: VirtualWallClock, log: EventLog = EventLog(), failureContextLines: Int = 50) {
        self.clock = clock
        self.log = log
        self.failureContextLines = failureContextLines
        self.start = clock.now()
    }

    // MARK: scheduling

    public func now() -> Timestamp { clock.now() }

    /// Microseconds of virtual time since the scheduler was created.
    public var elapsed: Int64 { clock.now().microseconds - start.microseconds }

    @discardableResult
    public func schedule(at time: Timestamp, label: String, key: String?, action: @escaping SimAction) -> UInt64 {
        let now = clock.now()
        let at = max(time, now).microseconds
        return lock.withLock {
            if let key, let old = pendingByKey[key] { cancelled.insert(old) }
            let seq = nextSequence
            nextSequence += 1
            if let key { pendingByKey[key] = seq }
            push(Event(time: at, sequence: seq, label: label, key: key, action: action))
            return seq
        }
    }

    /// Cancels the pending event named `key`; false when there was none.
    @discardableResult
    public func cancel(key: String) -> Bool {
        lock.withLock {
            guard let seq = pendingByKey.removeValue(forKey: key) else { return false }
            cancelled.insert(seq)
            return true
        }
    }

    /// Cancels the pending event with this sequence number (as returned by `schedule`).
    public func cancel(sequence: UInt64) {
        lock.withLock {
            guard heap.contains(where: { $0.sequence == sequence }) else { return }
            cancelled.insert(sequence)
            if let key = heap.first(where: { $0.sequence == sequence })?.key, pendingByKey[key] == sequence {
                pendingByKey.removeValue(forKey: key)
            }
        }
    }

    /// Whether an event named `key` is pending.
    public func isScheduled(key: String) -> Bool { lock.withLock { pendingByKey[key] != nil } }

    /// The time of the next pending event, if any.
    public var nextEventTime: Timestamp? {
        lock.withLock {
            dropCancelledTop()
            return heap.first.map { Timestamp(microsecondsSinceEpoch: $0.time) }
        }
    }

    /// Pending (not cancelled) events.
    public var pendingCount: Int { lock.withLock { heap.count - heap.reduce(0) { $0 + (cancelled.contains($1.sequence) ? 1 : 0) } } }

    /// Events run so far, over all `run` calls.
    public var eventsRun: Int { lock.withLock { eventsRunTotal } }

    /// The failure that stopped the world, if any; once failed, `run` rethrows it.
    public var failure: SimulationFailure? { lock.withLock { failed } }

    /// Installs the hook awaited after every event (invariant checks). Throwing from it stops
    /// the world with a `.check` failure.
    public func setAfterEach(_ hook: (@Sendable (EventIndex) async throws -> Void)?) {
        lock.withLock { afterEachHook = hook }
    }

    // MARK: running

    /// Runs every event due at or before `deadline`, in (time, sequence) order, then moves the
    /// clock to `deadline`. Returns how many events ran.
    ///
    /// - Throws: ``SimulationFailure`` when an action or the `afterEach` hook throws, or when
    ///   more than `maxEvents` events would run in this call. The world then stays failed.
    @discardableResult
    public func run(until deadline: Timestamp, maxEvents: Int = .max) async throws(SimulationFailure) -> Int {
        let previous = lock.withLock { () -> SimulationFailure? in
            if let failed { return failed }
            precondition(!running, "Scheduler.run is not reentrant (called from an event's action?)")
            running = true
            return nil
        }
        if let previous { throw previous }
        defer { lock.withLock { running = false } }

        var ran = 0
        while let event = popDue(deadline.microseconds) {
            let now = clock.now().microseconds
            if event.time > now { clock.advance(microseconds: event.time - now) }
            let info = lock.withLock { () -> EventIndex in
                let i = EventIndex(
                    index: eventsRunTotal,
                    sequence: event.sequence,
                    time: Timestamp(microsecondsSinceEpoch: event.time),
                    elapsed: event.time - start.microseconds,
                    label: event.label
                )
                eventsRunTotal += 1
                return i
            }
            if ran >= maxEvents {
                try fail(.eventLimit, info, EventLimitExceeded(maxEvents: maxEvents))
            }
            ran += 1
            log.record("\(formatElapsed(info.elapsed)) \(info.sequence) \(info.label)")
            do {
                try await event.action()
            } catch {
                try fail(.action, info, error)
            }
            if let hook = lock.withLock({ afterEachHook }) {
                do {
                    try await hook(info)
                } catch {
                    try fail(.check, info, error)
                }
            }
        }
        let now = clock.now().microseconds
        if deadline.microseconds > now { clock.advance(microseconds: deadline.microseconds - now) }
        return ran
    }

    /// Runs the events of the next `duration` of virtual time (see ``run(until:maxEvents:)``).
    @discardableResult
    public func run(for duration: Duration, maxEvents: Int = .max) async throws(SimulationFailure) -> Int {
        try await run(until: clock.now().adding(microseconds: duration.simMicroseconds), maxEvents: maxEvents)
    }

    private func fail(_ phase: SimulationFailure.Phase, _ event: EventIndex, _ error: any Error) throws(SimulationFailure) -> Never {
        let violations = (error as? InvariantFailure)?.violations ?? []
        log.record("! \(phase) failed: \(violations.isEmpty ? String(describing: error) : violations.map(\.description).joined(separator: "; "))")
        let failure = SimulationFailure(
            phase: phase,
            event: event,
            error: error,
            violations: violations,
            recentLog: log.last(failureContextLines)
        )
        lock.withLock { failed = failure }
        throw failure
    }

    // MARK: the heap (a binary min-heap on (time, sequence))

    private func popDue(_ deadline: Int64) -> Event? {
        lock.withLock {
            dropCancelledTop()
            guard let top = heap.first, top.time <= deadline else { return nil }
            let event = popTop()
            if let key = event.key, pendingByKey[key] == event.sequence { pendingByKey.removeValue(forKey: key) }
            return event
        }
    }

    /// Removes cancelled events from the top (lock held).
    private func dropCancelledTop() {
        while let top = heap.first, cancelled.contains(top.sequence) {
            cancelled.remove(top.sequence)
            _ = popTop()
        }
    }

    private func push(_ event: Event) {
        heap.append(event)
        var child = heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard heap[child].precedes(heap[parent]) else { break }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    private func popTop() -> Event {
        let top = heap[0]
        let last = heap.removeLast()
        if !heap.isEmpty {
            heap[0] = last
            var parent = 0
            while true {
                let left = 2 * parent + 1
                let right = left + 1
                var smallest = parent
                if left < heap.count, heap[left].precedes(heap[smallest]) { smallest = left }
                if right < heap.count, heap[right].precedes(heap[smallest]) { smallest = right }
                if smallest == parent { break }
                heap.swapAt(parent, smallest)
                parent = smallest
            }
        }
        return top
    }
}

/// `run` was asked to stop after a number of events and more were due.
public struct EventLimitExceeded: Error, Sendable, CustomStringConvertible {
    public var maxEvents: Int
    public var description: String { "more than \(maxEvents) events in one run (livelock?)" }
}

extension Duration {
    /// Whole microseconds (rounded toward zero); negative durations count as zero.
    public var simMicroseconds: Int64 {
        let (seconds, attoseconds) = components
        let us = seconds * 1_000_000 + attoseconds / 1_000_000_000_000
        return max(us, 0)
    }
}

/// `12.345678`: microseconds as seconds with six decimals (no Foundation formatting).
func formatElapsed(_ microseconds: Int64) -> String {
    let negative = microseconds < 0
    let m = negative ? -microseconds : microseconds
    let frac = String(m % 1_000_000)
    return (negative ? "-" : "") + String(m / 1_000_000) + "." + String(repeating: "0", count: 6 - frac.count) + frac
}
