import Logging
import Seams

extension ClusterAgent {
    /// What only the leader does: the maintenance watchdog, the requeue sweeper and the
    /// rebalancer. The latter two pause while maintenance is on. Every write carries the term's
    /// fence token; a refused write means this node was deposed, and it steps down.
    func leaderDuties() async {
        guard let fence = lease?.fence else { return }
        let now = clock.now()
        let flag: MaintenanceFlag?
        do {
            flag = try await Maintenance(bus: bus).status(now: now)
        } catch {
            logger.warning("could not read the maintenance flag; pausing leader duties", metadata: ["error": "\(error)"])
            return
        }
        observeMaintenance(previous: status.maintenance, current: flag, now: now)
        status.maintenance = flag
        if now >= nextCounts {
            nextCounts = now.adding(seconds: settings.countsSeconds)
            do {
                let desired = max(min(settings.replicationFactor, policy.eligible.count), 1)
                var counts = try await store.counts(replicas: desired)
                counts.at = now
                status.counts = counts
            } catch {
                logger.warning("could not count pins for the metrics", metadata: ["error": "\(error)"])
            }
        }
        await serveRebalanceRequest(fence: fence, maintenance: flag != nil, now: now)
        if let flag {
            watchdog(flag, now: now)
            if now >= nextMaintenanceLog {
                nextMaintenanceLog = now.adding(seconds: 60)
                logger.notice(
                    "maintenance on: rebalancer and requeue sweeper paused",
                    metadata: ["reason": "\(flag.reason)", "by": "\(flag.by)", "until": "\(Timestamp(microsecondsSinceEpoch: flag.expiresAt))"]
                )
            }
            return
        }
        status.maintenanceOverdue = false
        do {
            if now >= nextSweep {
                nextSweep = now.adding(seconds: settings.sweepSeconds)
                try await sweep(fence: fence, now: now)
            }
            if now >= nextRebalance {
                nextRebalance = now.adding(seconds: settings.rebalanceSeconds)
                try await rebalance(fence: fence, balance: settings.autoBalance, now: now)
            }
        } catch let error as ClusterStoreError {
            if case .staleFence = error { stepDown("\(error)") } else { logger.error("leader duty failed", metadata: ["error": "\(error)"]) }
        } catch {
            logger.error("leader duty failed", metadata: ["error": "\(error)"])
        }
    }

    /// The cluster's nodes as the planner sees them, liveness from this node's presence table.
    func nodeViews(now: Timestamp) async throws -> [NodeView] {
        try await store.nodes().map {
            NodeView(
                id: $0.id,
                state: $0.state,
                live: presence.isLive($0.id, now: now, settings: settings),
                lost: presence.isLost($0.id, now: now, settings: settings)
            )
        }
    }

    /// Plans and applies one round; returns the moves applied.
    @discardableResult
    func rebalance(fence: Int64, balance: Bool, now: Timestamp) async throws -> [Move] {
        let views = try await nodeViews(now: now)
        let eligibleCount = views.filter(\.eligible).count
        let replicate = balance || now >= nextReplicateScan || eligibleCount > lastEligibleCount
        if replicate { nextReplicateScan = now.adding(seconds: settings.replicateSeconds) }
        lastEligibleCount = eligibleCount
        let moves = try await RebalancePlanning.plan(store: store, nodes: views, settings: settings, balance: balance, replicate: replicate)
        status.lastPlan = moves
        await reportEmptiedDrains(moves: moves, views: views)
        guard !moves.isEmpty else { return [] }
        let dispatches = try await store.apply(moves: moves, fence: fence, now: now)
        let applied = Set(dispatches.map { "\($0.pin)/\($0.node)" })
        status.movesApplied += dispatches.count
        for move in moves where applied.contains("\(move.pin)/\(move.to)") {
            status.movesByReason[move.reason.rawValue, default: 0] += 1
        }
        logger.notice(
            "rebalanced",
            metadata: [
                "moves": "\(dispatches.count)", "fence": "\(fence)",
                "reasons": "\(Self.countsText(moves.filter { applied.contains("\($0.pin)/\($0.to)") }.map(\.reason.rawValue)))",
            ]
        )
        await publish(dispatches)
        return moves.filter { applied.contains("\($0.pin)/\($0.to)") }
    }

    /// Re-dispatches placements whose job was lost or whose worker died; moves the ones that
    /// were dispatched too often to the best other eligible node.
    func sweep(fence: Int64, now: Timestamp) async throws {
        let stuck = try await store.stuckPlacements(now: now, requeueAfterSeconds: settings.requeueAfterSeconds, limit: settings.sweepBatch)
        guard !stuck.isEmpty else { return }
        let eligible = presence.eligible(now: now, settings: settings)
        var targets: [TypeID: [TypeID]] = [:]
        for p in stuck { targets[p.pin] = Rendezvous.rank(cid: p.cid, among: eligible).filter { $0 != p.node } }
        let actions = try await store.requeue(
            stuck,
            moveTargets: targets,
            maxRedispatches: settings.maxRedispatches,
            requeueAfterSeconds: settings.requeueAfterSeconds,
            fence: fence,
            now: now
        )
        status.requeued += actions.count
        var dispatches: [Dispatch] = []
        for action in actions {
            switch action {
            case .redispatched(let d): dispatches.append(d)
            case .moved(_, let d): dispatches.append(d)
            }
        }
        logger.notice("requeue sweeper re-dispatched stuck placements", metadata: ["count": "\(actions.count)", "fence": "\(fence)"])
        await publish(dispatches)
    }

    /// A maintenance flag on longer than `cluster.maintenance.maxDuration` is probably
    /// forgotten, and it silently stops repairs: say so loudly, every minute, and raise the gauge.
    func watchdog(_ flag: MaintenanceFlag, now: Timestamp) {
        guard flag.isOverdue(at: now, maxSeconds: settings.maintenanceMaxSeconds) else {
            status.maintenanceOverdue = false
            return
        }
        status.maintenanceOverdue = true
        guard now >= nextWatchdogWarning else { return }
        nextWatchdogWarning = now.adding(seconds: settings.watchdogRepeatSeconds)
        status.watchdogWarnings += 1
        let minutes = (now.microseconds - flag.since) / 60_000_000
        logger.critical(
            "MAINTENANCE FLAG FORGOTTEN? maintenance has been on for \(minutes) min (max \(settings.maintenanceMaxSeconds / 60) min): rebalancer and requeue sweeper are paused, lost nodes are NOT being repaired; run `anchorage admin maintenance off` when the work is done",
            metadata: ["reason": "\(flag.reason)", "by": "\(flag.by)"]
        )
    }
}

/// Gathers the planner's inputs from the store: the leader and `admin rebalance --dry-run` both
/// plan through here, so the dry run prints what the leader would apply from the same state.
public enum RebalancePlanning {
    /// `replicate`: also look for pins short of their factor (a scan of the pins table, so the
    /// leader does it only when more nodes became eligible or every `cluster.replicateInterval`).
    public static func plan(
        store: any ClusterStore,
        nodes views: [NodeView],
        settings: ClusterSettings,
        balance: Bool,
        replicate: Bool = true
    ) async throws -> [Move] {
        let options = Rebalancer.Options(replicationFactor: settings.replicationFactor, balance: balance, maxMoves: settings.rebalanceMaxMoves)
        var placements: [PlacementView]
        var unplaced: [Rebalancer.UnplacedPin] = []
        if balance {
            placements = try await store.placements(afterPin: nil, limit: 100_000)
        } else {
            let troubled = views.filter { $0.state != .active || $0.lost }.map(\.id)
            placements = troubled.isEmpty ? [] : try await store.placements(onNodes: troubled, limit: settings.rebalanceMaxMoves * 16)
        }
        // Pins short of their factor (capped by the eligible nodes) converge to it.
        let desired = min(settings.replicationFactor, views.filter(\.eligible).count)
        if replicate, desired > 0 {
            let short = try await store.underReplicated(below: desired, limit: settings.rebalanceMaxMoves)
            let seen = Set(placements.map { "\($0.pin)/\($0.node)" })
            placements += short.placements.filter { !seen.contains("\($0.pin)/\($0.node)") }
            unplaced = short.unplaced
        }
        guard !placements.isEmpty || !unplaced.isEmpty else { return [] }
        return Rebalancer.plan(nodes: views, placements: placements, unplaced: unplaced, options: options)
    }
}
