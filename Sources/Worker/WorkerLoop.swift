import Logging
import Seams

/// Performs a ``WorkerDriver``'s actions against a ``PinWorker``: the one place that turns the
/// driver's decisions into store and Kubo calls, shared by production and the simulator. The
/// shell feeds events in order (one `send` at a time) and supplies what differs between them:
/// how an attempt is carried (a child task, or an event of the simulator's scheduler), how
/// fetched jobs are acked, and who hears the count of pins in flight.
public actor WorkerLoop {
    public struct Hooks: Sendable {
        /// Starts `worker.attempt(claim)` somewhere; its end comes back as `.attemptEnded`.
        public var startAttempt: @Sendable (Claim) -> Void
        /// Acks the jobs fetched so far.
        public var ackJobs: @Sendable () async -> Void
        /// Pins in flight (the cluster agent's drain waits for zero).
        public var inflight: @Sendable (Int) async -> Void
        /// Hears every recorded outcome (the simulator's checkers).
        public var recorded: @Sendable (Claim, PinOutcome) async -> Void

        public init(
            startAttempt: @escaping @Sendable (Claim) -> Void,
            ackJobs: @escaping @Sendable () async -> Void = {},
            inflight: @escaping @Sendable (Int) async -> Void = { _ in },
            recorded: @escaping @Sendable (Claim, PinOutcome) async -> Void = { _, _ in }
        ) {
            self.startAttempt = startAttempt
            self.ackJobs = ackJobs
            self.inflight = inflight
            self.recorded = recorded
        }
    }

    public nonisolated let worker: PinWorker
    let hooks: Hooks
    var driver: WorkerDriver
    /// Outcomes the store refused to record (a database error): retried at every housekeeping,
    /// so a pin does not stay `pinning` until its claim lease (about an hour) requeues it.
    /// Bounded; past the bound the oldest is left to its lease.
    var unrecorded: [(claim: Claim, outcome: PinOutcome)] = []
    var maxUnrecorded: Int { max(16, worker.settings.maxConcurrentPins * 4) }

    public init(worker: PinWorker, hooks: Hooks) {
        self.worker = worker
        self.hooks = hooks
        self.driver = WorkerDriver(maxConcurrentPins: worker.settings.maxConcurrentPins)
    }

    public var inflight: [Claim] { driver.inflight }
    public var isStopped: Bool { driver.isStopped }

    /// Feeds one event and performs every action it leads to. Store errors are logged, never
    /// thrown: a failed claim claims nothing, a failed finish is retried at the next housekeeping.
    public func send(_ event: WorkerDriver.Event) async {
        var queue = driver.handle(event)
        // Shutting down: what is left is the next run's (its start requeues this node's claims).
        while !queue.isEmpty, !Task.isCancelled {
            let action = queue.removeFirst()
            switch action {
            case .recoverClaims:
                do {
                    let requeued = try await worker.recoverClaims()
                    if requeued > 0 {
                        worker.logger.info("requeued the claims this node's previous run left", metadata: ["count": "\(requeued)"])
                    }
                    queue += driver.handle(.recovered)
                } catch {
                    // Nothing claimed yet: the next wake tries again.
                    worker.logger.warning("requeueing the previous run's claims failed; will retry", metadata: ["error": "\(error)"])
                    driver.retryRecovery()
                }
            case .housekeep:
                await recordUnrecorded()
                do {
                    _ = try await worker.requeueExpired()
                    var report = PinWorker.TickReport()
                    try await worker.unpinReleased(into: &report)
                } catch {
                    worker.logger.warning("worker housekeeping failed; will retry", metadata: ["error": "\(error)"])
                }
                queue += driver.handle(.housekept)
            case .claim(let limit):
                var claims: [Claim] = []
                do {
                    claims = try await worker.claim(limit: limit)
                } catch {
                    worker.logger.warning("claiming placements failed; will retry", metadata: ["error": "\(error)"])
                }
                queue += driver.handle(.claimed(claims))
            case .attempt(let claim):
                hooks.startAttempt(claim)
            case .finish(let claim, let outcome):
                do {
                    try await worker.finish(claim, outcome: outcome)
                    await hooks.recorded(claim, outcome)
                } catch {
                    // Each outcome is recorded on its own: this one is retried at the next
                    // housekeeping, the others are unaffected.
                    worker.logger.warning(
                        "recording a pin outcome failed; retrying it at the next round",
                        metadata: ["pin": "\(claim.pin)", "error": "\(error)"]
                    )
                    keepUnrecorded(claim, outcome)
                }
                queue += driver.handle(.finished(claim))
            case .ackJobs:
                await hooks.ackJobs()
            case .inflight(let n):
                await hooks.inflight(n)
            }
        }
    }

    func keepUnrecorded(_ claim: Claim, _ outcome: PinOutcome) {
        unrecorded.append((claim, outcome))
        if unrecorded.count > maxUnrecorded {
            let dropped = unrecorded.removeFirst()
            worker.logger.warning(
                "too many unrecorded pin outcomes; the oldest waits for its claim lease",
                metadata: ["pin": "\(dropped.claim.pin)", "kept": "\(maxUnrecorded)"]
            )
        }
    }

    /// Records the outcomes earlier rounds could not, in order; those that fail again wait
    /// for the next round.
    func recordUnrecorded() async {
        guard !unrecorded.isEmpty else { return }
        var still: [(claim: Claim, outcome: PinOutcome)] = []
        for (claim, outcome) in unrecorded {
            do {
                try await worker.finish(claim, outcome: outcome)
                await hooks.recorded(claim, outcome)
            } catch {
                still.append((claim, outcome))
            }
        }
        if still.count < unrecorded.count {
            worker.logger.info("recorded pin outcomes an earlier round could not", metadata: ["count": "\(unrecorded.count - still.count)"])
        }
        unrecorded = still
    }
}
