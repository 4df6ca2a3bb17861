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
        let settings = try Settings(try await common.reader())
        let clock = SystemWallClock()
        let logger = LogSetup.bootstrap(level: settings.logLevel == "info" ? "warning" : settings.logLevel, format: settings.logFormat, clock: clock)
        let client = PostgresClient(configuration: try settings.opsURL().clientConfiguration(maxConnections: 2), backgroundLogger: logger)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            defer { group.cancelAll() }
            let store = PostgresClusterStore(client: client, entropy: SystemEntropy(), minReplicas: settings.cluster.minReplicas, logger: logger)
            var bus: (any ClusterBus)?
            if needsBus {
                do {
                    bus = try await BusConnection.connect(settings, logger: logger)
                } catch {
                    throw ValidationError("cannot reach NATS at \(settings.nats.clientURLs.joined(separator: ",")): \(error)")
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
            guard let connectedBus else { throw ValidationError("this command was started without NATS") }
            return connectedBus
        }
    }

    /// An operator's state change for a node, with a clear error for an unregistered one.
    func setState(of id: TypeID, to state: NodeState) async throws {
        do {
            try await store.setState(node: id, to: state, now: clock.now())
        } catch ClusterStoreError.unknownNode {
            throw ValidationError("no node \(id) is registered; `anchorage admin cluster-presences` lists them")
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
                "Take a node out of rotation: /v1/ready answers 503, its consumer stops after cluster.drainGracePeriod, the rebalancer moves its placements away (reason drain)."
        )
        @OptionGroup var common: CommonOptions
        @Argument(help: "The node ID (nod_…).") var node: String
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let id = try ClusterContext.nodeID(node)
            try await ClusterContext.with(common, needsBus: false) { ctx in
                try await ctx.setState(of: id, to: .draining)
                await ctx.announce(NodeStateChange(node: id, state: .draining, from: "admin"))
                if json {
                    try Admin.printJSON(["node": id.description, "state": "draining"])
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
                try await ctx.setState(of: id, to: .active)
                await ctx.announce(NodeStateChange(node: id, state: .active, from: "admin"))
                if json {
                    try Admin.printJSON(["node": id.description, "state": "active"])
                } else {
                    print("node \(id) is active again; new pins land on it")
                }
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
            @Option(help: "How long until the flag expires by itself, e.g. 30m (max 24h).") var ttl: String = "1h"
            @Flag(help: "Print JSON.") var json = false

            func validate() throws {
                guard let s = DurationText.seconds(ttl), s >= 1 else { throw ValidationError("--ttl must be a duration like 30m or 2h (got \(ttl))") }
                guard s <= MaintenanceFlag.maxTTLSeconds else { throw ValidationError("--ttl must be at most 24h") }
                guard !reason.trimmingCharacters(in: .whitespaces).isEmpty, reason.utf8.count <= MaintenanceFlag.maxReasonBytes else {
                    throw ValidationError("--reason must be 1-\(MaintenanceFlag.maxReasonBytes) bytes")
                }
            }

            func run() async throws {
                let seconds = DurationText.seconds(ttl) ?? 3600
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
            abstract: "Every registered node: state, live, last heartbeat age, leader, load (listens for one heartbeat interval)."
        )
        @OptionGroup var common: CommonOptions
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            try await ClusterContext.with(common) { ctx in
                let presence = try await ctx.listen()
                let now = ctx.clock.now()
                let leader = try await ctx.bus.kvGet(ClusterKeys.leader).flatMap { ClusterJSON.decode(LeaseValue.self, $0.value) }
                let counts = try await ctx.store.placementCounts()
                var rows: [[String]] = []
                var objects: [[String: Any]] = []
                for n in try await ctx.store.nodes() {
                    let hb = presence.entries[n.id]?.heartbeat
                    let ageSeconds: Int64? =
                        hb.map { (now.microseconds - $0.sentAt) / 1_000_000 } ?? n.lastSeen.map { (now.microseconds - $0.microseconds) / 1_000_000 }
                    let live = presence.isLive(n.id, now: now, settings: ctx.settings.cluster)
                    let isLeader = leader?.node == n.id.description
                    rows.append([
                        n.id.description, n.name, n.state.rawValue, live ? "yes" : "no", ageSeconds.map { "\($0)s" } ?? "-",
                        isLeader ? "leader (fence \(leader?.fence ?? 0))" : "", hb.map { "\($0.inflight)" } ?? "-", "\(counts[n.id] ?? 0)",
                        hb?.version ?? "-",
                    ])
                    var o: [String: Any] = [
                        "node": n.id.description, "name": n.name, "state": n.state.rawValue, "live": live, "leader": isLeader,
                        "placements": counts[n.id] ?? 0,
                    ]
                    if let ageSeconds { o["lastHeartbeatAgeSeconds"] = ageSeconds }
                    if let hb {
                        o["inflight"] = hb.inflight
                        o["version"] = hb.version
                    }
                    if isLeader, let leader { o["fence"] = leader.fence }
                    objects.append(o)
                }
                if json {
                    try Admin.printJSON(objects)
                } else {
                    print(Table.render(["NODE", "NAME", "STATE", "LIVE", "LAST HEARTBEAT", "LEADER", "IN FLIGHT", "PLACEMENTS", "VERSION"], rows))
                }
            }
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
                        throw ValidationError("no leader holds the lease right now; try again in a few seconds")
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
                    guard let answer else { throw ValidationError("the leader did not answer within \(timeout)s") }
                    if answer.skippedForMaintenance {
                        throw ValidationError("maintenance is on: the rebalancer is paused (anchorage admin maintenance status)")
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
