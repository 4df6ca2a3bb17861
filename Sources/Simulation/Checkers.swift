import Cluster
import FakeKubo
import Foundation
import PostgresNIO
import PostgresStore
import Seams
import SimBus
import SimKernel

/// The named invariants. Per-event checks read only what the world tracked in memory (cheap);
/// the PostgreSQL checks run every `fullCheckInterval` of virtual time and at the end.
public enum Checkers {
    public static let lastReplica = "no-pin-loses-last-replica"
    public static let placementsSettled = "no-placements-on-drained-or-dead-nodes"
    public static let oneLeaderPerFence = "one-leader-acts-per-fence"
    public static let maintenanceSilence = "rebalancer-and-sweeper-silent-in-maintenance"
    public static let refcount = "refcount-no-unpin-while-needed"
    public static let terminal = "accepted-pins-end-pinned-or-failed"
    public static let convergence = "convergence"

    /// After every event: in-memory, cost proportional to what changed.
    static func perEvent() -> InvariantSet<World> {
        InvariantSet([
            Invariant(name: lastReplica) { world in world.checkLastReplica() },
            Invariant(name: oneLeaderPerFence) { world in world.takeLeaderWriteViolations(fence: true) },
            Invariant(name: maintenanceSilence) { world in world.takeLeaderWriteViolations(fence: false) },
            Invariant(name: refcount) { world in world.takePendingViolations() },
        ])
    }
}

extension World {
    func takePendingViolations() -> [Violation] {
        defer { pendingViolations = [] }
        return pendingViolations
    }

    /// Checks the new leader-only writes once, then hands out each invariant's share.
    func takeLeaderWriteViolations(fence: Bool) -> [Violation] {
        let found = checkLeaderWrites()
        pendingFenceViolations += found.fence
        pendingMaintenanceViolations += found.maintenance
        if fence {
            defer { pendingFenceViolations = [] }
            return pendingFenceViolations
        }
        defer { pendingMaintenanceViolations = [] }
        return pendingMaintenanceViolations
    }

    /// Every pin pinned at least once (and not deleted) still has its CID in some Kubo that
    /// exists. Only CIDs some Kubo lost since the last check are looked at.
    func checkLastReplica() -> [Violation] {
        guard !dirtyCIDs.isEmpty else { return [] }
        let cids = dirtyCIDs.sorted()
        dirtyCIDs = []
        var out: [Violation] = []
        for cid in cids {
            guard let pins = pinsByCID[cid], !pins.isEmpty else { continue }
            if !nodes.contains(where: { $0.kubo.holds(cid) }) {
                out.append(
                    Violation(
                        invariant: Checkers.lastReplica,
                        message: "\(cid) (pins \(pins.sorted().joined(separator: ","))) is pinned in no Kubo any more"
                    )
                )
            }
        }
        return out
    }

    /// Leader-only writes since the last check: each fence token acts for one node only; no
    /// write with an older token than a begun term gets through; none during maintenance.
    func checkLeaderWrites() -> (fence: [Violation], maintenance: [Violation]) {
        guard !newLeaderWrites.isEmpty else { return ([], []) }
        let writes = newLeaderWrites
        newLeaderWrites = []
        var fence: [Violation] = []
        var maintenance: [Violation] = []
        for w in writes where !w.refusedAsStale {
            if let other = writerByFence[w.fence], other != w.node {
                fence.append(
                    Violation(
                        invariant: Checkers.oneLeaderPerFence,
                        message: "fence \(w.fence) acted for \(other) and for \(w.node) (\(w.kind.rawValue))"
                    )
                )
            }
            writerByFence[w.fence] = w.node
            let newest = leaderWrites.filter { $0.kind == .beginTerm && !$0.refusedAsStale && $0.at <= w.at }.map(\.fence).max() ?? 0
            if w.kind != .beginTerm, w.fence < newest {
                fence.append(
                    Violation(
                        invariant: Checkers.oneLeaderPerFence,
                        message: "\(w.node) wrote (\(w.kind.rawValue)) with fence \(w.fence) after term \(newest) began"
                    )
                )
            }
            if w.kind != .beginTerm, w.duringMaintenance {
                maintenance.append(
                    Violation(
                        invariant: Checkers.maintenanceSilence,
                        message: "\(w.node) (fence \(w.fence)) ran \(w.kind.rawValue) (\(w.count) change(s)) while maintenance was on"
                    )
                )
            }
        }
        return (fence, maintenance)
    }

    // MARK: PostgreSQL checks

    struct PinRow {
        var org: UUID
        var id: UUID
        var status: String
        var details: String
        var pinnedOK: Int
        var failedWithReason: Int
        var failedNoReason: Int
        var misplaced: Int
        var moving: Int
        var busy: Int
        var total: Int
    }

    /// Nodes that may hold placements: up or temporarily down, and active.
    func eligibleIDs(states: [TypeID: NodeState]) -> [TypeID] {
        nodes.filter { $0.life != .dead && states[$0.id] == .active }.map(\.id)
    }

    func nodeStates() async throws -> [TypeID: NodeState] {
        var out: [TypeID: NodeState] = [:]
        for n in try await adminStore.nodes() { out[n.id] = n.state }
        return out
    }

    func pinRows(eligible: [TypeID]) async throws -> [PinRow] {
        let ids = eligible.map(\.uuid)
        let rows = try await ops.query(
            """
            SELECT p.org_id, p.id, p.status, coalesce(p.info->>'status_details', ''),
              count(pl.node_id) FILTER (WHERE pl.status = 'pinned' AND pl.node_id = ANY(\(ids)))::int8,
              count(pl.node_id) FILTER (WHERE pl.status = 'failed' AND pl.last_error IS NOT NULL)::int8,
              count(pl.node_id) FILTER (WHERE pl.status = 'failed' AND pl.last_error IS NULL)::int8,
              count(pl.node_id) FILTER (WHERE NOT (pl.node_id = ANY(\(ids))))::int8,
              count(pl.node_id) FILTER (WHERE pl.replaces IS NOT NULL)::int8,
              count(pl.node_id) FILTER (WHERE pl.status IN ('queued', 'pinning'))::int8,
              count(pl.node_id)::int8
            FROM pins p LEFT JOIN placements pl ON pl.org_id = p.org_id AND pl.pin_id = p.id
            GROUP BY p.org_id, p.id, p.status, p.info ORDER BY p.id
            """,
            logger: silentLogger("sim.check")
        ).collect()
        return try rows.map { row in
            let (org, id, status, details, a, b, c, d, e, f, g) = try row.decode(
                (UUID, UUID, String, String, Int64, Int64, Int64, Int64, Int64, Int64, Int64).self
            )
            return PinRow(
                org: org,
                id: id,
                status: status,
                details: details,
                pinnedOK: Int(a),
                failedWithReason: Int(b),
                failedNoReason: Int(c),
                misplaced: Int(d),
                moving: Int(e),
                busy: Int(f),
                total: Int(g)
            )
        }
    }

    func pinName(_ id: UUID) -> String { TypeID(prefix: IDPrefix.pin, uuid: id).description }

    /// The periodic PostgreSQL check: accepted pins are all there (deleted ones gone); nodes
    /// drained or dead for longer than `settle` with maintenance off hold no placement that the
    /// rebalancer has not started to move; leader-only audit rows carry begun fences. Also
    /// samples the timeline.
    func fullCheck(settle: Duration, final: Bool) async throws -> [Violation] {
        fullChecks += 1
        var out: [Violation] = []
        let states = try await nodeStates()
        // Timeline sample.
        var counts = [Int](repeating: 0, count: nodes.count)
        for row in try await ops.query(
            "SELECT node_id, count(*)::int8 FROM placements GROUP BY node_id ORDER BY node_id",
            logger: silentLogger("sim.check")
        ).collect() {
            let (node, n) = try row.decode((UUID, Int64).self)
            if let i = nodes.firstIndex(where: { $0.id.uuid == node }) { counts[i] = Int(n) }
        }
        timeline.append(
            TimelineSample(
                at: elapsedSeconds,
                lives: nodes.map(\.life),
                states: nodes.map { states[$0.id] ?? .active },
                paused: nodes.map(\.isPaused),
                placements: counts,
                leader: leaderNode()?.index,
                maintenance: maintenanceIsOn()
            )
        )

        // Accepted pins exist; deleted ones do not.
        var inPG = Set<String>()
        for row in try await ops.query("SELECT id FROM pins ORDER BY id", logger: silentLogger("sim.check")).collect() {
            inPG.insert(pinName(try row.decode(UUID.self)))
        }
        for rid in acceptedOrder {
            guard let p = accepted[rid] else { continue }
            if p.deleted, inPG.contains(rid) {
                out.append(Violation(invariant: Checkers.terminal, message: "\(rid) was deleted (202) but is still stored"))
            } else if !p.deleted, !inPG.contains(rid) {
                out.append(Violation(invariant: Checkers.terminal, message: "\(rid) was accepted (202) but is not stored"))
            }
        }

        // Placements on drained or dead nodes, once the rebalancer had time to act.
        let maintenanceOffSince: Timestamp? = maintenanceIsOn() ? nil : (maintenanceWindows.last?.off ?? start)
        for node in nodes {
            let troubled = node.life == .dead || states[node.id] == .drained || states[node.id] == .draining
            if !troubled {
                troubledSince.removeValue(forKey: node.index)
                continue
            }
            let since = troubledSince[node.index] ?? (node.life == .dead ? (node.diedAt ?? now) : now)
            troubledSince[node.index] = since
            guard let off = maintenanceOffSince else { continue }
            let from = max(since, off)
            guard final || now.microseconds - from.microseconds > settle.simMicroseconds else { continue }
            let rows = try await ops.query(
                """
                SELECT p.pin_id, p.status, EXISTS (SELECT 1 FROM placements q WHERE q.org_id = p.org_id AND q.pin_id = p.pin_id
                                                   AND q.replaces = p.node_id)
                FROM placements p WHERE p.node_id = \(node.id.uuid) ORDER BY p.pin_id
                """,
                logger: silentLogger("sim.check")
            ).collect()
            var stuck: [String] = []
            for row in rows {
                let (pin, status, moving) = try row.decode((UUID, String, Bool).self)
                if final || !moving { stuck.append("\(pinName(pin)) (\(status)\(moving ? ", move in progress" : ""))") }
            }
            if !stuck.isEmpty {
                let what = node.life == .dead ? "dead" : (states[node.id]?.rawValue ?? "?")
                out.append(
                    Violation(
                        invariant: Checkers.placementsSettled,
                        message:
                            "\(node.name) is \(what) (since +\(Int((since.microseconds - start.microseconds) / 1_000_000))s) but holds \(stuck.count) placement(s)\(final ? " at the end" : " the rebalancer has not moved"): \(stuck.prefix(5).joined(separator: ", "))"
                    )
                )
            }
        }

        // Audit rows of leader-only writes carry fences of begun terms, outside maintenance.
        let rows = try await ops.query(
            """
            SELECT a.action, a.fence, a.at, EXISTS (SELECT 1 FROM leader_terms t WHERE t.fence = a.fence)
            FROM audit_log a WHERE a.actor = 'cluster' ORDER BY a.at, a.org_id, a.id
            """,
            logger: silentLogger("sim.check")
        ).collect()
        for row in rows {
            let (action, fence, at, begun) = try row.decode((String, Int64?, Timestamp, Bool).self)
            if fence == nil || !begun {
                out.append(
                    Violation(
                        invariant: Checkers.oneLeaderPerFence,
                        message: "audit \(action) at \(at) has fence \(fence.map(String.init) ?? "none") of no term"
                    )
                )
            }
            for w in maintenanceWindows where at > w.on && at < (w.off ?? now) {
                out.append(
                    Violation(invariant: Checkers.maintenanceSilence, message: "audit \(action) at \(at) during maintenance (fence \(fence ?? 0))")
                )
            }
        }
        return out
    }

    /// Every accepted pin has settled: pinned on its full replication factor on eligible nodes
    /// (placements that failed carry a reason), or failed with a reason; nothing queued,
    /// pinning or mid-move. Returns the pins that have not (up to `limit` descriptions) and how many.
    func unsettledPins(limit: Int = 8) async throws -> (count: Int, examples: [String]) {
        let states = try await nodeStates()
        let eligible = eligibleIDs(states: states)
        let rf = min(settings.replicationFactor, eligible.count)
        var count = 0
        var examples: [String] = []
        for p in try await pinRows(eligible: eligible) {
            let ok: Bool
            if p.status == "failed" {
                ok = !p.details.isEmpty && p.busy == 0
            } else {
                ok =
                    p.status == "pinned" && p.busy == 0 && p.moving == 0 && p.misplaced == 0 && p.failedNoReason == 0
                    && p.pinnedOK >= 1 && p.pinnedOK + p.failedWithReason >= rf
            }
            if !ok {
                count += 1
                if examples.count < limit {
                    examples.append(
                        "\(pinName(p.id)) \(p.status) (pinned \(p.pinnedOK)/\(rf), failed \(p.failedWithReason), busy \(p.busy), moving \(p.moving), misplaced \(p.misplaced)\(p.details.isEmpty ? "" : ": \(p.details.prefix(80))"))"
                    )
                }
            }
        }
        return (count, examples)
    }
}
