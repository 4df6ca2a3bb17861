import Logging
import Seams

/// The cluster events an operator must see in the logs, one line each (docs/monitoring.md,
/// "Log lines"): peers going silent, lost and back; maintenance switched on, off or expired;
/// the leader changing; a drain finishing; pins accepted while no node could take them.
/// Values are plain logfmt values (IDs, counts, `12s` durations), never Swift collection dumps.
extension ClusterAgent {
    /// Hands the live set to placement; says when pins accepted with no node to take them can
    /// be placed again.
    func updatePlacement(now: Timestamp) {
        guard let ended = policy.update(eligible: presence.eligible(now: now, settings: settings)) else { return }
        logger.notice(
            "a node can take new pins again: the leader places the pins accepted meanwhile at its next rebalance round",
            metadata: ["unplaced": "\(ended.count)", "since": "\(ended.since)", "eligible": "\(policy.eligible.count)"]
        )
    }

    /// One line per peer whose liveness changed (each transition once).
    func report(_ changes: [PresenceTable.Transition], now: Timestamp) async {
        var maintenance: MaintenanceFlag?
        var maintenanceRead = false
        for change in changes {
            var metadata: Logger.Metadata = [
                "node": "\(change.node)", "name": "\(change.name)", "state": "\(change.state.rawValue)",
                "silentFor": "\(change.silentSeconds)s",
            ]
            switch change.to {
            case .live:
                logger.notice("peer is back", metadata: metadata)
            case .silent:
                metadata["liveAfter"] = "\(settings.liveAfterSeconds)s"
                logger.warning("peer stopped heartbeating: no new pins go to it", metadata: metadata)
            case .lost:
                metadata["nodeLostAfter"] = "\(settings.nodeLostAfterSeconds)s"
                // Only a lost peer needs the flag: read it once per step, not every step.
                if !maintenanceRead {
                    maintenanceRead = true
                    do {
                        maintenance = try await Maintenance(bus: bus).status(now: now)
                    } catch {
                        metadata["maintenance"] = "unknown"
                    }
                }
                if let maintenance {
                    metadata["maintenance"] = "\(maintenance.reason)"
                    logger.warning("peer lost: repairs paused by maintenance; its placements are re-made once maintenance is off", metadata: metadata)
                } else {
                    logger.warning("peer lost: its placements will be re-made elsewhere", metadata: metadata)
                }
            }
        }
    }

    /// The lease holder as read while campaigning (every node, every `leaderRenewInterval`):
    /// `notice` when it changes (a new node or a new term), `info` for the first one this node
    /// learns of. The winner itself says `elected leader`.
    func observeLeader(_ value: LeaseValue?, log: Bool = true) {
        guard let value else { return }
        if let known = knownLeader, known.node == value.node, known.fence == value.fence { return }
        let previous = knownLeader
        knownLeader = value
        guard log else { return }
        var metadata: Logger.Metadata = ["leader": "\(value.node)", "fence": "\(value.fence)"]
        if let previous {
            metadata["previous"] = "\(previous.node)"
            metadata["previousFence"] = "\(previous.fence)"
            logger.notice("leader changed", metadata: metadata)
        } else {
            logger.info("following the leader", metadata: metadata)
        }
    }

    /// The leader's view of the maintenance flag, once per round: says when it switched on,
    /// off, or ended at its TTL (`previous` is the flag of the last round of this term).
    func observeMaintenance(previous: MaintenanceFlag?, current: MaintenanceFlag?, now: Timestamp) {
        if let current, previous == nil || previous?.since != current.since {
            // The paused line says it now (and then once a minute).
            nextMaintenanceLog = now
            return
        }
        guard let previous, current == nil else { return }
        let lost = presence.entries.keys.filter { $0 != node && presence.isLost($0, now: now, settings: settings) }.count
        let minutes = max(now.microseconds - previous.since, 0) / 60_000_000
        let metadata: Logger.Metadata = [
            "reason": "\(previous.reason)", "by": "\(previous.by)", "onFor": "\(minutes)m", "lostNodes": "\(lost)",
        ]
        if now.microseconds >= previous.expiresAt {
            logger.notice("maintenance expired at its TTL: rebalancer and requeue sweeper resume", metadata: metadata)
        } else {
            logger.notice("maintenance off: rebalancer and requeue sweeper resume", metadata: metadata)
        }
    }

    /// After a rebalance round: a draining or drained node that placements were moved away
    /// from and that holds none any more is said once (the operator may stop it now).
    func reportEmptiedDrains(moves: [Move], views: [NodeView]) async {
        for move in moves where move.reason == .drain { if let from = move.from { drainingWithPlacements.insert(from) } }
        guard !drainingWithPlacements.isEmpty else { return }
        let draining = Set(views.filter { $0.state != .active }.map(\.id))
        drainingWithPlacements.formIntersection(draining)
        for id in drainingWithPlacements.sorted(by: { ($0.high, $0.low) < ($1.high, $1.low) }) {
            do {
                guard try await store.placements(onNodes: [id], limit: 1).isEmpty else { continue }
                drainingWithPlacements.remove(id)
                logger.notice("drained node holds no placements any more", metadata: ["node": "\(id)"])
            } catch {
                logger.warning("could not count a drained node's placements", metadata: ["node": "\(id)", "error": "\(error)"])
                return
            }
        }
    }

    /// `drain=20,node-lost=3`: how many of each, by key (a logfmt value, not a dictionary dump).
    static func countsText(_ keys: [String]) -> String {
        var counts: [String: Int] = [:]
        for key in keys { counts[key, default: 0] += 1 }
        return counts.keys.sorted().map { "\($0)=\(counts[$0]!)" }.joined(separator: ",")
    }
}
