import AnchorageNode
import ArgumentParser
import Cluster
import Foundation
import Live
import Logging
import PostgresNIO
import PostgresStore
import Seams

/// The cluster verbs of `anchorage admin`: they reach the cluster through the same config as
/// `serve` (PostgreSQL as the ops role, NATS at `nats.url` or the local embedded server).
struct ClusterContext: Sendable {
    let settings: Settings
    let store: PostgresClusterStore
    /// nil for verbs that only touch PostgreSQL (drain, uncordon): they work while NATS is down.
    let connectedBus: (any ClusterBus)?
    let clock: any WallClock
    let logger: Logger

    static func with<T: Sendable>(
        _ common: CommonOptions,
        needsBus: Bool = true,
        _ body: @Sendable (ClusterContext) async throws -> T
    ) async throws -> T {
        try await Admin.withOpsDatabase(common) { settings, client, clock, logger in
            let store = PostgresClusterStore(client: client, entropy: SystemEntropy(), minReplicas: settings.cluster.minReplicas, logger: logger)
            var bus: (any ClusterBus)?
            if needsBus {
                do {
                    bus = try await BusConnection.connect(settings, logger: logger)
                } catch {
                    throw CommandFailure.unavailable(
                        "cannot reach NATS at \(settings.nats.clientURLs.joined(separator: ",")): \(CommandFailure.plainReason(error)); set nats.url, ANCHORAGE_NATS_URL or --nats-url to a running server"
                    )
                }
            }
            let context = ClusterContext(settings: settings, store: store, connectedBus: bus, clock: clock, logger: logger)
            do {
                let result = try await body(context)
                await (bus as? any ClosableBus)?.close()
                return result
            } catch {
                await (bus as? any ClosableBus)?.close()
                throw error
            }
        }
    }

    var bus: any ClusterBus {
        get throws {
            guard let connectedBus else { throw CommandFailure(status: .other, message: "this command was started without NATS") }
            return connectedBus
        }
    }

    /// An operator's state change for a node, with a clear error for an unregistered one.
    func setState(of id: TypeID, to state: NodeState) async throws {
        do {
            try await store.setState(node: id, to: state, now: clock.now())
        } catch ClusterStoreError.unknownNode {
            throw ClusterStoreError.unknownNode(id.description)
        }
    }

    /// Tells every node's live set at once (best effort: their heartbeats carry it anyway).
    func announce(_ change: NodeStateChange) async {
        do {
            try await Admin.withinSeconds(3) {
                let bus = try await BusConnection.connect(settings, logger: logger)
                try await bus.publish(Subjects.liveNodeChanges, change.encoded())
                await (bus as? any ClosableBus)?.close()
            }
        } catch {
            logger.debug("could not announce the state change over NATS; nodes learn it from heartbeats", metadata: ["error": "\(error)"])
        }
    }

    /// A node ID from the command line, or a clear error.
    static func nodeID(_ text: String) throws -> TypeID {
        guard let id = TypeID(parsing: text, prefix: IDPrefix.node) else {
            throw ValidationError("\(text) is not a node ID (nod_…); `anchorage admin cluster-presences` lists them")
        }
        return id
    }

    /// Heartbeats heard for one heartbeat interval (plus a second), newest per node.
    func listen() async throws -> PresenceTable {
        let inbox = try await bus.subscribe(Subjects.heartbeats, capacity: 4096)
        let start = clock.now()
        try await Task.sleep(for: .seconds(settings.cluster.heartbeatSeconds + 1))
        var table = PresenceTable(watchingSince: start)
        let now = clock.now()
        for m in await inbox.drain() {
            if let hb = Heartbeat.decode(m.payload) { table.heard(hb, at: now) }
        }
        await inbox.close()
        return table
    }

    /// How recently a node showed signs of life, by the newest of its heartbeat (heard while
    /// listening) and its `last_seen_at` in PostgreSQL (both stamped by the node's own clock).
    func heartbeatAge(of node: NodeRecord, heartbeat: Heartbeat?, now: Timestamp) -> Int64? {
        let newest = max(heartbeat?.sentAt ?? .min, node.lastSeen?.microseconds ?? .min)
        guard newest != .min else { return nil }
        return max(0, (now.microseconds - newest) / 1_000_000)
    }

    enum Liveness: String {
        /// Heard within `cluster.liveAfter`.
        case live
        /// Silent past `cluster.liveAfter`: placement avoids it.
        case down
        /// Silent past `cluster.nodeLostAfter`: its placements are re-made elsewhere (unless maintenance is on).
        case lost

        var isLive: Bool { self == .live }
    }

    func liveness(of node: NodeRecord, heartbeat: Heartbeat?, now: Timestamp) -> Liveness {
        guard let age = heartbeatAge(of: node, heartbeat: heartbeat, now: now) else { return .lost }
        if age <= settings.cluster.liveAfterSeconds { return .live }
        return age <= settings.cluster.nodeLostAfterSeconds ? .down : .lost
    }

    func nodeViews(_ presence: PresenceTable) async throws -> [NodeView] {
        let now = clock.now()
        return try await store.nodes().map {
            // A node silent for the whole listening window is treated as lost only if
            // PostgreSQL also has not seen it for `nodeLostAfter` (what the leader would see).
            let live = presence.isLive($0.id, now: now, settings: settings.cluster)
            let seen = $0.lastSeen.map { now.microseconds - $0.microseconds <= settings.cluster.nodeLostAfterSeconds * 1_000_000 } ?? false
            return NodeView(id: $0.id, state: $0.state, live: live, lost: !live && !seen)
        }
    }
}

extension Admin {
    struct Drain: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Take a node out of rotation: /v1/ready answers 503, its consumer stops after cluster.drainGracePeriod, the rebalancer moves its placements away (reason drain).",
            discussion:
                "Refused when it would leave fewer live, active nodes than cluster.replicationFactor, unless --force. Draining a dead node moves its placements within one rebalance round."
        )
        @OptionGroup var common: CommonOptions
        @Argument(help: "The node ID (nod_…).") var node: String
        @Flag(help: "Drain even if fewer live, active nodes than cluster.replicationFactor would remain.") var force = false
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let id = try ClusterContext.nodeID(node)
            try await ClusterContext.with(common, needsBus: false) { ctx in
                let now = ctx.clock.now()
                let nodes = try await ctx.store.nodes()
                guard let target = nodes.first(where: { $0.id == id }) else { throw ClusterStoreError.unknownNode(id.description) }
                if target.state != .active {
                    let since = target.drainRequestedAt.map { " since \($0.rfc3339)" } ?? ""
                    if json {
                        try Admin.printJSON(["node": id.description, "state": target.state.rawValue, "changed": false])
                    } else {
                        print("node \(id) is already \(target.state.rawValue)\(since); nothing changed (anchorage admin uncordon \(id) restores it)")
                    }
                    return
                }
                let factor = ctx.settings.cluster.replicationFactor
                let remaining = nodes.filter { $0.id != id && $0.state == .active && ctx.liveness(of: $0, heartbeat: nil, now: now).isLive }.count
                if remaining < factor && !force {
                    let left = remaining == 0 ? "no live, active node" : "\(remaining) live, active node\(remaining == 1 ? "" : "s")"
                    let effect =
                        remaining == 0
                        ? "/v1/ready would answer 503 on every node and new pins would wait unplaced"
                        : "new pins would get fewer replicas than the factor"
                    throw CommandFailure.data(
                        "refusing to drain \(id): it would leave \(left), fewer than cluster.replicationFactor (\(factor)); \(effect). Add --force to drain it anyway."
                    )
                }
                try await ctx.setState(of: id, to: .draining)
                await ctx.announce(NodeStateChange(node: id, state: .draining, from: "admin"))
                if json {
                    try Admin.printJSON(["node": id.description, "state": "draining", "changed": true])
                } else {
                    print(
                        "node \(id) is draining: /v1/ready answers 503; its job consumer stops after cluster.drainGracePeriod (\(ctx.settings.cluster.drainGraceSeconds)s) once in-flight jobs finish; its placements move with reason drain. Restore with: anchorage admin uncordon \(id)"
                    )
                }
            }
        }
    }

    struct Uncordon: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Put a drained node back in rotation (moved pins stay where they are).")
        @OptionGroup var common: CommonOptions
        @Argument(help: "The node ID (nod_…).") var node: String
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let id = try ClusterContext.nodeID(node)
            try await ClusterContext.with(common, needsBus: false) { ctx in
                guard let record = try await ctx.store.node(id) else { throw ClusterStoreError.unknownNode(id.description) }
                if record.state == .active {
                    if json {
                        try Admin.printJSON(["node": id.description, "state": "active", "changed": false])
                    } else {
                        print("node \(id) is already active; nothing changed")
                    }
                    return
                }
                try await ctx.setState(of: id, to: .active)
                await ctx.announce(NodeStateChange(node: id, state: .active, from: "admin"))
                if json {
                    try Admin.printJSON(["node": id.description, "state": "active", "changed": true])
                } else {
                    print("node \(id) is active again (was \(record.state.rawValue)); new pins land on it")
                }
            }
        }
    }

    struct RemoveNode: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "remove-node",
            abstract: "Retire a node for good: its placements are re-made elsewhere first (make-before-break), then it is forgotten.",
            discussion: """
                A live node must be drained first. A dead one is drained by this command. It waits (up to --timeout) \
                until the rebalancer has moved every placement, then removes the node from PostgreSQL, so it no longer \
                shows in cluster-presences. A removed node that starts again registers afresh.
                """
        )
        @OptionGroup var common: CommonOptions
        @Argument(help: "The node ID (nod_…).") var node: String
        @Option(help: "How long to wait for its placements to move, e.g. 10m (0: do not wait).") var timeout = "10m"

        func validate() throws {
            guard let s = DurationText.operatorSeconds(timeout), s >= 0 else {
                throw ValidationError("--timeout must be a duration like 90s or 10m (got \(timeout))")
            }
        }

        func run() async throws {
            let id = try ClusterContext.nodeID(node)
            let waitSeconds = DurationText.operatorSeconds(timeout) ?? 600
            try await ClusterContext.with(common, needsBus: false) { ctx in
                guard let record = try await ctx.store.node(id) else { throw ClusterStoreError.unknownNode(id.description) }
                let live = ctx.liveness(of: record, heartbeat: nil, now: ctx.clock.now()).isLive
                if live && record.state != .drained {
                    throw CommandFailure.data(
                        "node \(id) is live and \(record.state.rawValue): drain it first (anchorage admin drain \(id)), wait until cluster-presences shows it drained, then remove it"
                    )
                }
                if record.state == .active {
                    // A dead node: draining it moves its placements within one rebalance round.
                    try await ctx.setState(of: id, to: .draining)
                    await ctx.announce(NodeStateChange(node: id, state: .draining, from: "admin"))
                }
                let deadline = ContinuousClock.now + .seconds(waitSeconds)
                var holding = try await ctx.store.holdings(of: id).holding
                var told = false
                while holding > 0 {
                    guard ContinuousClock.now < deadline else {
                        throw CommandFailure.unavailable(
                            "node \(id) still holds \(holding) placement(s) after \(timeout); it stays draining and they keep moving (is maintenance on, or no leader? anchorage admin maintenance status). Run remove-node again later."
                        )
                    }
                    if !told {
                        print("waiting for \(holding) placement(s) on \(id) to be re-made elsewhere (reason drain)…")
                        told = true
                    }
                    try await Task.sleep(for: .seconds(2))
                    holding = try await ctx.store.holdings(of: id).holding
                }
                guard try await ctx.store.remove(node: id) else {
                    throw CommandFailure.unavailable("node \(id) took a new placement meanwhile; run remove-node again")
                }
                print("removed node \(id) (\(record.name)): it no longer shows in cluster-presences; if it starts again it registers afresh")
            }
        }
    }

    struct MaintenanceCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "maintenance",
            abstract: "Cluster-wide maintenance: while on, the rebalancer and requeue sweeper pause; the API keeps serving.",
            subcommands: [On.self, Off.self, Status.self]
        )

        struct On: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Turn maintenance on (e.g. before a rolling upgrade).")
            @OptionGroup var common: CommonOptions
            @Option(help: "Why (shown in status and logs).") var reason: String
            @Option(parsing: .unconditional, help: "How long until the flag expires by itself, e.g. 30m (max 24h).") var ttl: String = "1h"
            @Flag(help: "Print JSON.") var json = false

            func validate() throws {
                _ = try Admin.positiveSeconds("--ttl", ttl, atMost: (MaintenanceFlag.maxTTLSeconds, "24h"))
                guard !reason.trimmingCharacters(in: .whitespaces).isEmpty, reason.utf8.count <= MaintenanceFlag.maxReasonBytes else {
                    throw ValidationError("--reason must be 1-\(MaintenanceFlag.maxReasonBytes) bytes")
                }
            }

            func run() async throws {
                let seconds = try Admin.positiveSeconds("--ttl", ttl, atMost: (MaintenanceFlag.maxTTLSeconds, "24h"))
                try await ClusterContext.with(common) { ctx in
                    let by = ProcessInfo.processInfo.environment["USER"] ?? "operator"
                    let flag = try await Maintenance(bus: ctx.bus).turnOn(reason: reason, by: by, ttlSeconds: seconds, now: ctx.clock.now())
                    if json {
                        try Admin.printJSON(MaintenanceCommand.json(flag))
                    } else {
                        print("maintenance ON until \(Timestamp(microsecondsSinceEpoch: flag.expiresAt).rfc3339): \(flag.reason)")
                    }
                }
            }
        }

        struct Off: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Turn maintenance off; the rebalancer repairs what happened meanwhile.")
            @OptionGroup var common: CommonOptions
            @Flag(help: "Print JSON.") var json = false

            func run() async throws {
                try await ClusterContext.with(common) { ctx in
                    try await Maintenance(bus: ctx.bus).turnOff()
                    if json { try Admin.printJSON(["maintenance": false]) } else { print("maintenance OFF") }
                }
            }
        }

        struct Status: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Show the maintenance flag.")
            @OptionGroup var common: CommonOptions
            @Flag(help: "Print JSON.") var json = false

            func run() async throws {
                try await ClusterContext.with(common) { ctx in
                    let now = ctx.clock.now()
                    let flag = try await Maintenance(bus: ctx.bus).status(now: now)
                    if json {
                        try Admin.printJSON(flag.map { MaintenanceCommand.json($0) } ?? ["maintenance": false])
                    } else if let flag {
                        let age = (now.microseconds - flag.since) / 60_000_000
                        let overdue = flag.isOverdue(at: now, maxSeconds: ctx.settings.cluster.maintenanceMaxSeconds)
                        print(
                            "maintenance ON for \(age) min (by \(flag.by)): \(flag.reason); expires \(Timestamp(microsecondsSinceEpoch: flag.expiresAt).rfc3339)\(overdue ? " — OVERDUE (older than cluster.maintenance.maxDuration)" : "")"
                        )
                    } else {
                        print("maintenance OFF")
                    }
                }
            }
        }

        static func json(_ flag: MaintenanceFlag) -> [String: Any] {
            [
                "maintenance": true, "reason": flag.reason, "by": flag.by,
                "since": Timestamp(microsecondsSinceEpoch: flag.since).rfc3339, "expires": Timestamp(microsecondsSinceEpoch: flag.expiresAt).rfc3339,
            ]
        }
    }

    struct ClusterPresences: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "cluster-presences",
            abstract: "Every registered node: status, last heartbeat, address, leader, load (listens for one heartbeat interval).",
            discussion: """
                STATUS is the node's state (active, draining, drained) while it heartbeats; down when it has been \
                silent past cluster.liveAfter (placement avoids it); lost past cluster.nodeLostAfter (its placements \
                are re-made elsewhere unless maintenance is on). The state it last had follows in brackets.
                """
        )
        @OptionGroup var common: CommonOptions
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            try await ClusterContext.with(common) { ctx in
                let presence = try await ctx.listen()
                let now = ctx.clock.now()
                let leader = try await ctx.bus.kvGet(ClusterKeys.leader).flatMap { ClusterJSON.decode(LeaseValue.self, $0.value) }
                let counts = try await ctx.store.placementCounts()
                // Pins no node could take when they were accepted (every node drained or down).
                let unplaced = try await ctx.store.underReplicated(below: 1, limit: 1000).unplaced.count
                var rows: [[String]] = []
                var objects: [[String: Any]] = []
                for n in try await ctx.store.nodes() {
                    let hb = presence.entries[n.id]?.heartbeat
                    let age = ctx.heartbeatAge(of: n, heartbeat: hb, now: now)
                    let liveness = ctx.liveness(of: n, heartbeat: hb, now: now)
                    let state = hb?.state ?? n.state
                    let status = liveness.isLive ? state.rawValue : "\(liveness.rawValue) (\(state.rawValue))"
                    let isLeader = leader?.node == n.id.description
                    rows.append([
                        n.id.description, n.name, status, age.map(Self.age) ?? "never", hb?.address ?? "-",
                        isLeader ? "leader (fence \(leader?.fence ?? 0))" : "", hb.map { "\($0.inflight)" } ?? "-", "\(counts[n.id] ?? 0)",
                        hb?.version ?? "-",
                    ])
                    var o: [String: Any] = [
                        "node": n.id.description, "name": n.name, "state": state.rawValue, "live": liveness.isLive,
                        "liveness": liveness.rawValue, "status": status, "leader": isLeader, "placements": counts[n.id] ?? 0,
                    ]
                    if let age { o["lastHeartbeatAgeSeconds"] = age }
                    if let hb {
                        o["inflight"] = hb.inflight
                        o["version"] = hb.version
                        if let address = hb.address { o["address"] = address }
                    }
                    if isLeader, let leader { o["fence"] = leader.fence }
                    objects.append(o)
                }
                if json {
                    try Admin.printJSON(["nodes": objects, "unplacedPins": unplaced])
                } else {
                    print(
                        Table.render(["NODE", "NAME", "STATUS", "LAST HEARTBEAT", "ADDRESS", "LEADER", "IN FLIGHT", "PLACEMENTS", "VERSION"], rows)
                    )
                    if leader == nil { print("no node holds the leader lease right now") }
                    if unplaced > 0 {
                        print(
                            "\(unplaced == 1000 ? "1000+" : "\(unplaced)") pin(s) have no placement: no live, active node could take them; the leader places them once one is active"
                        )
                    }
                }
            }
        }

        /// `4s`, `2m05s`, `3h10m`: an age an operator reads at a glance.
        static func age(_ seconds: Int64) -> String {
            if seconds < 60 { return "\(seconds)s ago" }
            func two(_ n: Int64) -> String { n < 10 ? "0\(n)" : "\(n)" }
            if seconds < 3600 { return "\(seconds / 60)m\(two(seconds % 60))s ago" }
            if seconds < 86400 { return "\(seconds / 3600)h\(two((seconds % 3600) / 60))m ago" }
            return "\(seconds / 86400)d ago"
        }
    }

    struct Rebalance: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Move placements to where rendezvous hashing wants them (after adding nodes), make-before-break, through the leader."
        )
        @OptionGroup var common: CommonOptions
        @Flag(name: .customLong("dry-run"), help: "Print the plan; change nothing.") var dryRun = false
        @Option(help: "Seconds to wait for the leader's answer.") var timeout: Int = 60
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            try await ClusterContext.with(common) { ctx in
                let moves: [Move]
                if dryRun {
                    let views = try await ctx.nodeViews(try await ctx.listen())
                    moves = try await RebalancePlanning.plan(store: ctx.store, nodes: views, settings: ctx.settings.cluster, balance: true)
                } else {
                    guard try await ctx.bus.kvGet(ClusterKeys.leader) != nil else {
                        throw CommandFailure.unavailable(
                            "no node holds the leader lease: is any node running? (anchorage admin cluster-presences; a new leader is elected within cluster.leaderLeaseTTL)"
                        )
                    }
                    let id = TypeID.make("rbl", clock: ctx.clock, entropy: SystemEntropy()).description
                    let request = RebalanceRequest(
                        id: id,
                        by: ProcessInfo.processInfo.environment["USER"] ?? "operator",
                        requestedAt: ctx.clock.now()
                    )
                    try await ctx.bus.kvPut(RebalanceRequest.key, ClusterJSON.encode(request), ttl: RebalanceRequest.ttl)
                    var answer: RebalanceResult?
                    let deadline = ContinuousClock.now + .seconds(timeout)
                    while answer == nil, ContinuousClock.now < deadline {
                        try await Task.sleep(for: .milliseconds(200))
                        if let e = try await ctx.bus.kvGet(RebalanceRequest.resultKey), let r = ClusterJSON.decode(RebalanceResult.self, e.value),
                            r.requestID == id
                        {
                            answer = r
                        }
                    }
                    guard let answer else {
                        throw CommandFailure.unavailable("the leader did not answer within \(timeout)s; try again, or check its log")
                    }
                    if answer.skippedForMaintenance {
                        throw CommandFailure.unavailable(
                            "maintenance is on: the rebalancer is paused; nothing moved (anchorage admin maintenance status, then maintenance off)"
                        )
                    }
                    moves = answer.moves
                }
                if json {
                    try Admin.printJSON(
                        moves.map {
                            [
                                "pin": $0.pin.description, "cid": $0.cid, "from": $0.from?.description ?? "", "to": $0.to.description,
                                "reason": $0.reason.rawValue,
                            ]
                        }
                    )
                } else {
                    print(
                        Table.render(
                            ["PIN", "CID", "FROM", "TO", "REASON"],
                            moves.map { [$0.pin.description, $0.cid, $0.from?.description ?? "-", $0.to.description, $0.reason.rawValue] }
                        )
                    )
                    if dryRun, try await Maintenance(bus: ctx.bus).status(now: ctx.clock.now()) != nil {
                        print("maintenance is on: applying this plan is refused until anchorage admin maintenance off")
                    }
                    print(
                        dryRun
                            ? "\(moves.count) move(s) planned (dry run: nothing changed)"
                            : "\(moves.count) move(s) applied (make-before-break: old placements are released once the new ones are pinned)"
                    )
                }
            }
        }
    }
}
