import Seams

/// The pin worker's loop as a value: events in, actions out, no I/O (the sans-IO shape of
/// postgres-nio's `PoolStateMachine`). Production runs it on the clock in a task group
/// (`AnchorageNode.WorkerService`), the simulator from its scheduler; both perform the actions
/// through ``WorkerLoop``, so the two differ only in how time passes and how an attempt is
/// carried (a child task, or an event at `now + latency`).
///
/// Every attempt is its own unit: it starts when a slot is free and its outcome is recorded
/// the moment it ends, which frees the slot for the next claim at once. One slow or
/// never-resolving CID therefore holds exactly one of `maxConcurrentPins` slots, never the
/// others (the old round-based worker recorded a round's outcomes after its slowest attempt).
public struct WorkerDriver: Sendable, Equatable {
    public enum Event: Sendable, Equatable {
        /// The poll timer fired, or jobs woke the worker (`jobs` > 0). `acceptsJobs` is the
        /// cluster agent's word (false while a draining node stops claiming).
        case wake(acceptsJobs: Bool, jobs: Int)
        /// ``Action/recoverClaims`` ended.
        case recovered
        /// Requeue and unpin (``Action/housekeep``) ended.
        case housekept
        /// A ``Action/claim(limit:)`` returned these (empty when it failed or nothing was due).
        case claimed([Claim])
        /// An attempt ended with this outcome.
        case attemptEnded(Claim, PinOutcome)
        /// The outcome of this claim is recorded (or recording failed: its lease brings it back).
        case finished(Claim)
        /// Shutting down: no new work; attempts in flight are the shell's to cancel.
        case shutdown
    }

    public enum Action: Sendable, Equatable {
        /// Once, before the first claim: requeue the claims a previous run of this node left.
        case recoverClaims
        /// Requeue this node's expired claims (standalone) and unpin released CIDs.
        case housekeep
        /// Claim up to `limit` due placements, fairly between orgs.
        case claim(limit: Int)
        /// Start an attempt; it ends with ``Event/attemptEnded(_:_:)``.
        case attempt(Claim)
        /// Record how a claim ended; ends with ``Event/finished(_:)``.
        case finish(Claim, PinOutcome)
        /// The jobs that woke the worker so far may be acked: what they asked for is claimed
        /// (or nothing was due). They are only wake-ups; PostgreSQL holds the work.
        case ackJobs
        /// Pins in flight changed (the agent's drain waits for zero).
        case inflight(Int)
    }

    enum Phase: Sendable, Equatable {
        case starting, recovering, idle, housekeeping
        case claiming(limit: Int)
        case stopped
    }

    public let maxConcurrentPins: Int
    var phase = Phase.starting
    /// Claims whose attempt or finish has not ended, by pin.
    public private(set) var inflight: [Claim] = []
    var acceptsJobs = true
    /// A wake arrived while busy: housekeep and claim once the current phase ends.
    var wakePending = false
    /// More work may be due than was claimed (the last claim was full, or jobs arrived): claim
    /// again whenever a slot frees.
    var backlog = false
    var jobsHeld = 0

    public init(maxConcurrentPins: Int) {
        self.maxConcurrentPins = max(maxConcurrentPins, 1)
    }

    public var isStopped: Bool { phase == .stopped }
    var freeSlots: Int { max(maxConcurrentPins - inflight.count, 0) }

    public mutating func handle(_ event: Event) -> [Action] {
        if phase == .stopped { return [] }
        switch event {
        case .wake(let accepts, let jobs):
            acceptsJobs = accepts
            jobsHeld += jobs
            if jobs > 0 { backlog = true }
            wakePending = true
            if phase == .starting {
                phase = .recovering
                return [.recoverClaims]
            }
            return next()
        case .recovered:
            guard phase == .recovering else { return [] }
            phase = .idle
            return next()
        case .housekept:
            guard phase == .housekeeping else { return [] }
            phase = .idle
            return claimOrRest()
        case .claimed(let claims):
            guard case .claiming(let limit) = phase else { return [] }
            phase = .idle
            backlog = claims.count >= limit
            var actions: [Action] = claims.map { .attempt($0) }
            inflight += claims
            if !claims.isEmpty { actions.append(.inflight(inflight.count)) }
            actions += ack()
            return actions + next()
        case .attemptEnded(let claim, let outcome):
            return [.finish(claim, outcome)]
        case .finished(let claim):
            guard let index = inflight.firstIndex(where: { $0.pin == claim.pin && $0.org == claim.org }) else { return [] }
            inflight.remove(at: index)
            var actions: [Action] = [.inflight(inflight.count)]
            // A slot is free: refill it now if more may be due, without waiting for the poll.
            if phase == .idle, backlog, acceptsJobs, !wakePending { actions += claimOrRest() }
            return actions + next()
        case .shutdown:
            phase = .stopped
            return []
        }
    }

    /// Recovery failed (the database is unreachable): the next wake tries it again.
    public mutating func retryRecovery() {
        if phase == .recovering { phase = .starting }
    }

    /// Starts a pending wake's housekeeping when nothing else runs.
    mutating func next() -> [Action] {
        guard phase == .idle, wakePending else { return [] }
        wakePending = false
        phase = .housekeeping
        return [.housekeep]
    }

    mutating func claimOrRest() -> [Action] {
        guard acceptsJobs, freeSlots > 0 else { return ack() }
        phase = .claiming(limit: freeSlots)
        return [.claim(limit: freeSlots)]
    }

    mutating func ack() -> [Action] {
        guard jobsHeld > 0 else { return [] }
        jobsHeld = 0
        return [.ackJobs]
    }
}
