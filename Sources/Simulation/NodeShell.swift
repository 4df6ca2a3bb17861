import AnchorageNode
import Cluster
import DeterministicSeams
import FakeKubo
import Logging
import Seams
import SimBus
import SimKernel
import Worker

/// A node's wall clock: the world's virtual clock, except while it is frozen (a suspended VM
/// whose guest clock has not caught up yet). Behind the `WallClock` seam, like every fault.
final class NodeClock: WallClock, @unchecked Sendable {
    // @unchecked: `frozenAt` is only touched under `lock`.
    let world: VirtualWallClock
    private let lock = Lock()
    private var frozenAt: Timestamp?

    init(world: VirtualWallClock) { self.world = world }

    func now() -> Timestamp { lock.withLock { frozenAt } ?? world.now() }
    func freeze(at t: Timestamp) { lock.withLock { frozenAt = t } }
    func unfreeze() { lock.withLock { frozenAt = nil } }
    var isFrozen: Bool { lock.withLock { frozenAt != nil } }
}

/// One virtual anchorage node: the node `buildNode` assembles for `anchorage serve` (pin
/// service, router, worker, cluster agent), with production's configuration unless the
/// scenario overrides a key, over the simulated bus, a simulated Kubo and the run's PostgreSQL.
/// Its drivers (`ClusterDriver`, `WorkerDriver` through `WorkerLoop`) are the production ones;
/// this shell only carries their actions on the world's scheduler instead of the clock. A
/// restart builds the node anew (a new incarnation); events of an older incarnation are
/// dropped when they fire (the process that scheduled them is gone).
public final class SimNode: @unchecked Sendable {
    // @unchecked: only touched by the world's event loop, one event at a time.
    public enum Life: String, Sendable { case up, down, dead }

    public let index: Int
    public let name: String
    public let id: TypeID
    public let kubo: FakeKuboNode
    let clock: NodeClock
    public internal(set) var life: Life = .down
    public internal(set) var release = 1
    var pausedUntil: Timestamp?
    var incarnation = 0
    /// This incarnation's node, as built by `buildNode`.
    var built: Node?
    var driver = ClusterDriver(tick: .milliseconds(500))
    var loop: WorkerLoop?
    var http: InProcessHTTP?
    var heldJobs: [BusJob] = []
    /// Attempts that ended while the node was paused: they complete when it resumes (at the
    /// pause's planned end, or earlier if a scenario wakes it up).
    var deferredAttempts: [Claim] = []
    var diedAt: Timestamp?
    /// The agent's watchdog warnings seen so far (a coverage mark of the agent's status).
    var watchdogWarningsSeen = 0

    /// The node's cache listener (production pumps it every 100 ms; here each agent step).
    var cacheListener: CacheListener?

    init(index: Int, name: String, id: TypeID, kubo: FakeKuboNode, clock: NodeClock) {
        self.index = index
        self.name = name
        self.id = id
        self.kubo = kubo
        self.clock = clock
    }

    public var isPaused: Bool { pausedUntil != nil }
    var joined: ClusterRuntime? { built?.runtime.value }
    var agent: ClusterAgent? { joined?.agent }
}

extension World {
    // MARK: node lifecycle

    /// Starts a new incarnation of `node` (a process start): `buildNode` with this node's
    /// environment, then the cluster driver's start (join, retried with production's delays).
    func boot(_ node: SimNode) async {
        guard node.life != .dead else { return }
        node.incarnation += 1
        let incarnation = node.incarnation
        let entropy = SeededEntropy(seed: derive(seed, "node.\(node.name).\(incarnation)"))
        let logger = TraceLogHandler.logger(node: node.name, label: "anchorage.\(node.name)", log: log) { [unowned self] _, level, _ in
            if level >= .warning { self.warnings += 1 }
        }
        let name = node.name
        let network = self.network
        let overrides = self.overrides
        let ops = self.ops
        let built = buildNode(
            configuration,
            NodeEnvironment(
                nodeID: node.id,
                nodeName: node.name,
                version: "sim-r\(node.release)",
                clock: node.clock,
                entropy: entropy,
                api: api,
                ops: ops,
                kubo: node.kubo,
                connectBus: {
                    let endpoint: any ClusterBus = network.endpoint(node: name)
                    return overrides.bus?(name, endpoint) ?? endpoint
                },
                delegates: ["/dns4/\(node.name).sim/tcp/4001/p2p/sim-\(node.name)"],
                logger: { _ in logger },
                decorateClusterStore: { [unowned self] inner in
                    ObservedClusterStore(
                        inner: overrides.clusterStore?(name, inner, ops) ?? inner,
                        node: name,
                        record: { [unowned self] write in self.recordLeaderWrite(write) },
                        maintenanceOn: { [unowned self] in self.maintenanceIsOn() }
                    )
                }
            )
        )
        node.built = built
        node.http = InProcessHTTP(router: built.router)
        node.cacheListener = CacheListener(node: built, logger: logger)
        node.driver = ClusterDriver(tick: .milliseconds(configuration.clusterTickMilliseconds))
        node.loop = built.workerLoop(
            hooks: .init(
                startAttempt: { [unowned self] claim in self.scheduleAttempt(node, incarnation: incarnation, claim: claim) },
                ackJobs: { [unowned self] in await self.ackHeld(node) },
                inflight: { n in await built.runtime.value?.agent.setInflight(n) },
                recorded: { [unowned self] claim, outcome in self.recordOutcome(node, claim: claim, outcome: outcome) }
            )
        )
        node.heldJobs = []
        node.deferredAttempts = []
        node.pausedUntil = nil
        node.watchdogWarningsSeen = 0
        node.clock.unfreeze()
        await drive(node, incarnation: incarnation, .start)
    }

    /// The simulator's shell of `ClusterDriver` (production's is `ClusterService`): the same
    /// driver and delays, with `.after` carried by the scheduler.
    func drive(_ node: SimNode, incarnation: Int, _ event: ClusterDriver.Event) async {
        guard node.incarnation == incarnation, node.life != .dead, let built = node.built else { return }
        var pending = node.driver.handle(event)
        while !pending.isEmpty {
            switch pending.removeFirst() {
            case .join:
                do {
                    _ = try await built.join()
                    node.life = .up
                    trace("\(node.name) joined (release \(node.release), incarnation \(incarnation))")
                    pending += node.driver.handle(.joined)
                    schedulePoll(node, after: .milliseconds(configuration.workerPollMilliseconds))
                } catch {
                    trace("\(node.name) could not join yet: \(error)")
                    pending += node.driver.handle(.joinFailed)
                }
            case .step(let lane):
                await step(node, lane)
                pending += node.driver.handle(.stepped(lane))
            case .after(let delay, let next):
                scheduler.schedule(after: delay, label: "\(Self.label(next)) \(node.name)", key: Self.timerKey(next, node)) {
                    [unowned self] in
                    await self.tickOrWait(node, incarnation: incarnation, next)
                }
            case .leave:
                await node.agent?.stop()
            }
        }
    }

    /// Each lane's timer has a key of its own, as each lane runs on its own in production; the
    /// join's retry shares the vital lane's (there is no lane before the join).
    static func timerKey(_ event: ClusterDriver.Event, _ node: SimNode) -> String {
        if case .tick(let lane) = event { return "step.\(lane.rawValue).\(node.name)" }
        return "step.vital.\(node.name)"
    }

    static func label(_ event: ClusterDriver.Event) -> String {
        if case .tick(let lane) = event { return lane == .vital ? "step" : "duties" }
        return "join"
    }

    /// A paused process does not run: its tick waits for the pause's end.
    func tickOrWait(_ node: SimNode, incarnation: Int, _ event: ClusterDriver.Event) async {
        guard node.incarnation == incarnation, node.life != .dead else { return }
        if let until = node.pausedUntil {
            if now < until {
                scheduler.schedule(at: until, label: "\(Self.label(event)) \(node.name)", key: Self.timerKey(event, node)) { [unowned self] in
                    await self.tickOrWait(node, incarnation: incarnation, event)
                }
                return
            }
            wake(node, incarnation: incarnation)
        }
        await drive(node, incarnation: incarnation, event)
    }

    /// The pause is over: attempts that ended during it complete now (their planned wake-ups
    /// are cancelled), so an early wake-up does not leave them hanging.
    func wake(_ node: SimNode, incarnation: Int) {
        node.pausedUntil = nil
        trace("\(node.name) resumes\(node.clock.isFrozen ? " (its clock still reads \(node.clock.now()))" : "")")
        // The poll that waited for the pause's planned end runs now (the pause may end early).
        if node.driver.isJoined {
            _ = scheduler.cancel(key: "poll.\(node.name)")
            schedulePoll(node, after: .zero)
        }
        let deferred = node.deferredAttempts
        node.deferredAttempts = []
        for claim in deferred {
            _ = scheduler.cancel(key: "deferred.\(node.name).\(claim.pin)")
            scheduler.schedule(at: now, label: "attempt \(node.name) \(claim.pin)") { [unowned self] in
                await self.attemptEnded(node, incarnation: incarnation, claim: claim)
            }
        }
    }

    /// One step of a lane of the production cluster agent; the watchdog's warnings are read
    /// from its status (a coverage mark), not from its log lines. A frozen clock thaws after
    /// the duties lane's step: on waking, both lanes run once (vital first) on the stale
    /// clock, as a resumed process acts before its clock catches up.
    func step(_ node: SimNode, _ lane: ClusterLane) async {
        guard let agent = node.agent else { return }
        let status = await agent.step(lane)
        switch lane {
        case .vital:
            await node.cacheListener?.pump()
        case .duties:
            node.clock.unfreeze()
            noteWatchdog(node, status)
        }
    }

    func noteWatchdog(_ node: SimNode, _ status: ClusterStatus) {
        if status.watchdogWarnings > node.watchdogWarningsSeen {
            node.watchdogWarningsSeen = status.watchdogWarnings
            watchdogWarnings.append(now)
            if watchdogWarnings.count == 1 { mark("watchdog warns") }
        }
    }

    // MARK: the worker's shell

    /// Production's `WorkerService` fetches jobs waiting up to the poll interval and wakes the
    /// driver when they arrive or the wait ends; here the fetch does not wait (time only moves
    /// between events), so a job wakes the worker at the next poll, up to one poll interval later.
    func schedulePoll(_ node: SimNode, after delay: Duration) {
        let incarnation = node.incarnation
        scheduler.schedule(after: delay, label: "poll \(node.name)", key: "poll.\(node.name)") { [unowned self] in
            await self.poll(node, incarnation: incarnation)
        }
    }

    func poll(_ node: SimNode, incarnation: Int) async {
        guard node.incarnation == incarnation, node.life == .up, let loop = node.loop, let joined = node.joined else { return }
        let interval = Duration.milliseconds(configuration.workerPollMilliseconds)
        if let until = node.pausedUntil, now < until {
            schedulePoll(node, after: .microseconds(until.microseconds - now.microseconds))
            return
        }
        let accepts = await joined.agent.acceptsJobs
        var jobs = 0
        if accepts, let fetched = try? await joined.bus.fetch(Subjects.jobs(node.id), max: 256, wait: .zero) {
            node.heldJobs += fetched
            jobs = fetched.count
        }
        await loop.send(.wake(acceptsJobs: accepts, jobs: jobs))
        schedulePoll(node, after: interval)
    }

    /// An attempt is submitted now and ends as its own event after the Kubo's latency, so each
    /// outcome is recorded at its own time and its slot refilled at once, as in production.
    func scheduleAttempt(_ node: SimNode, incarnation: Int, claim: Claim) {
        let latency =
            node.kubo.isDown ? Duration.milliseconds(50) : node.kubo.plannedLatency(for: claim.cid, stallTimeout: configuration.worker.stallTimeout)
        trace("worker \(node.name) attempts \(claim.pin) (attempt \(claim.attempts))")
        scheduler.schedule(after: latency, label: "attempt \(node.name) \(claim.pin)") { [unowned self] in
            await self.attemptEnded(node, incarnation: incarnation, claim: claim)
        }
    }

    func attemptEnded(_ node: SimNode, incarnation: Int, claim: Claim) async {
        guard node.incarnation == incarnation, node.life == .up, let loop = node.loop else { return }
        if let until = node.pausedUntil, now < until {
            node.deferredAttempts.append(claim)
            scheduler.schedule(at: until, label: "attempt \(node.name) \(claim.pin)", key: "deferred.\(node.name).\(claim.pin)") {
                [unowned self] in
                node.deferredAttempts.removeAll { $0.pin == claim.pin }
                await self.attemptEnded(node, incarnation: incarnation, claim: claim)
            }
            return
        }
        let outcome = await loop.worker.attempt(claim)
        await loop.send(.attemptEnded(claim, outcome))
    }

    func recordOutcome(_ node: SimNode, claim: Claim, outcome: PinOutcome) {
        switch outcome {
        case .pinned:
            pinOutcomes.pinned += 1
            trace("pin \(claim.pin) on \(node.name): pinned (attempt \(claim.attempts))")
            notePinned(claim.pin.description, cid: claim.cid)
        case .retry(let at, let reason):
            pinOutcomes.retried += 1
            trace("pin \(claim.pin) on \(node.name): retry at \(at) (\(reason))")
        case .failed(let reason):
            pinOutcomes.failed += 1
            trace("pin \(claim.pin) on \(node.name): failed (\(reason))")
        }
    }

    func ackHeld(_ node: SimNode) async {
        let jobs = node.heldJobs
        node.heldJobs = []
        guard let bus = node.joined?.bus else { return }
        for job in jobs { try? await bus.ack(job) }
    }

    // MARK: faults and restarts

    /// The process dies: no graceful shutdown (the lease is not given up), its connection to
    /// the bus is gone, its in-flight attempts are lost (their claims stay leased in PostgreSQL).
    public func crash(_ node: SimNode, forGood: Bool = false) {
        guard node.life != .dead else { return }
        node.incarnation += 1
        node.life = forGood ? .dead : .down
        node.built?.runtime.value = nil
        node.built = nil
        node.loop = nil
        node.http = nil
        node.cacheListener = nil
        node.heldJobs = []
        node.pausedUntil = nil
        node.deferredAttempts = []
        for lane in ClusterLane.allCases { scheduler.cancel(key: "step.\(lane.rawValue).\(node.name)") }
        scheduler.cancel(key: "poll.\(node.name)")
        network.closeSubscriptions(of: node.name)
        if forGood {
            // A machine dying takes the data with it. A pin whose only replica was there (its
            // other replicas not pinned yet) is lost to hardware, not to anything anchorage
            // did: the checker stops tracking it (the invariant is about releases and unpins).
            for cid in node.kubo.anchoragePins() where !nodes.contains(where: { $0 !== node && $0.kubo.holds(cid) }) {
                for pin in (pinsByCID[cid] ?? []).sorted() {
                    trace("pin \(pin) had its only replica on \(node.name) (replication incomplete): lost with the machine")
                    forgetPin(pin)
                }
            }
            node.kubo.destroy()
            node.diedAt = now
        }
        trace("\(node.name) \(forGood ? "dies for good (machine and Kubo gone)" : "crashes")")
        mark(forGood ? "dead" : "crash", node: node.index)
    }

    /// Graceful shutdown (SIGTERM): the cluster driver leaves (the agent gives up the lease);
    /// in-flight attempts are cancelled (their leases expire and the sweeper requeues them).
    public func shutDown(_ node: SimNode) async {
        guard node.life == .up else { return }
        await drive(node, incarnation: node.incarnation, .shutdown)
        crash(node)
        trace("\(node.name) was shut down gracefully")
    }

    /// Starts the node again (optionally with the next release).
    public func restart(_ node: SimNode, release: Int? = nil) async {
        guard node.life == .down else { return }
        if let release { node.release = release }
        mark("start r\(node.release)", node: node.index)
        await boot(node)
    }

    /// The process stops being scheduled for `duration` (GC pause, suspended VM). With
    /// `freezeClock` its clock reads the pause's start until its first steps after it.
    public func pause(_ node: SimNode, for duration: Duration, freezeClock: Bool) {
        guard node.life == .up else { return }
        node.pausedUntil = now.adding(microseconds: duration.simMicroseconds)
        if freezeClock { node.clock.freeze(at: now) }
        trace("\(node.name) paused for \(duration)\(freezeClock ? " (clock frozen)" : "")")
        mark("pause", node: node.index)
    }

    /// Ends a pause now and runs the node's step at once (in this event).
    public func resume(_ node: SimNode) async throws {
        guard node.life == .up, node.pausedUntil != nil else { return }
        node.pausedUntil = now
        guard node.driver.isJoined else { return wake(node, incarnation: node.incarnation) }
        for lane in ClusterLane.allCases {
            scheduler.cancel(key: "step.\(lane.rawValue).\(node.name)")
            await tickOrWait(node, incarnation: node.incarnation, .tick(lane))
        }
    }
}
