import Foundation
import Logging
import PostgresNIO
import PostgresStore
import ProcessCluster
import Seams

/// What a fault left behind, read from PostgreSQL and from every Kubo once the cluster settled.
struct Verdict: Sendable, CustomStringConvertible {
    var accepted = 0
    var alive = 0
    /// Accepted (and never deleted) pins PostgreSQL does not have: must be 0.
    var lost: [String] = []
    var pinned = 0
    var failed: [String: Int] = [:]
    /// Pins neither pinned on their factor nor failed.
    var unsettled = 0
    /// A few of them, to report.
    var unsettledPins: [TypeID] = []
    /// CIDs a Kubo holds under anchorage's pin name that no placement on its node wants.
    var orphans = 0

    var settled: Bool { lost.isEmpty && unsettled == 0 && orphans == 0 }

    var description: String {
        let reasons = failed.sorted { $0.key < $1.key }.map { "\($0.value)× \($0.key)" }.joined(separator: "; ")
        return
            "accepted \(accepted), live \(alive), lost \(lost.count), pinned \(pinned), failed \(failed.values.reduce(0, +))\(reasons.isEmpty ? "" : " (\(reasons))"), unsettled \(unsettled), orphans in Kubo \(orphans)"
    }

    /// What PostgreSQL says of an unsettled pin: its status and each placement (node index,
    /// status, attempts, updated_at), for the failure message.
    static func explain(_ pin: TypeID, harness: ClusterHarness) async throws -> String {
        var out = "\(pin):"
        let rows = try await harness.ops.query(
            """
            SELECT p.status, p.cid, pl.node_id, pl.status, pl.attempts, pl.updated_at::text
            FROM pins p LEFT JOIN placements pl ON pl.org_id = p.org_id AND pl.pin_id = p.id
            WHERE p.id = \(pin.uuid)
            """,
            logger: Logger(label: "faults")
        )
        for try await (status, cid, node, placement, attempts, at) in rows.decode((String, String, UUID?, String?, Int32?, String?).self) {
            let index = node.flatMap { n in harness.nodes.first { $0.id == TypeID(prefix: IDPrefix.node, uuid: n) }?.index }
            out +=
                " pin \(status) \(cid); placement node \(index.map(String.init) ?? "-") \(placement ?? "-") attempts \(attempts ?? 0) at \(at ?? "-");"
        }
        return out
    }

    /// Reads the verdict: every pin row must be pinned on `factor` nodes or failed; every
    /// accepted pin must have a row; no Kubo may hold an anchorage pin its node was not given.
    static func read(harness: ClusterHarness, load: Load, factor: Int) async throws -> Verdict {
        let logger = Logger(label: "faults")
        let snapshot = load.snapshot
        var verdict = Verdict(accepted: snapshot.accepted, alive: snapshot.alive.count)
        var ids = Set<String>()
        let rows = try await harness.ops.query(
            """
            SELECT p.id, p.status, coalesce(p.info->>'reason', ''),
                   (SELECT count(*) FROM placements pl WHERE pl.org_id = p.org_id AND pl.pin_id = p.id AND pl.status = 'pinned')::int8
            FROM pins p
            """,
            logger: logger
        )
        for try await (id, status, reason, replicas) in rows.decode((UUID, String, String, Int64).self) {
            ids.insert(TypeID(prefix: IDPrefix.pin, uuid: id).description)
            if status == "failed" {
                verdict.failed[reason.isEmpty ? "(no reason)" : String(reason.prefix(80)), default: 0] += 1
            } else if replicas >= factor {
                verdict.pinned += 1
            } else {
                verdict.unsettled += 1
                if verdict.unsettledPins.count < 5 { verdict.unsettledPins.append(TypeID(prefix: IDPrefix.pin, uuid: id)) }
            }
        }
        verdict.lost = snapshot.alive.keys.filter { !ids.contains($0) }.sorted()
        for node in harness.nodes {
            let held = try await Self.anchoragePins(kuboURL: node.kuboURL, harness: harness)
            let wanted = try await Self.placedCIDs(node: node, harness: harness)
            verdict.orphans += held.subtracting(wanted).count
        }
        return verdict
    }

    static func placedCIDs(node: ClusterHarness.Node, harness: ClusterHarness) async throws -> Set<String> {
        var out = Set<String>()
        let rows = try await harness.ops.query(
            "SELECT p.cid FROM placements pl JOIN pins p ON p.org_id = pl.org_id AND p.id = pl.pin_id WHERE pl.node_id = \(node.id.uuid)",
            logger: Logger(label: "faults")
        )
        for try await cid in rows.decode(String.self) { out.insert(cid) }
        return out
    }

    /// The fake Kubo's recursive pins named `anchorage`, over its RPC API.
    static func anchoragePins(kuboURL: String, harness: ClusterHarness) async throws -> Set<String> {
        let lines = try await harness.kuboPinList(kuboURL: kuboURL)
        return Set(lines.filter { $0.name == "anchorage" }.map(\.cid))
    }
}
