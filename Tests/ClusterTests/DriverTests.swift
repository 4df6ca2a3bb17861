import Cluster
import Seams
import Testing
import Worker

/// The drivers are values: these tests feed events and read actions, no I/O.
@Suite struct WorkerDriverTests {
    static func claim(_ n: UInt64) -> Claim {
        Claim(
            org: TypeID(prefix: "org", high: 1, low: n),
            pin: TypeID(prefix: "pin", high: 2, low: n),
            cid: "cid\(n)",
            attempts: 1,
            created: Timestamp(microsecondsSinceEpoch: 0)
        )
    }

    /// A driver past its start-up recovery.
    static func started(_ max: Int) -> WorkerDriver {
        var d = WorkerDriver(maxConcurrentPins: max)
        _ = d.handle(.wake(acceptsJobs: true, jobs: 0))
        _ = d.handle(.recovered)
        _ = d.handle(.housekept)
        _ = d.handle(.claimed([]))
        return d
    }

    @Test func theFirstWakeRequeuesThePreviousRunsClaimsBeforeAnything() {
        var d = WorkerDriver(maxConcurrentPins: 4)
        #expect(d.handle(.wake(acceptsJobs: true, jobs: 0)) == [.recoverClaims])
        #expect(d.handle(.wake(acceptsJobs: true, jobs: 0)) == [])
        #expect(d.handle(.recovered) == [.housekeep])
        // Recovery failed: the next wake tries again.
        var e = WorkerDriver(maxConcurrentPins: 4)
        _ = e.handle(.wake(acceptsJobs: true, jobs: 0))
        e.retryRecovery()
        #expect(e.handle(.wake(acceptsJobs: true, jobs: 0)) == [.recoverClaims])
    }

    @Test func aWakeHousekeepsThenClaimsTheFreeSlots() {
        var d = Self.started(4)
        #expect(d.handle(.wake(acceptsJobs: true, jobs: 0)) == [.housekeep])
        #expect(d.handle(.housekept) == [.claim(limit: 4)])
        let a = Self.claim(1)
        let b = Self.claim(2)
        #expect(d.handle(.claimed([a, b])) == [.attempt(a), .attempt(b), .inflight(2)])
    }

    @Test func eachOutcomeIsRecordedWhenItsAttemptEndsNotAfterTheSlowest() {
        var d = Self.started(2)
        _ = d.handle(.wake(acceptsJobs: true, jobs: 0))
        _ = d.handle(.housekept)
        let slow = Self.claim(1)
        let fast = Self.claim(2)
        _ = d.handle(.claimed([slow, fast]))
        // The fast one ends while the slow one still runs: it is recorded at once.
        #expect(d.handle(.attemptEnded(fast, .pinned)) == [.finish(fast, .pinned)])
        // The claim was full, so more may be due: the freed slot is refilled without a poll.
        #expect(d.handle(.finished(fast)) == [.inflight(1), .claim(limit: 1)])
        let next = Self.claim(3)
        #expect(d.handle(.claimed([next])) == [.attempt(next), .inflight(2)])
        #expect(d.inflight.map(\.pin) == [slow.pin, next.pin])
    }

    @Test func aFreedSlotWaitsForThePollWhenNothingMoreWasDue() {
        var d = Self.started(4)
        _ = d.handle(.wake(acceptsJobs: true, jobs: 0))
        _ = d.handle(.housekept)
        let a = Self.claim(1)
        _ = d.handle(.claimed([a]))
        _ = d.handle(.attemptEnded(a, .pinned))
        #expect(d.handle(.finished(a)) == [.inflight(0)])
    }

    @Test func jobsAreAckedOnceTheirClaimIsRecordedAndMarkABacklog() {
        var d = Self.started(1)
        #expect(d.handle(.wake(acceptsJobs: true, jobs: 3)) == [.housekeep])
        #expect(d.handle(.housekept) == [.claim(limit: 1)])
        let a = Self.claim(1)
        #expect(d.handle(.claimed([a])) == [.attempt(a), .inflight(1), .ackJobs])
        // All slots busy: a wake housekeeps, finds no slot, acks its jobs.
        #expect(d.handle(.wake(acceptsJobs: true, jobs: 1)) == [.housekeep])
        #expect(d.handle(.housekept) == [.ackJobs])
        _ = d.handle(.attemptEnded(a, .pinned))
        #expect(d.handle(.finished(a)) == [.inflight(0), .claim(limit: 1)])
    }

    @Test func aWakeDuringAClaimRunsAfterIt() {
        var d = Self.started(4)
        _ = d.handle(.wake(acceptsJobs: true, jobs: 0))
        #expect(d.handle(.wake(acceptsJobs: true, jobs: 0)) == [])
        #expect(d.handle(.housekept) == [.claim(limit: 4)])
        #expect(d.handle(.claimed([])) == [.housekeep])
    }

    @Test func aDrainingNodePastItsGraceClaimsNothingButStillHousekeeps() {
        var d = Self.started(4)
        #expect(d.handle(.wake(acceptsJobs: false, jobs: 0)) == [.housekeep])
        #expect(d.handle(.housekept) == [])
    }

    @Test func afterShutdownNothingHappens() {
        var d = WorkerDriver(maxConcurrentPins: 4)
        _ = d.handle(.shutdown)
        #expect(d.handle(.wake(acceptsJobs: true, jobs: 2)) == [])
        #expect(d.isStopped)
    }
}

@Suite struct ClusterDriverTests {
    @Test func joinRetriesWithDoublingDelaysCappedAtTenSeconds() {
        var d = ClusterDriver(tick: .milliseconds(500))
        #expect(d.handle(.start) == [.join])
        var delays: [Duration] = []
        for _ in 0..<8 {
            guard case .after(let delay, .start)? = d.handle(.joinFailed).first else {
                Issue.record("expected a retry")
                return
            }
            delays.append(delay)
            #expect(d.handle(.start) == [.join])
        }
        #expect(
            delays == [
                .milliseconds(200), .milliseconds(400), .milliseconds(800), .milliseconds(1600), .milliseconds(3200), .milliseconds(6400),
                .seconds(10), .seconds(10),
            ]
        )
    }

    @Test func joinedStepsEachLaneEveryTickAndLeavesOnShutdown() {
        var d = ClusterDriver(tick: .milliseconds(500))
        _ = d.handle(.start)
        #expect(d.handle(.joined) == [.step(.vital), .step(.duties)])
        // Each lane's timer starts when its own step ends: a long duties step (its stepped
        // event comes late) does not move the vital lane's ticks.
        #expect(d.handle(.stepped(.vital)) == [.after(.milliseconds(500), .tick(.vital))])
        #expect(d.handle(.tick(.vital)) == [.step(.vital)])
        #expect(d.handle(.stepped(.vital)) == [.after(.milliseconds(500), .tick(.vital))])
        #expect(d.handle(.stepped(.duties)) == [.after(.milliseconds(500), .tick(.duties))])
        #expect(d.handle(.tick(.duties)) == [.step(.duties)])
        #expect(d.handle(.shutdown) == [.leave])
        #expect(d.handle(.tick(.vital)) == [])
    }

    @Test func shutdownBeforeJoiningHasNothingToLeave() {
        var d = ClusterDriver(tick: .milliseconds(500))
        _ = d.handle(.start)
        #expect(d.handle(.shutdown) == [])
    }
}
