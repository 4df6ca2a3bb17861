/// The `cluster.*` settings (docs/configuration.md). Durations in seconds: the agent compares
/// them with its clock seam, never sleeps on them itself.
public struct ClusterSettings: Sendable, Equatable {
    /// `cluster.heartbeatInterval`: how often a node publishes `node.heartbeat.<id>`.
    public var heartbeatSeconds: Int64 = 5
    /// `cluster.liveAfter`: a node heard within this is live and may take new pins.
    public var liveAfterSeconds: Int64 = 15
    /// `cluster.nodeLostAfter`: a node silent this long has its placements re-made elsewhere.
    public var nodeLostAfterSeconds: Int64 = 120
    /// `cluster.replicationFactor`: placements per pin (capped by the live set).
    public var replicationFactor = 2
    /// `cluster.minReplicas`: pinned placements for a pin to read `pinned`.
    public var minReplicas = 1
    /// `cluster.leaderLeaseTTL` and `cluster.leaderRenewInterval`.
    public var leaseTTLSeconds: Int64 = 15
    public var leaseRenewSeconds: Int64 = 5
    /// `cluster.drainGracePeriod`: a drained node keeps working this long before it stops
    /// taking jobs and cancels its consumer.
    public var drainGraceSeconds: Int64 = 120
    /// `cluster.requeueAfter`: a placement stuck this long is re-dispatched by the sweeper.
    public var requeueAfterSeconds: Int64 = 600
    /// `cluster.maxRedispatches`: after this many dispatches a stuck placement is moved.
    public var maxRedispatches = 3
    /// `cluster.sweepInterval`, `cluster.rebalanceInterval`, `cluster.reconcileInterval`.
    public var sweepSeconds: Int64 = 30
    public var rebalanceSeconds: Int64 = 30
    public var reconcileSeconds: Int64 = 300
    /// `cluster.replicateInterval`: how often the leader scans for pins short of their factor
    /// (also whenever more nodes become eligible).
    public var replicateSeconds: Int64 = 600
    /// `cluster.rebalanceMaxMoves`: moves applied per round (the rate limit).
    public var rebalanceMaxMoves = 100
    /// `cluster.sweepBatch` and `cluster.reconcileMaxRepairs`: per-round bounds.
    public var sweepBatch = 500
    public var reconcileMaxRepairs = 100
    /// `cluster.autoBalance`: the leader also plans `balance` moves every round (off: only
    /// `admin rebalance` does).
    public var autoBalance = false
    /// `cluster.maintenance.maxDuration`: a maintenance flag older than this is "forgotten".
    public var maintenanceMaxSeconds: Int64 = 3600
    /// `metrics.countsInterval`: how often the leader counts pins and placements for `/metrics`.
    public var countsSeconds: Int64 = 30
    /// How often the watchdog repeats its warning.
    public var watchdogRepeatSeconds: Int64 = 60
    /// Heartbeats buffered between steps (oldest dropped beyond).
    public var presenceInboxCapacity = 4096
    /// Name of the pins anchorage makes in Kubo (the reconciler touches only those).
    public var kuboPinName = "anchorage"

    public init() {}

    /// Problems with the values, one message each (empty when valid).
    public func problems() -> [String] {
        var out: [String] = []
        func check(_ ok: Bool, _ message: String) { if !ok { out.append(message) } }
        check(heartbeatSeconds >= 1, "cluster.heartbeatInterval must be at least 1s")
        check(liveAfterSeconds > heartbeatSeconds, "cluster.liveAfter must be longer than cluster.heartbeatInterval")
        check(nodeLostAfterSeconds >= liveAfterSeconds, "cluster.nodeLostAfter must be at least cluster.liveAfter")
        check((1...16).contains(replicationFactor), "cluster.replicationFactor must be 1-16")
        check((1...replicationFactor).contains(minReplicas), "cluster.minReplicas must be 1-replicationFactor")
        check(
            leaseRenewSeconds >= 1 && leaseTTLSeconds >= 2 * leaseRenewSeconds,
            "cluster.leaderLeaseTTL must be at least twice cluster.leaderRenewInterval"
        )
        check(drainGraceSeconds >= 0, "cluster.drainGracePeriod must not be negative")
        check(requeueAfterSeconds >= 1, "cluster.requeueAfter must be at least 1s")
        check((1...100).contains(maxRedispatches), "cluster.maxRedispatches must be 1-100")
        check(sweepSeconds >= 1 && rebalanceSeconds >= 1 && reconcileSeconds >= 1 && replicateSeconds >= 1, "cluster intervals must be at least 1s")
        check((1...100_000).contains(rebalanceMaxMoves), "cluster.rebalanceMaxMoves must be 1-100000")
        check((1...100_000).contains(sweepBatch), "cluster.sweepBatch must be 1-100000")
        check((1...100_000).contains(reconcileMaxRepairs), "cluster.reconcileMaxRepairs must be 1-100000")
        check(countsSeconds >= 1, "metrics.countsInterval must be at least 1s")
        check(maintenanceMaxSeconds >= 60, "cluster.maintenance.maxDuration must be at least 1m")
        check((16...1_000_000).contains(presenceInboxCapacity), "cluster.presenceInboxCapacity must be 16-1000000")
        return out
    }
}
