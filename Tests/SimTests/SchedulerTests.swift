import DeterministicSeams
import Seams
import SimKernel
import Testing

/// A tiny world for tests: clock, scheduler, log.
func makeScheduler(retention: Int? = nil) -> Scheduler {
    Scheduler(clock: VirtualWallClock(), log: EventLog(retention: retention))
}

struct TestError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

@Suite("Scheduler")
struct SchedulerTests {
    @Test func eventsRunInTimeThenSequenceOrder() async throws {
        let s = makeScheduler()
        let t0 = s.now()
        s.schedule(at: t0.adding(seconds: 2), label: "c") {}
        s.schedule(at: t0.adding(seconds: 1), label: "a") {}
        s.schedule(at: t0.adding(seconds: 2), label: "d") {}
        s.schedule(at: t0.adding(seconds: 1), label: "b") {}
        s.schedule(after: .zero, label: "first") {}
        let ran = try await s.run(for: .seconds(10))
        #expect(ran == 5)
        #expect(s.log.lines == ["0.000000 4 first", "1.000000 1 a", "1.000000 3 b", "2.000000 0 c", "2.000000 2 d"])
    }

    @Test func idleTimeJumpsAndTheClockEndsAtTheDeadline() async throws {
        let s = makeScheduler()
        let t0 = s.now()
        let seen = Box<[Int64]>([])
        s.schedule(after: .seconds(3600), label: "late") { [clock = s.clock] in
            seen.mutate { $0.append(clock.now().microseconds - t0.microseconds) }
        }
        try await s.run(until: t0.adding(seconds: 7200))
        #expect(seen.value == [3_600_000_000])
        #expect(s.now() == t0.adding(seconds: 7200))
        #expect(s.eventsRun == 1)
        // Nothing due: run only moves the clock.
        #expect(try await s.run(for: .seconds(5)) == 0)
        #expect(s.now() == t0.adding(seconds: 7205))
    }

    @Test func eventsBeyondTheDeadlineWait() async throws {
        let s = makeScheduler()
        s.schedule(after: .seconds(10), label: "later") {}
        #expect(try await s.run(for: .seconds(9)) == 0)
        #expect(s.pendingCount == 1)
        #expect(s.nextEventTime == s.start.adding(seconds: 10))
        #expect(try await s.run(for: .seconds(1)) == 1)
        #expect(s.pendingCount == 0)
    }

    @Test func actionsScheduleMoreEventsAndLogLines() async throws {
        let s = makeScheduler()
        s.schedule(after: .seconds(1), label: "parent") { [s] in
            s.log.record("  hello from parent")
            s.schedule(after: .zero, label: "child-now") {}
            s.schedule(after: .seconds(1), label: "child-later") {}
        }
        s.schedule(after: .seconds(1), label: "sibling") {}
        try await s.run(for: .seconds(5))
        #expect(
            s.log.lines == [
                "1.000000 0 parent", "  hello from parent", "1.000000 1 sibling", "1.000000 2 child-now", "2.000000 3 child-later",
            ]
        )
    }

    @Test func keyedEventsAreReplacedAndCancelled() async throws {
        let s = makeScheduler()
        s.schedule(after: .seconds(5), label: "timer v1", key: "t") {}
        s.schedule(after: .seconds(2), label: "timer v2", key: "t") {}
        #expect(s.isScheduled(key: "t"))
        #expect(s.pendingCount == 1)
        s.schedule(after: .seconds(3), label: "other", key: "o") {}
        #expect(s.cancel(key: "o"))
        #expect(!s.cancel(key: "o"))
        let seq = s.schedule(after: .seconds(4), label: "by-seq") {}
        s.cancel(sequence: seq)
        try await s.run(for: .seconds(10))
        #expect(s.log.lines == ["2.000000 1 timer v2"])
        #expect(!s.isScheduled(key: "t"))
    }

    @Test func aThrowingActionStopsTheWorldWithContext() async throws {
        let s = makeScheduler()
        s.schedule(after: .seconds(1), label: "ok") { [s] in s.log.record("  fine") }
        s.schedule(after: .seconds(2), label: "boom") { throw TestError(message: "kaput") }
        s.schedule(after: .seconds(3), label: "never") {}
        do {
            try await s.run(for: .seconds(10))
            Issue.record("expected a failure")
        } catch {
            #expect(error.phase == .action)
            #expect(error.event.index == 1)
            #expect(error.event.label == "boom")
            #expect(error.event.time == s.start.adding(seconds: 2))
            #expect(error.recentLog == ["1.000000 0 ok", "  fine", "2.000000 1 boom", "! action failed: kaput"])
            #expect(String(describing: error).contains("SIM FAIL"))
        }
        // The clock stays at the failure; the world stays failed.
        #expect(s.now() == s.start.adding(seconds: 2))
        await #expect(throws: SimulationFailure.self) { try await s.run(for: .seconds(10)) }
        #expect(s.failure?.event.label == "boom")
    }

    @Test func afterEachChecksRunAfterEveryEvent() async throws {
        let s = makeScheduler()
        let counter = Box(0)
        let invariants = InvariantSet<Box<Int>>([
            Invariant("counter stays below 3") { box in box.value >= 3 ? ["counter is \(box.value)"] : [] }
        ])
        invariants.install(on: s, context: counter)
        for i in 1...5 {
            s.schedule(after: .seconds(Int64(i)), label: "inc \(i)") { counter.mutate { $0 += 1 } }
        }
        do {
            try await s.run(for: .seconds(10))
            Issue.record("expected a violation")
        } catch {
            #expect(error.phase == .check)
            #expect(error.event.label == "inc 3")
            #expect(error.event.index == 2)
            #expect(error.violations == [Violation(invariant: "counter stays below 3", message: "counter is 3")])
        }
        #expect(invariants.checksRun == 3)
    }

    @Test func theEventBudgetCatchesLivelock() async throws {
        let s = makeScheduler()
        @Sendable func again() { s.schedule(after: .zero, label: "spin") { again() } }
        again()
        await #expect(throws: SimulationFailure.self) { try await s.run(for: .seconds(1), maxEvents: 100) }
        #expect(s.failure?.phase == .eventLimit)
    }

    @Test func digestIsSHA256OfTheLines() {
        let log = EventLog()
        #expect(log.digest == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        log.record("abc")
        // sha256("abc\n")
        #expect(log.digest == "edeaaff3f1774ad2888673770c6d64097e391bc362d7d6fb34982ddf0efd18cb")
    }

    @Test func retentionKeepsTheTailButTheDigestCoversAll() {
        let all = EventLog()
        let tail = EventLog(retention: 3)
        for i in 0..<5000 {
            all.record("line \(i)")
            tail.record("line \(i)")
        }
        #expect(tail.lines == ["line 4997", "line 4998", "line 4999"])
        #expect(tail.count == 5000)
        #expect(tail.last(2) == ["line 4998", "line 4999"])
        #expect(tail.digest == all.digest)
    }

    @Test func replayCommand() {
        #expect(ReplayCommand(scenario: "drain-one", seed: 42).description == "anchorage-sim scenario drain-one --seed 42")
        #expect(
            ReplayCommand(scenario: "leader-loss", seed: 7, nodes: 5, pins: 200, extraArguments: ["--database-url", "postgres://u@h/d"])
                .description == "anchorage-sim scenario leader-loss --seed 7 --nodes 5 --pins 200 --database-url postgres://u@h/d"
        )
        #expect(ReplayCommand(scenario: "it's odd", seed: 1).description == "anchorage-sim scenario 'it'\\''s odd' --seed 1")
    }
}

/// A lock-protected value for test closures.
final class Box<T: Sendable>: @unchecked Sendable {
    private let lock = Lock()
    private var stored: T
    init(_ value: T) { stored = value }
    var value: T { lock.withLock { stored } }
    func mutate(_ body: (inout T) -> Void) { lock.withLock { body(&stored) } }
}
