import Caches
import Cluster
import Prometheus
import Seams
import Worker

/// A node's Prometheus metrics (`docs/monitoring.md` lists every family). Each node owns its
/// registry, so the nodes of one test process or simulation never mix their numbers, and
/// label values come from fixed sets (route templates, outcomes, reasons, cache names), never
/// from request data, so cardinality stays bounded whatever clients send.
///
/// Events the node sees as they happen (HTTP requests, pin attempts) are counted at once; state
/// kept elsewhere (the cluster agent's status, the caches, the leader's counts) is copied in by
/// ``observe(cluster:)`` and friends, which the node's shells call after each step and before
/// each scrape. A scrape itself never touches PostgreSQL.
public final class NodeMetrics: Sendable {
    public let registry = PrometheusCollectorRegistry()
    /// Cumulative counts already exported from a status snapshot, by series key.
    private let exported = LockedBox<[String: Int]>([:])
    /// Gauges only the leader exports (removed when it steps down).
    private let leaderGauges = LockedBox<[Gauge]>([])

    let httpInFlight: Gauge
    let claimsInFlight: Gauge
    let queueDepth: Gauge
    let attemptSeconds: DurationHistogram
    let stalls: Counter
    let createBatchSize: ValueHistogram
    let createsQueued: Gauge
    let pinsUnplaced: Counter

    public init(version: String, maintenanceMaxSeconds: Int64) {
        httpInFlight = registry.makeGauge(descriptor: Self.name("anchorage_http_requests_in_flight", "", "HTTP requests being served."))
        claimsInFlight = registry.makeGauge(
            descriptor: Self.name("anchorage_scheduler_claims_in_flight", "", "Pins this node's worker is pinning right now.")
        )
        queueDepth = registry.makeGauge(
            descriptor: Self.name(
                "anchorage_scheduler_queue_depth",
                "",
                "This node's placements waiting to be claimed (queued), sampled every metrics.countsInterval."
            )
        )
        attemptSeconds = registry.makeDurationHistogram(
            descriptor: Self.name("anchorage_scheduler_attempt_duration", "seconds", "Duration of pin attempts against Kubo."),
            labels: [],
            buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600].map { Duration.milliseconds(Int64($0 * 1000)) }
        )
        registry.makeGauge(descriptor: Self.name("anchorage_build_info", "", "The running version (always 1)."), labels: [("version", version)])
            .set(to: 1)
        registry.makeGauge(
            descriptor: Self.name("anchorage_maintenance_max_duration", "seconds", "cluster.maintenance.maxDuration: the watchdog's limit.")
        ).set(to: Double(maintenanceMaxSeconds))
        stalls = registry.makeCounter(
            descriptor: Self.name("anchorage_scheduler_stalls", "total", "Pin attempts ended because Kubo made no progress.")
        )
        createBatchSize = registry.makeValueHistogram(
            descriptor: Self.name("anchorage_pin_create_batch_size", "", "Pins written per statement by coalesced creates (POST /pins)."),
            buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256]
        )
        createsQueued = registry.makeGauge(
            descriptor: Self.name("anchorage_pin_creates_queued", "", "Creates waiting for a batch when the last batch was written.")
        )
        pinsUnplaced = registry.makeCounter(
            descriptor: Self.name(
                "anchorage_pins_unplaced",
                "total",
                "Pins this node accepted while no node could take them (stored with no placement; the leader places them later)."
            )
        )
        httpInFlight.set(to: 0)
        // Families that must exist before their first event, so that rate() and alerts see a zero.
        for outcome in ["pinned", "retry", "failed"] { attempts(outcome).increment(by: Int64(0)) }
        for failure in AttemptFailure.allCases {
            retries(failure).increment(by: Int64(0))
            failures(failure).increment(by: Int64(0))
        }
    }

    static func name(_ base: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: base, unitName: unit, helpText: help)
    }

    // MARK: HTTP

    public func httpStarted() { httpInFlight.increment() }

    /// One request answered. `route` is the route template (or `unmatched`), `method` one of
    /// the methods the API knows (others count as `other`).
    public func httpFinished(route: String, method: String, status: Int, duration: Duration) {
        httpInFlight.decrement()
        let m = Self.knownMethods.contains(method) ? method : "other"
        let statusClass = (100...599).contains(status) ? "\(status / 100)xx" : "other"
        registry.makeCounter(
            descriptor: Self.name("anchorage_http_requests", "total", "HTTP requests answered, by route template, method and status class."),
            labels: [("route", route), ("method", m), ("status_class", statusClass)]
        ).increment()
        registry.makeDurationHistogram(
            descriptor: Self.name("anchorage_http_request_duration", "seconds", "HTTP request latency, by route template and method."),
            labels: [("route", route), ("method", m)],
            buckets: Self.httpBuckets
        ).record(duration)
    }

    static let knownMethods: Set<String> = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    static let httpBuckets: [Duration] = [1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000].map {
        Duration.microseconds(Int64($0 * 1000))
    }

    // MARK: scheduler

    /// A batch of coalesced creates was written; `queued` creates were waiting for the next.
    public func createBatch(size: Int, queued: Int) {
        createBatchSize.record(Double(size))
        createsQueued.set(to: Double(queued))
    }

    /// A pin was accepted with no placement (no live, active node).
    public func pinAcceptedUnplaced() { pinsUnplaced.increment() }
    public func claims(inFlight n: Int) { claimsInFlight.set(to: Double(n)) }
    public func queue(depth n: Int) { queueDepth.set(to: Double(n)) }

    /// An attempt ended: its outcome, its duration, and for a retry or failure its reason class.
    public func attemptEnded(_ outcome: PinOutcome, duration: Duration) {
        attempts(outcome.label).increment()
        attemptSeconds.record(duration)
        let reason: String
        switch outcome {
        case .pinned: return
        case .retry(_, let r): reason = r
        case .failed(let r): reason = r
        }
        let failure = AttemptFailure.of(reason)
        if failure == .stalled { stalls.increment() }
        if case .retry = outcome { retries(failure).increment() } else { failures(failure).increment() }
    }

    func retries(_ failure: AttemptFailure) -> Counter {
        registry.makeCounter(
            descriptor: Self.name("anchorage_scheduler_retries", "total", "Pin attempts that will be retried, by reason."),
            labels: [("reason", failure.rawValue)]
        )
    }

    func failures(_ failure: AttemptFailure) -> Counter {
        registry.makeCounter(
            descriptor: Self.name("anchorage_scheduler_failures", "total", "Pins given up on (failed), by reason."),
            labels: [("reason", failure.rawValue)]
        )
    }

    func attempts(_ outcome: String) -> Counter {
        registry.makeCounter(
            descriptor: Self.name("anchorage_scheduler_attempts", "total", "Pin attempts ended, by outcome (pinned, retry, failed)."),
            labels: [("outcome", outcome)]
        )
    }

    // MARK: cluster

    /// Copies the cluster agent's status in: gauges as they are, cumulative counts as the
    /// increase since the last copy.
    public func observe(cluster s: ClusterStatus) {
        for state in NodeState.allCases {
            gauge("anchorage_node_state", "1 for the node's current state (active, draining, drained).", [("state", state.rawValue)])
                .set(to: s.state == state ? 1 : 0)
        }
        gauge("anchorage_cluster_live_nodes", "Nodes heard within cluster.liveAfter, as this node sees them.").set(to: Double(s.live))
        gauge("anchorage_cluster_eligible_nodes", "Live, active nodes: where new pins may be placed.").set(to: Double(s.eligible.count))
        gauge("anchorage_cluster_leader", "1 while this node holds the leader lease.").set(to: s.isLeader ? 1 : 0)
        gauge("anchorage_cluster_leader_fence", "Fence token (term) of the current leader, as this node knows it (0: unknown).")
            .set(to: Double(s.leaderFence ?? 0))
        count("anchorage_cluster_lease_acquisitions", "Leader terms this node won.", s.leaseAcquisitions)
        count("anchorage_cluster_lease_renewals", "Leader lease renewals by this node.", s.leaseRenewals)
        count("anchorage_cluster_lease_losses", "Leader terms this node lost (stepped down, deposed or expired).", s.leaseLosses)
        count("anchorage_cluster_heartbeats_ignored", "Heartbeats dropped because their node is not registered.", s.ignoredHeartbeats)
        for reason in MoveReason.allCases {
            count(
                "anchorage_rebalancer_moves",
                "Placement moves applied by the rebalancer, by reason.",
                s.movesByReason[reason.rawValue] ?? 0,
                [("reason", reason.rawValue)]
            )
        }
        count("anchorage_sweeper_requeues", "Stuck placements re-dispatched or moved by the requeue sweeper.", s.requeued)
        count("anchorage_reconciler_repins", "Placements queued again because their pin was missing from Kubo.", s.repaired)
        count("anchorage_reconciler_orphans_unpinned", "Pins anchorage made in Kubo that no placement wanted, removed.", s.orphansUnpinned)
        count(
            "anchorage_cache_invalidations_received",
            "Cache invalidations applied, by cache.",
            s.liveNodeInvalidations,
            [("cache", CacheName.liveNodes.rawValue)]
        )
        gauge("anchorage_cache_entries", "Entries held, by cache.", [("cache", CacheName.liveNodes.rawValue)]).set(to: Double(s.eligible.count))
        leaderOnly(s)
    }

    /// The leader's families: maintenance and the cluster-wide counts. Only the leader reads
    /// them, so only the leader exports them; a node that steps down removes its copies.
    func leaderOnly(_ s: ClusterStatus) {
        guard s.isLeader else {
            let gauges = leaderGauges.mutate { g in
                defer { g = [] }
                return g
            }
            for g in gauges { registry.unregisterGauge(g) }
            return
        }
        var gauges: [Gauge] = []
        func set(_ name: String, _ help: String, _ labels: [(String, String)] = [], _ value: Double) {
            let g = gauge(name, help, labels)
            g.set(to: value)
            gauges.append(g)
        }
        set("anchorage_maintenance_on", "1 while the cluster maintenance flag is set (leader only).", [], s.maintenance == nil ? 0 : 1)
        set(
            "anchorage_maintenance_overdue",
            "The watchdog: 1 while maintenance has been on longer than cluster.maintenance.maxDuration (leader only).",
            [],
            s.maintenanceOverdue ? 1 : 0
        )
        if let flag = s.maintenance {
            set(
                "anchorage_maintenance_started_timestamp_seconds",
                "When the maintenance flag was set, in Unix seconds (leader only, while on).",
                [],
                Double(flag.since) / 1_000_000
            )
        }
        if let c = s.counts {
            for status in ClusterCounts.statuses {
                set("anchorage_pins", "Pins by status, cluster-wide (leader only).", [("status", status)], Double(c.pins[status] ?? 0))
                set(
                    "anchorage_placements",
                    "Placements by state, cluster-wide (leader only).",
                    [("state", status)],
                    Double(c.placements[status] ?? 0)
                )
            }
            set(
                "anchorage_pins_under_replicated",
                "Pinned pins with fewer pinned placements than the replication factor (leader only).",
                [],
                Double(c.underReplicated)
            )
            set("anchorage_pin_counts_timestamp_seconds", "When the pin counts were read (leader only).", [], Double(c.at.microseconds) / 1_000_000)
        }
        let stale = leaderGauges.mutate { old in
            defer { old = gauges }
            return old
        }
        // A gauge the leader no longer sets (maintenance turned off) goes.
        let kept = Set(gauges.map { ObjectIdentifier($0) })
        for g in stale where !kept.contains(ObjectIdentifier(g)) { registry.unregisterGauge(g) }
    }

    // MARK: caches and the bus

    public func observe(caches: [CacheStats]) {
        for c in caches {
            let label = [("cache", c.cache)]
            count("anchorage_cache_hits", "Cache lookups answered from memory, by cache.", c.counters.hits, label)
            count("anchorage_cache_misses", "Cache lookups that went to the source, by cache.", c.counters.misses, label)
            count(
                "anchorage_cache_evictions",
                "Entries dropped to make room or because they outlived the TTL, by cache.",
                c.counters.evictions + c.counters.expirations,
                label
            )
            count("anchorage_cache_invalidations_sent", "Cache invalidations this node published, by cache.", c.counters.invalidationsSent, label)
            count("anchorage_cache_invalidations_received", "Cache invalidations applied, by cache.", c.counters.invalidationsReceived, label)
            gauge("anchorage_cache_entries", "Entries held, by cache.", label).set(to: Double(c.entries))
        }
    }

    /// A pool's connections by state (`active`, `idle`, `idle in transaction`, …) as
    /// `pg_stat_activity` shows them, how many wait for a lock, and the pool's size.
    public func observe(pool: String, connections: [String: Int], lockWaits: Int, maximum: Int) {
        for state in Set(connections.keys).union(["active", "idle", "idle in transaction"]) {
            gauge(
                "anchorage_db_connections",
                "This node's PostgreSQL connections by pool and state (pg_stat_activity, every metrics.countsInterval).",
                [("pool", pool), ("state", String(state.map { $0 == " " ? "_" : $0 }))]
            ).set(to: Double(connections[state] ?? 0))
        }
        gauge("anchorage_db_connections_max", "Size of each PostgreSQL pool (db.maxConnections; ops: 4).", [("pool", pool)])
            .set(to: Double(maximum))
        gauge("anchorage_db_lock_waits", "This node's PostgreSQL connections waiting for a lock, by pool.", [("pool", pool)])
            .set(to: Double(lockWaits))
    }

    public func observe(natsConnected: Bool, reconnects: Int) {
        gauge("anchorage_nats_connected", "1 while the NATS connection is up.").set(to: natsConnected ? 1 : 0)
        count("anchorage_nats_reconnects", "Times the NATS connection was re-established.", reconnects)
    }

    /// The text exposition format.
    public func render() -> [UInt8] { registry.emitToBuffer() }

    // MARK: helpers

    func gauge(_ name: String, _ help: String, _ labels: [(String, String)] = []) -> Gauge {
        registry.makeGauge(descriptor: Self.name(name, "", help), labels: labels)
    }

    /// Exports a cumulative count kept elsewhere as a counter: increments by what it grew.
    func count(_ base: String, _ help: String, _ value: Int, _ labels: [(String, String)] = []) {
        let counter = registry.makeCounter(descriptor: Self.name(base, "total", help), labels: labels)
        let key = base + labels.map { "|\($0.0)=\($0.1)" }.joined()
        let delta = exported.mutate { seen -> Int in
            let last = seen[key] ?? 0
            seen[key] = value
            // A source that restarted (a new agent) counts from zero again.
            return value >= last ? value - last : value
        }
        counter.increment(by: Int64(delta))
    }
}
