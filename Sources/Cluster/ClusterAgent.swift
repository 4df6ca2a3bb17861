import Logging
import Seams

/// One node's part in the cluster: heartbeats and presence, its own drain, the leader lease
/// and, while it leads, the rebalancer, requeue sweeper and maintenance watchdog; on every node,
/// the reconciler. It never sleeps and never starts tasks: `step(lane)` does whatever of the lane
/// is due by the clock seam and returns, so production calls it in a loop per lane and the
/// simulator calls it from its event loop — the same code either way (``ClusterDriver``).
public actor ClusterAgent {
    public nonisolated let node: TypeID
    public nonisolated let name: String
    public nonisolated let address: String?
    public nonisolated let version: String
    let bus: any ClusterBus
    let store: any ClusterStore
    let kubo: (any KuboAPI)?
    let clock: any WallClock
    public nonisolated let settings: ClusterSettings
    public nonisolated let policy: PlacementPolicy
    let logger: Logger

    var presence: PresenceTable
    /// Nodes registered in PostgreSQL, the authority on membership: a heartbeat from any other
    /// ID is ignored, so whoever can publish on NATS cannot invent nodes that win placements.
    /// Reloaded when an unknown node is heard (at most once per heartbeat interval).
    var registered: Set<TypeID> = []
    var registeredAt: Timestamp?
    /// Unknown IDs as of the last reload (bounded by one inbox drain).
    var checkedUnknown: Set<String> = []
    var inbox: (any BusInbox)?
    /// Node state changes announced by whoever made them (`admin drain`, `uncordon`).
    var nodeChanges: (any BusInbox)?
    var nextHeartbeat: Timestamp
    var state: NodeState = .active
    var drainRequestedAt: Timestamp?
    /// Grace period over: the worker must stop claiming; the queue closes once it is idle.
    var stoppingJobs = false
    var queueOpen = false
    var inflight = 0

    var lease: Lease?
    /// Set by `resign()`: the node is shutting down and never campaigns again.
    var resigned = false
    var nextCampaign: Timestamp
    var nextSweep: Timestamp
    var nextRebalance: Timestamp
    var nextReconcile: Timestamp
    var nextMaintenanceLog: Timestamp
    var nextWatchdogWarning: Timestamp
    var nextReplicateScan: Timestamp
    var nextCounts: Timestamp
    var lastEligibleCount = 0
    /// The lease holder as this node last read it (logged when it changes).
    var knownLeader: LeaseValue?
    /// Draining or drained nodes the leader moved placements away from: it says once when
    /// one holds none any more.
    var drainingWithPlacements: Set<TypeID> = []
    var removedByOperator = false
    public internal(set) var status = ClusterStatus()

    public init(
        node: TypeID,
        name: String,
        address: String? = nil,
        version: String,
        bus: any ClusterBus,
        store: any ClusterStore,
        kubo: (any KuboAPI)?,
        clock: any WallClock,
        settings: ClusterSettings,
        policy: PlacementPolicy? = nil,
        logger: Logger
    ) {
        self.node = node
        self.name = name
        self.address = address
        self.version = version
        self.bus = bus
        self.store = store
        self.kubo = kubo
        self.clock = clock
        self.settings = settings
        self.policy = policy ?? PlacementPolicy(replicationFactor: settings.replicationFactor)
        self.logger = logger
        let now = clock.now()
        self.presence = PresenceTable(watchingSince: now)
        self.nextHeartbeat = now
        self.nextCampaign = now
        self.nextSweep = now.adding(seconds: settings.sweepSeconds)
        self.nextRebalance = now.adding(seconds: settings.rebalanceSeconds)
        self.nextReconcile = now.adding(seconds: settings.reconcileSeconds)
        self.nextReplicateScan = now
        self.nextCounts = now
        self.nextMaintenanceLog = now
        self.nextWatchdogWarning = now
    }

    /// Registers the node, starts listening to heartbeats and opens its job queue (unless an
    /// operator drained it).
    public func start() async throws {
        let now = clock.now()
        try await store.register(node: node, name: name, version: version, now: now)
        if let record = try await store.node(node) { adopt(record, now: now) }
        // Warm start: nodes PostgreSQL saw recently count as heard then, so that the first pins
        // this node places are spread over the cluster rather than all landing on itself. Real
        // heartbeats replace these within one interval; stale ones expire as usual.
        let records = try await store.nodes()
        registered = Set(records.map(\.id))
        registeredAt = now
        for other in records where other.id != node && other.state == .active {
            guard let seen = other.lastSeen, seen <= now, now.microseconds - seen.microseconds <= settings.liveAfterSeconds * 1_000_000 else {
                continue
            }
            presence.heard(
                Heartbeat(
                    node: other.id.description,
                    name: other.name,
                    state: other.state,
                    version: "",
                    inflight: 0,
                    leaderFence: nil,
                    sentAt: seen.microseconds
                ),
                at: seen
            )
        }
        inbox = try await bus.subscribe(Subjects.heartbeats, capacity: settings.presenceInboxCapacity)
        nodeChanges = try await bus.subscribe(Subjects.liveNodeChanges, capacity: 256)
        if state == .active || (state == .draining && !stoppingJobs) {
            try await bus.openQueue(Subjects.jobs(node))
            queueOpen = true
        }
        if state == .active {
            presence.heard(
                Heartbeat(
                    node: node.description,
                    name: name,
                    state: state,
                    version: version,
                    inflight: 0,
                    leaderFence: nil,
                    sentAt: now.microseconds
                ),
                at: now
            )
        }
        updatePlacement(now: now)
        logger.info("cluster agent started", metadata: ["node": "\(node)", "state": "\(state.rawValue)"])
    }

    /// Stops listening, after giving up the lease if `resign()` has not yet.
    public func stop() async {
        await resign()
        await inbox?.close()
        inbox = nil
        await nodeChanges?.close()
        nodeChanges = nil
    }

    /// Does whatever of `lane` is due. Errors of one duty are logged and do not stop the others.
    /// The lanes may run at the same time (the actor interleaves them at their suspension
    /// points): a duty reads the lease once and writes under its fence, so a term lost while
    /// it runs makes its writes refused, never misapplied.
    @discardableResult
    public func step(_ lane: ClusterLane) async -> ClusterStatus {
        switch lane {
        case .vital:
            await presenceStep()
            await leaderStep()
        case .duties:
            await drainStep()
            if lease != nil { await leaderDuties() }
            await reconcileStep()
        }
        return status
    }

    /// Both lanes, one after the other (tests that step an agent by hand).
    @discardableResult
    public func step() async -> ClusterStatus {
        await step(.vital)
        return await step(.duties)
    }

    // MARK: what the worker and the HTTP layer ask

    /// False while the node must not claim new placements (drained, or drain grace over).
    public var acceptsJobs: Bool { state == .active || (state == .draining && !stoppingJobs) }

    /// The worker reports how many pins it is working on (0 when a tick ended).
    public func setInflight(_ n: Int) { inflight = n }

    /// Why `/v1/ready` must answer 503, or nil.
    public func notReadyReason() -> String? {
        switch state {
        case .active: nil
        case .draining: "node is draining (admin drain); uncordon to restore"
        case .drained: "node is drained (admin drain); uncordon to restore"
        }
    }

    public var fence: Int64? { lease?.fence }
    public var isLeader: Bool { lease != nil }

    /// Queues jobs; a failed publish is logged, not thrown: PostgreSQL holds the placement, and
    /// the worker's poll and the sweeper find it without the job.
    public func publish(_ dispatches: [Dispatch]) async {
        await Self.publish(dispatches, bus: bus, logger: logger)
    }

    public static func publish(_ dispatches: [Dispatch], bus: any ClusterBus, logger: Logger) async {
        for d in dispatches {
            do {
                _ = try await bus.enqueue(d.subject, msgID: d.msgID, ClusterJSON.encode(d))
            } catch {
                logger.warning(
                    "could not queue a pin job; the sweeper will re-dispatch it",
                    metadata: ["subject": "\(d.subject)", "pin": "\(d.pin)", "error": "\(error)"]
                )
            }
        }
    }

    // MARK: presence

    func presenceStep() async {
        let now = clock.now()
        if let inbox {
            var unknown: [Heartbeat] = []
            for message in await inbox.drain() {
                guard let hb = Heartbeat.decode(message.payload) else { continue }
                if isRegistered(hb) { presence.heard(hb, at: now) } else { unknown.append(hb) }
            }
            if !unknown.isEmpty { await hearUnregistered(unknown, now: now) }
        }
        if let nodeChanges {
            for message in await nodeChanges.drain() { await nodeStateAnnounced(message.payload, now: now) }
        }
        if now >= nextHeartbeat {
            nextHeartbeat = now.adding(seconds: settings.heartbeatSeconds)
            let hb = Heartbeat(
                node: node.description,
                name: name,
                address: address,
                state: state,
                version: version,
                inflight: inflight,
                leaderFence: lease?.fence,
                sentAt: now.microseconds
            )
            // Hear ourselves directly: placement must work even before the bus echoes it.
            presence.heard(hb, at: now)
            do {
                try await bus.publish(Subjects.heartbeat(node), hb.encoded())
            } catch {
                logger.warning("heartbeat not published", metadata: ["error": "\(error)"])
            }
            do {
                if let record = try await store.touch(node: node, now: now) {
                    adopt(record, now: now)
                } else if !removedByOperator {
                    // `admin remove-node` forgot this node: peers ignore its heartbeats and no
                    // pin is placed on it. Say so once; a restart registers it afresh.
                    removedByOperator = true
                    logger.warning("this node was removed (admin remove-node): it takes no new work; restart it to register afresh")
                }
            } catch {
                logger.warning("could not refresh the node record", metadata: ["error": "\(error)"])
            }
        }
        updatePlacement(now: now)
        let changes = presence.transitions(now: now, settings: settings, except: node)
        if !changes.isEmpty { await report(changes, now: now) }
        status.eligible = policy.eligible
        status.live = presence.liveCount(now: now, settings: settings)
        status.state = state
    }

    /// An operator changed a node's state (`admin drain`, `uncordon`) and said so on the bus:
    /// placement stops (or resumes) choosing it now rather than when its next heartbeats carry
    /// the state; the node itself adopts the record at once. A lost message costs what it
    /// always did: up to a heartbeat interval.
    func nodeStateAnnounced(_ payload: [UInt8], now: Timestamp) async {
        guard let change = NodeStateChange.decode(payload), let id = TypeID(parsing: change.node, prefix: IDPrefix.node),
            let newState = NodeState(rawValue: change.state), id == node || registered.contains(id)
        else { return }
        status.liveNodeInvalidations += 1
        if id == node {
            do {
                if let record = try await store.node(node) { adopt(record, now: now) }
            } catch {
                logger.warning("could not reload the node record", metadata: ["error": "\(error)"])
            }
        }
        presence.announced(id, state: newState, until: now.adding(seconds: settings.liveAfterSeconds))
    }

    func isRegistered(_ hb: Heartbeat) -> Bool {
        guard let id = TypeID(parsing: hb.node, prefix: IDPrefix.node) else { return false }
        return id == node || registered.contains(id)
    }

    /// Heartbeats from IDs not (yet) registered: a node that just joined is found by reloading
    /// the registry; anything still unknown is dropped and reported.
    func hearUnregistered(_ heartbeats: [Heartbeat], now: Timestamp) async {
        // Reload for an ID not checked at the last reload (a node that just joined), or once
        // per heartbeat interval: at most one query per step however many forgeries arrive.
        let stale = registeredAt.map { now.microseconds - $0.microseconds >= settings.heartbeatSeconds * 1_000_000 } ?? true
        if stale || heartbeats.contains(where: { !checkedUnknown.contains($0.node) }) {
            do {
                registered = Set(try await store.nodes().map(\.id))
                registeredAt = now
            } catch {
                logger.warning("could not reload the registered nodes", metadata: ["error": "\(error)"])
            }
        }
        var ignored: [String] = []
        for hb in heartbeats {
            if isRegistered(hb) { presence.heard(hb, at: now) } else { ignored.append(hb.node) }
        }
        checkedUnknown = Set(ignored)
        if !ignored.isEmpty {
            status.ignoredHeartbeats += ignored.count
            logger.warning(
                "ignored heartbeats from nodes not registered in PostgreSQL",
                metadata: ["nodes": "\(checkedUnknown.sorted().prefix(8).map { $0.prefix(40) }.joined(separator: ","))", "count": "\(ignored.count)"]
            )
        }
    }

    /// Takes the operator's state from PostgreSQL.
    func adopt(_ record: NodeRecord, now: Timestamp) {
        if record.state != state {
            logger.notice("node state changed", metadata: ["from": "\(state.rawValue)", "to": "\(record.state.rawValue)"])
        }
        state = record.state
        drainRequestedAt = record.drainRequestedAt
        if state == .active { stoppingJobs = false }
        if state == .drained { stoppingJobs = true }
    }
}

/// A snapshot for health output, heartbeats and tests.
public struct ClusterStatus: Sendable, Equatable {
    public var state: NodeState = .active
    public var eligible: [TypeID] = []
    public var leaderFence: Int64?
    public var maintenance: MaintenanceFlag?
    /// The maintenance watchdog's gauge: 1 while a flag is older than the maximum duration.
    public var maintenanceOverdue = false
    /// How many times the watchdog has warned about a forgotten maintenance flag (a coverage
    /// mark the simulator reads instead of matching log text).
    public var watchdogWarnings = 0
    public var lastPlan: [Move] = []
    public var movesApplied = 0
    public var requeued = 0
    public var repaired = 0
    public var orphansUnpinned = 0
    public var queueOpen = false
    /// Heartbeats dropped because their node is not registered in PostgreSQL.
    public var ignoredHeartbeats = 0
    /// Nodes heard within `cluster.liveAfter` (eligible ones are also active).
    public var live = 0
    public var isLeader = false
    /// Terms won, lease renewals, terms lost (stepped down or expired).
    public var leaseAcquisitions = 0
    public var leaseRenewals = 0
    public var leaseLosses = 0
    /// Moves applied, by reason (`drain`, `node-lost`, …).
    public var movesByReason: [String: Int] = [:]
    /// Node state changes announced on `cache.invalidate.live_nodes` and applied at once.
    public var liveNodeInvalidations = 0
    /// Cluster-wide counts, while this node leads (nil otherwise).
    public var counts: ClusterCounts?

    public init() {}
}
