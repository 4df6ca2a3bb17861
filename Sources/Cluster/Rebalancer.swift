import Seams

/// Why a placement moves. `drain`: its node was drained by an operator. `nodeLost`: its node
/// stopped heartbeating. `balance`: rendezvous prefers another node (after nodes were added).
/// `stuck`: the sweeper dispatched it too often without success on its node. `replicate`: the
/// pin has fewer placements than the replication factor allows (it was accepted while fewer
/// nodes were live); a new placement is added (no source).
public enum MoveReason: String, Sendable, Codable, CaseIterable {
    case drain
    case nodeLost = "node-lost"
    case balance
    case stuck
    case replicate
}

/// One planned move of one placement (`from` nil: a new replica).
public struct Move: Sendable, Equatable, Codable {
    public var org: TypeID
    public var pin: TypeID
    public var cid: String
    public var from: TypeID?
    public var to: TypeID
    public var reason: MoveReason

    public init(org: TypeID, pin: TypeID, cid: String, from: TypeID?, to: TypeID, reason: MoveReason) {
        self.org = org
        self.pin = pin
        self.cid = cid
        self.from = from
        self.to = to
        self.reason = reason
    }
}

/// A node as the planner sees it.
public struct NodeView: Sendable, Equatable {
    public var id: TypeID
    public var state: NodeState
    /// Heard recently (`cluster.liveAfter`): may take new placements.
    public var live: Bool
    /// Not heard for `cluster.nodeLostAfter`: its placements are re-made elsewhere. A node
    /// that is neither live nor lost (a missed heartbeat, a restart) is left alone.
    public var lost: Bool

    public init(id: TypeID, state: NodeState, live: Bool, lost: Bool? = nil) {
        self.id = id
        self.state = state
        self.live = live
        self.lost = lost ?? !live
    }

    /// May receive placements.
    public var eligible: Bool { live && state == .active }
}

/// The rebalancer's decision, as a pure function of the cluster's state: no I/O, no clock, no
/// randomness, so `admin rebalance --dry-run` prints exactly what `apply` would do and the
/// simulator can check it. Make-before-break and rate limits are the apply step's job.
public enum Rebalancer {
    public struct Options: Sendable, Equatable {
        public var replicationFactor: Int
        /// Plan `balance` moves (rendezvous prefers another eligible node), not only repairs.
        public var balance: Bool
        /// At most this many moves per plan (the apply rate limit per round).
        public var maxMoves: Int
        /// Add placements to pins with fewer than the replication factor (capped by the
        /// eligible nodes), so every pin converges to its full factor.
        public var replicate: Bool

        public init(replicationFactor: Int, balance: Bool = false, maxMoves: Int = 100, replicate: Bool = true) {
            self.replicationFactor = replicationFactor
            self.balance = balance
            self.maxMoves = maxMoves
            self.replicate = replicate
        }
    }

    /// A pin with no placement at all (accepted while no node was eligible).
    public struct UnplacedPin: Sendable, Equatable {
        public var org: TypeID
        public var pin: TypeID
        public var cid: String

        public init(org: TypeID, pin: TypeID, cid: String) {
            self.org = org
            self.pin = pin
            self.cid = cid
        }
    }

    /// Plans moves for `placements` (grouped by pin). A placement on a drained/draining node
    /// moves with reason `drain`, on a node that is not live with `node-lost`; with
    /// `options.balance`, one on a node outside the pin's rendezvous top set moves to a
    /// missing top node with `balance`. Targets are eligible nodes that do not hold the pin,
    /// best rendezvous rank first. A pin with a move in progress (a placement that replaces
    /// another) is left alone until it completes. Output order: by pin, then source node.
    public static func plan(nodes: [NodeView], placements: [PlacementView], unplaced: [UnplacedPin] = [], options: Options) -> [Move] {
        let byID = Dictionary(nodes.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        let eligible = nodes.filter(\.eligible).map(\.id)
        var groups: [TypeID: [PlacementView]] = [:]
        var unplacedByPin: [TypeID: UnplacedPin] = [:]
        for p in placements { groups[p.pin, default: []].append(p) }
        if options.replicate { for u in unplaced where groups[u.pin] == nil { unplacedByPin[u.pin] = u } }
        let pins = Set(groups.keys).union(unplacedByPin.keys).sorted { ($0.high, $0.low) < ($1.high, $1.low) }
        let desired = min(options.replicationFactor, eligible.count)
        var moves: [Move] = []
        for pin in pins {
            guard moves.count < options.maxMoves else { break }
            if let u = unplacedByPin[pin] {
                for target in Rendezvous.choose(cid: u.cid, among: eligible, replicas: desired) where moves.count < options.maxMoves {
                    moves.append(Move(org: u.org, pin: u.pin, cid: u.cid, from: nil, to: target, reason: .replicate))
                }
                continue
            }
            guard let group = groups[pin] else { continue }
            if group.contains(where: { $0.replaces != nil }) { continue }
            let cid = group[0].cid
            let ranked = Rendezvous.rank(cid: cid, among: eligible)
            var holders = Set(group.map(\.node))
            var ordered = group.sorted { ($0.node.high, $0.node.low) < ($1.node.high, $1.node.low) }
            // Repairs first, then balance.
            var wants: [(PlacementView, MoveReason)] = []
            for p in ordered {
                let node = byID[p.node]
                if let node, node.state != .active {
                    wants.append((p, .drain))
                } else if node == nil || node?.lost == true {
                    wants.append((p, .nodeLost))
                }
            }
            if options.balance {
                let top = Set(ranked.prefix(options.replicationFactor))
                let moving = Set(wants.map(\.0.node))
                ordered.removeAll { moving.contains($0.node) }
                for p in ordered where !top.contains(p.node) && p.status != "failed" {
                    // Only when a top node is free to take it; otherwise it stays.
                    if ranked.prefix(options.replicationFactor).contains(where: { !holders.contains($0) }) {
                        wants.append((p, .balance))
                    }
                }
            }
            var kept = group.count
            for (p, reason) in wants {
                guard moves.count < options.maxMoves else { break }
                let candidates = reason == .balance ? Array(ranked.prefix(options.replicationFactor)) : ranked
                guard let target = candidates.first(where: { !holders.contains($0) }) else {
                    if reason != .balance { kept -= 1 }  // stays, but does not count as a healthy replica
                    continue
                }
                holders.insert(target)
                moves.append(Move(org: p.org, pin: p.pin, cid: p.cid, from: p.node, to: target, reason: reason))
            }
            // Converge to the full factor: placements on healthy nodes (and moves planned
            // above) count; a pin short of `desired` gets new replicas on its best free nodes.
            if options.replicate {
                while kept < desired, moves.count < options.maxMoves, let target = ranked.first(where: { !holders.contains($0) }) {
                    holders.insert(target)
                    moves.append(Move(org: group[0].org, pin: pin, cid: cid, from: nil, to: target, reason: .replicate))
                    kept += 1
                }
            }
        }
        return moves
    }
}
