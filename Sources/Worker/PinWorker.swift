import Logging
import Seams

/// A placement the worker has claimed: pin `cid` for (org, pin) on this node.
public struct Claim: Sendable, Equatable {
    public var org: TypeID
    public var pin: TypeID
    public var cid: String
    /// Attempts so far, this one included.
    public var attempts: Int
    /// When the pin was created (the deadline counts from here).
    public var created: Timestamp
    /// Multiaddrs the client said have the data (`Pin.origins`), dialled before pinning.
    public var origins: [String]

    public init(org: TypeID, pin: TypeID, cid: String, attempts: Int, created: Timestamp, origins: [String] = []) {
        self.org = org
        self.pin = pin
        self.cid = cid
        self.attempts = attempts
        self.created = created
        self.origins = origins
    }
}

/// How a claimed pin ended.
public enum PinOutcome: Sendable, Equatable {
    case pinned
    /// Back to `queued`, to be tried again at `at`.
    case retry(at: Timestamp, reason: String)
    case failed(reason: String)
}

/// The worker's view of placements. Implemented on PostgreSQL with the ops role (the worker
/// serves every org); every call is one transaction.
public protocol PlacementStore: Sendable {
    /// Claims up to `limit` queued placements of `node` that are due, round-robin between orgs
    /// (one org's backlog cannot starve another's pin), marks them `pinning` with a lease.
    func claim(node: TypeID, now: Timestamp, limit: Int, leaseUntil: Timestamp) async throws -> [Claim]
    /// Records how a claimed pin ended and derives the pin's status from its placements.
    func complete(_ claim: Claim, node: TypeID, outcome: PinOutcome, now: Timestamp) async throws
    /// Returns every placement `node` holds as `pinning` to `queued` (the node just started, so
    /// none of its attempts can still run); returns how many.
    func requeueOwnClaims(node: TypeID, now: Timestamp) async throws -> Int
    /// Returns placements whose lease ran out (their worker died) to `queued`; returns how many.
    func requeueExpired(node: TypeID, now: Timestamp) async throws -> Int
    /// CIDs released on `node` that no placement of any org needs there any more.
    func releasedCIDs(node: TypeID, limit: Int) async throws -> [String]
    /// Forgets a released CID once Kubo has unpinned it (or it turned out to be needed again).
    func forgetReleased(node: TypeID, cid: String) async throws
    /// Placements of `node` waiting to be claimed (`queued`), for the scheduler's gauge.
    func queueDepth(node: TypeID) async throws -> Int
}

public struct WorkerSettings: Sendable, Equatable {
    /// Pins run at once on this node (`kubo.maxConcurrentPins`).
    public var maxConcurrentPins = 16
    /// A pin making no progress this long is cancelled and retried (`kubo.pinStallTimeout`).
    public var stallTimeout: Duration = .seconds(120)
    /// Longest single attempt.
    public var attemptTimeout: Duration = .seconds(3600)
    /// A pin not pinned this long after it was created fails (`kubo.pinDeadline`), in seconds.
    public var pinDeadlineSeconds: Int64 = 24 * 3600
    /// Attempts before a pin fails (`kubo.maxAttempts`).
    public var maxAttempts = 10
    /// First retry delay; doubles per attempt up to `maxBackoffSeconds`, plus up to 20% jitter.
    public var backoffSeconds: Int64 = 5
    public var maxBackoffSeconds: Int64 = 600
    /// Origins dialled before pinning (`kubo.maxOriginDials`), and how long the dials may take.
    public var maxOriginDials = 8
    public var originDialTimeout: Duration = .seconds(15)
    /// Dial origins on private, loopback and link-local addresses and DNS names too
    /// (`kubo.dialPrivateOrigins`; off: see `OriginPolicy`).
    public var dialPrivateOrigins = false
    /// Released CIDs unpinned per tick.
    public var unpinBatch = 64
    /// Name given to the pins anchorage makes in Kubo, so the reconciler can tell them apart.
    public var kuboPinName = "anchorage"
    /// A claim's lease is the attempt timeout plus this; past it the placement counts as
    /// abandoned (its worker died) and is requeued (`worker.leaseGraceSeconds`).
    public var leaseGraceSeconds: Int64 = 60
    /// Requeue this node's own expired claims at each tick. In a cluster the leader's requeue
    /// sweeper does this for every node (and re-dispatches the job), so it is off there.
    public var requeueOwnExpired = true

    public init() {}
}

/// Executes this node's placements against its Kubo. One `tick()` requeues expired claims,
/// unpins released CIDs whose last placement is gone, then claims up to `maxConcurrentPins`
/// placements and runs them concurrently until each ends. The caller decides how often to tick
/// (production: a loop in the server; tests and the simulator: explicit calls), so the worker
/// itself never sleeps and never reads the wall clock except through its seam.
public struct PinWorker: Sendable {
    public let node: TypeID
    public let store: any PlacementStore
    public let kubo: any KuboAPI
    public let clock: any WallClock
    public let entropy: any Entropy
    public let settings: WorkerSettings
    public let logger: Logger

    public init(
        node: TypeID,
        store: any PlacementStore,
        kubo: any KuboAPI,
        clock: any WallClock,
        entropy: any Entropy,
        settings: WorkerSettings = WorkerSettings(),
        logger: Logger
    ) {
        self.node = node
        self.store = store
        self.kubo = kubo
        self.clock = clock
        self.entropy = entropy
        self.settings = settings
        self.logger = logger
    }

    public struct TickReport: Sendable, Equatable {
        public var requeued = 0
        public var unpinned = 0
        public var claimed = 0
        public var pinned = 0
        public var retried = 0
        public var failed = 0
        /// Released CIDs not unpinned because Kubo's pin was not anchorage's (or was gone).
        public var leftAlone = 0

        public init() {}

        /// Counts one finished claim.
        public mutating func count(_ outcome: PinOutcome) {
            switch outcome {
            case .pinned: pinned += 1
            case .retry: retried += 1
            case .failed: failed += 1
            }
        }
    }

    /// One round. With `claimNew` false (a draining node past its grace period) only released
    /// CIDs are unpinned. `onClaimed` hears how many pins are in flight (0 when they ended).
    ///
    /// The round is composed of public phases (``requeueExpired()``, ``unpinReleased(into:)``,
    /// ``claim()``, ``attempt(_:)``, ``finish(_:outcome:)``) so that the simulator can run the
    /// very same phases one event at a time instead of concurrently.
    @discardableResult
    public func tick(claimNew: Bool = true, onClaimed: (@Sendable (Int) async -> Void)? = nil) async throws -> TickReport {
        var report = TickReport()
        report.requeued = try await requeueExpired()
        try await unpinReleased(into: &report)
        guard claimNew else { return report }
        let claims = try await claim()
        report.claimed = claims.count
        if !claims.isEmpty { await onClaimed?(claims.count) }
        let outcomes = try await withThrowingTaskGroup(of: (Claim, PinOutcome).self) { group in
            for claim in claims {
                group.addTask { (claim, await self.attempt(claim)) }
            }
            var out: [(Claim, PinOutcome)] = []
            for try await result in group { out.append(result) }
            return out
        }
        // Each outcome is recorded on its own: one that fails to record waits for its lease,
        // the others of the round are not dropped with it.
        var firstError: (any Error)?
        for (claim, outcome) in outcomes.sorted(by: { ($0.0.org.description, $0.0.pin.description) < ($1.0.org.description, $1.0.pin.description) }) {
            do {
                try await finish(claim, outcome: outcome)
                report.count(outcome)
            } catch {
                firstError = firstError ?? error
            }
        }
        if !claims.isEmpty { await onClaimed?(0) }
        if let firstError { throw firstError }
        return report
    }

    /// At start: this process holds no attempt yet, so every claim of this node in PostgreSQL
    /// belongs to a previous run (a crash, a deploy) and is requeued now rather than when its
    /// lease (the attempt timeout plus the grace, about an hour) runs out.
    public func recoverClaims() async throws -> Int {
        try await store.requeueOwnClaims(node: node, now: clock.now())
    }

    /// Phase 1: requeues this node's own expired claims, when `requeueOwnExpired` is set.
    public func requeueExpired() async throws -> Int {
        guard settings.requeueOwnExpired else { return 0 }
        return try await store.requeueExpired(node: node, now: clock.now())
    }

    /// Phase 2: unpins released CIDs whose last placement on this node is gone (the refcount
    /// across orgs is the store's), only pins anchorage made.
    /// One `notice` per round that unpinned anything (moved away, deleted), with the counts.
    public func unpinReleased(into report: inout TickReport) async throws {
        var unpinned = 0
        var leftAlone = 0
        var failed = 0
        for cid in try await store.releasedCIDs(node: node, limit: settings.unpinBatch) {
            do {
                // Only pins anchorage made: a CID someone pinned in Kubo by hand (another name)
                // is left alone; a CID no longer pinned needs nothing.
                if let pin = try await kubo.recursivePin(cid: cid), pin.name == settings.kuboPinName {
                    try await kubo.unpin(cid: cid)
                    unpinned += 1
                } else {
                    leftAlone += 1
                }
                try await store.forgetReleased(node: node, cid: cid)
            } catch {
                failed += 1
                logger.warning("unpin failed; will retry", metadata: ["cid": "\(cid)", "error": "\(error)"])
            }
        }
        report.unpinned += unpinned
        report.leftAlone += leftAlone
        if unpinned > 0 {
            logger.notice(
                "unpinned CIDs this node no longer holds (moved away or deleted)",
                metadata: ["count": "\(unpinned)", "leftAlone": "\(leftAlone)", "failed": "\(failed)"]
            )
        }
    }

    /// Phase 3: claims up to `limit` (default `maxConcurrentPins`) due placements (fair
    /// between orgs), with a lease of the attempt timeout plus the grace.
    public func claim(limit: Int? = nil) async throws -> [Claim] {
        let now = clock.now()
        let lease = now.adding(seconds: Int64(settings.attemptTimeout.components.seconds) + settings.leaseGraceSeconds)
        return try await store.claim(node: node, now: now, limit: limit ?? settings.maxConcurrentPins, leaseUntil: lease)
    }

    /// Phase 5: records how a claim ended (and the pin's derived status).
    public func finish(_ claim: Claim, outcome: PinOutcome) async throws {
        try await store.complete(claim, node: node, outcome: outcome, now: clock.now())
    }

    /// Phase 4: one attempt at one claim, decided into an outcome; never throws.
    public func attempt(_ claim: Claim) async -> PinOutcome {
        // Best effort (the spec's provider hints): a failed dial never fails the pin.
        let origins = claim.origins.filter { OriginPolicy.isDialable($0, allowPrivate: settings.dialPrivateOrigins) }
        if !origins.isEmpty, settings.maxOriginDials > 0 {
            _ = await kubo.connect(to: origins, limit: settings.maxOriginDials, timeout: settings.originDialTimeout)
        }
        do {
            try await kubo.pin(
                cid: claim.cid,
                name: settings.kuboPinName,
                stallTimeout: settings.stallTimeout,
                deadline: settings.attemptTimeout,
                progress: { _ in }
            )
            return .pinned
        } catch let error as KuboError {
            return decide(claim, error: error)
        } catch {
            return decide(claim, error: .unreachable("\(error)"))
        }
    }

    /// Retry or fail: a refused CID fails at once; anything else retries with backoff until
    /// the attempts or the pin's deadline run out.
    func decide(_ claim: Claim, error: KuboError) -> PinOutcome {
        let now = clock.now()
        // Tenants read these in `status_details`: short, stable reasons, never Kubo's own text
        // (which can carry addresses and internals); that goes to the operator's log.
        let reason: String
        switch error {
        case .command(let message, _):
            logger.warning("Kubo refused a pin", metadata: ["pin": "\(claim.pin)", "cid": "\(claim.cid)", "error": "\(message)"])
            if message.contains("invalid") { return .failed(reason: AttemptFailure.refused.reason) }
            reason = AttemptFailure.kuboError.reason
        case .stalled: reason = AttemptFailure.stalled.reason
        case .timeout: reason = AttemptFailure.timeout.reason
        case .unreachable: reason = AttemptFailure.unreachable.reason
        case .protocolError(let s):
            logger.warning("unexpected answer from Kubo", metadata: ["pin": "\(claim.pin)", "error": "\(s)"])
            reason = AttemptFailure.protocolError.reason
        }
        let deadline = claim.created.adding(seconds: settings.pinDeadlineSeconds)
        if claim.attempts >= settings.maxAttempts || now >= deadline {
            return .failed(reason: "gave up after \(claim.attempts) attempt(s): \(reason)")
        }
        let exponent = min(claim.attempts - 1, 20)
        let base = min(settings.backoffSeconds << exponent, settings.maxBackoffSeconds) * 1_000_000
        let jitter = Int64(entropy.uniform(UInt64(max(base / 5, 1))))
        let next = min(now.adding(microseconds: base + jitter), deadline)
        return .retry(at: next, reason: reason)
    }
}

/// Why an attempt did not pin: the fixed reasons tenants read in `status_details`, and the
/// bounded label of the scheduler's retry and failure counters.
public enum AttemptFailure: String, Sendable, CaseIterable {
    case refused
    case kuboError = "kubo_error"
    case stalled
    case timeout
    case unreachable
    case protocolError = "protocol_error"
    case other

    /// The text recorded as the placement's reason.
    public var reason: String {
        switch self {
        case .refused: "the IPFS node refused the CID"
        case .kuboError: "the IPFS node returned an error"
        case .stalled: "no progress fetching the content (stalled)"
        case .timeout: "the attempt timed out"
        case .unreachable: "the IPFS node is unreachable"
        case .protocolError: "the IPFS node gave an unexpected answer"
        case .other: "other"
        }
    }

    /// The class of a recorded reason (a final failure's reason ends with the last attempt's).
    public static func of(_ reason: String) -> AttemptFailure {
        allCases.first { $0 != .other && reason.hasSuffix($0.reason) } ?? .other
    }
}

extension PinOutcome {
    /// `pinned`, `retry` or `failed` (the attempts counter's label).
    public var label: String {
        switch self {
        case .pinned: "pinned"
        case .retry: "retry"
        case .failed: "failed"
        }
    }
}
