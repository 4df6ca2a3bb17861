import AnchorageNode
import Cluster
import DeterministicSeams
import FakeKubo
import Foundation
import HTTPTypes
import Logging
import Pins
import PinsHTTP
import PostgresNIO
import PostgresStore
import Seams
import SimBus
import SimKernel
import Tokens
import Worker

/// An org of the workload, with its API token.
struct SimOrg: Sendable {
    var id: TypeID
    var name: String
    var token: String
}

/// A pin the API accepted (202), as the workload saw it.
struct AcceptedPin: Sendable {
    var org: Int
    var requestID: String
    var cid: String
    var acceptedAt: Timestamp
    var deleted = false
}

/// The simulated world of one run: the scheduler, the bus, the Kubos, the nodes, the
/// workload's bookkeeping and what the checkers observed. Everything here is touched only by the
/// event loop (one event at a time), which is what makes the run a function of the seed.
public final class World: @unchecked Sendable {
    // @unchecked: see above; the few hooks called from production code run inside an event.
    public let seed: UInt64
    public let scheduler: Scheduler
    public let log: EventLog
    public let clock: VirtualWallClock
    public let network: SimBusNetwork
    public let kubos = KuboWorld()
    let api: PostgresClient
    let ops: PostgresClient
    /// Every node's configuration: production's defaults with the scenario's overrides.
    public let configuration: NodeConfiguration
    public var settings: ClusterSettings { configuration.cluster }
    let overrides: SimOverrides
    public internal(set) var nodes: [SimNode] = []
    var orgs: [SimOrg] = []
    public var orgCount: Int { orgs.count }
    let operatorBus: SimBus
    let adminStore: PostgresClusterStore
    let lookup: PostgresTokenLookup
    let workload: SeededEntropy
    let start: Timestamp

    // Workload bookkeeping.
    var accepted: [String: AcceptedPin] = [:]  // requestid → pin; lookups only
    var acceptedOrder: [String] = []  // requestids in acceptance order
    var livePinsByOrg: [[String]] = []  // per org, requestids not deleted, in acceptance order
    var cidPool: [String] = []
    var cidCounter = 0
    public internal(set) var apiCalls = 0
    public internal(set) var apiErrors: [String] = []
    public internal(set) var pinsCreated = 0
    public internal(set) var pinsDeleted = 0

    // What the checkers observed.
    var everPinned: [String: String] = [:]  // pin (requestid) → cid, pinned at least once and not deleted
    /// When each accepted pin's first replica was pinned, after how long (seconds); lookups only.
    public internal(set) var timeToFirstPin: [String: Double] = [:]
    var pinsByCID: [String: Set<String>] = [:]  // cid → such pins; lookups only
    var dirtyCIDs: Set<String> = []  // CIDs a Kubo lost since the last check; drained sorted
    public internal(set) var leaderWrites: [LeaderWrite] = []
    var newLeaderWrites: [LeaderWrite] = []
    var writerByFence: [Int64: String] = [:]  // lookups only
    var pendingViolations: [Violation] = []
    var pendingFenceViolations: [Violation] = []
    var pendingMaintenanceViolations: [Violation] = []
    /// Facts a scenario noted for its expectations (e.g. placements on the drained node).
    public var notes: [String: Int] = [:]
    public internal(set) var watchdogWarnings: [Timestamp] = []
    public internal(set) var warnings = 0
    public internal(set) var pinOutcomes = (pinned: 0, retried: 0, failed: 0)
    var troubledSince: [Int: Timestamp] = [:]  // node index → since when drained or dead; lookups only
    public internal(set) var maintenanceWindows: [(on: Timestamp, off: Timestamp?)] = []
    public internal(set) var timeline: [TimelineSample] = []
    public internal(set) var marks: [TimelineMark] = []
    public internal(set) var fullChecks = 0
    var converging = false

    init(
        seed: UInt64,
        api: PostgresClient,
        ops: PostgresClient,
        configuration: NodeConfiguration,
        overrides: SimOverrides,
        traceRetention: Int,
        traceSink: (@Sendable (String) -> Void)?
    ) {
        self.seed = seed
        let clock = VirtualWallClock()
        self.clock = clock
        self.start = clock.now()
        self.log = EventLog(retention: traceRetention, sink: traceSink)
        self.scheduler = Scheduler(clock: clock, log: log, failureContextLines: 40)
        self.network = SimBusNetwork(scheduler: scheduler, entropy: SeededEntropy(seed: derive(seed, "bus")), log: log)
        self.api = api
        self.ops = ops
        self.configuration = configuration
        self.overrides = overrides
        self.operatorBus = network.endpoint(node: "admin")
        network.setFaults(.none, for: "admin")
        let adminEntropy = SeededEntropy(seed: derive(seed, "admin"))
        self.adminStore = PostgresClusterStore(
            client: ops,
            entropy: adminEntropy,
            minReplicas: configuration.cluster.minReplicas,
            logger: silentLogger("sim.admin")
        )
        self.lookup = PostgresTokenLookup(client: api, logger: silentLogger("sim.tokens"))
        self.workload = SeededEntropy(seed: derive(seed, "workload"))
    }

    // MARK: time

    public var now: Timestamp { clock.now() }
    /// Seconds of virtual time since the run began.
    public var elapsedSeconds: Double { Double(now.microseconds - start.microseconds) / 1_000_000 }

    func trace(_ line: String) { log.record("  " + line) }

    /// Schedules a scenario action `offset` after the start of the run.
    public func at(_ offset: Duration, _ label: String, _ action: @escaping @Sendable (World) async throws -> Void) {
        scheduler.schedule(at: start.adding(microseconds: offset.simMicroseconds), label: label) { [unowned self] in
            try await action(self)
        }
    }

    func mark(_ text: String, node: Int? = nil) {
        marks.append(TimelineMark(at: elapsedSeconds, node: node, text: text))
    }

    // MARK: setup

    func setUp(nodeCount: Int, orgCount: Int) async throws {
        let admin = PostgresAdmin(client: ops, clock: clock, entropy: SeededEntropy(seed: derive(seed, "orgs")), logger: silentLogger("sim.admin"))
        for i in 0..<orgCount {
            let org = try await admin.createOrg(name: "org\(i + 1)")
            let token = try await admin.mintToken(org: org.id, name: "sim", ttlSeconds: 30 * 24 * 3600)
            orgs.append(SimOrg(id: org.id, name: org.name, token: token.token))
            livePinsByOrg.append([])
        }
        let ids = SeededEntropy(seed: derive(seed, "node-ids"))
        for i in 0..<nodeCount {
            let name = "n\(i + 1)"
            let id = TypeID.make(IDPrefix.node, clock: clock, entropy: ids)
            let kubo = kubos.make(seed: derive(seed, "kubo.\(name)")) { [unowned self] cid in
                await self.checkUnpin(node: name, cid: cid)
            }
            nodes.append(SimNode(index: i, name: name, id: id, kubo: kubo, clock: NodeClock(world: clock)))
        }
        for node in nodes {
            // Nodes come up a little apart, so their steps interleave.
            let offset = Duration.milliseconds(Int64(node.index) * 173 + Int64(workload.uniform(100)))
            scheduler.schedule(after: offset, label: "boot \(node.name)") { [unowned self] in await self.boot(node) }
        }
    }

    // MARK: operator actions (as `anchorage admin` does them)

    public func drain(_ node: SimNode) async throws {
        try await adminStore.setState(node: node.id, to: .draining, now: now)
        // As the CLI does: announce it on the live-node set's invalidation subject.
        try? await operatorBus.publish(Subjects.liveNodeChanges, NodeStateChange(node: node.id, state: .draining, from: "admin").encoded())
        trace("admin drain \(node.name)")
        mark("drain", node: node.index)
    }

    public func uncordon(_ node: SimNode) async throws {
        try await adminStore.setState(node: node.id, to: .active, now: now)
        // As the CLI does: announce it on the live-node set's invalidation subject.
        try? await operatorBus.publish(Subjects.liveNodeChanges, NodeStateChange(node: node.id, state: .active, from: "admin").encoded())
        trace("admin uncordon \(node.name)")
        mark("uncordon", node: node.index)
    }

    public func maintenanceOn(reason: String, ttl: Duration) async throws {
        _ = try await Maintenance(bus: operatorBus).turnOn(reason: reason, by: "sim-operator", ttlSeconds: Int64(ttl.components.seconds), now: now)
        maintenanceWindows.append((on: now, off: nil))
        trace("admin maintenance on (\(reason))")
        mark("maintenance on")
    }

    public func maintenanceOff() async throws {
        try await Maintenance(bus: operatorBus).turnOff()
        if let last = maintenanceWindows.indices.last, maintenanceWindows[last].off == nil { maintenanceWindows[last].off = now }
        trace("admin maintenance off")
        mark("maintenance off")
    }

    /// `anchorage admin rebalance`: a request in the KV bucket for the leader.
    public func requestRebalance() async throws {
        let request = RebalanceRequest(id: "req-\(scheduler.eventsRun)", by: "sim-operator", requestedAt: now)
        try await operatorBus.kvPut(RebalanceRequest.key, ClusterJSON.encode(request), ttl: RebalanceRequest.ttl)
        trace("admin rebalance (request \(request.id))")
    }

    /// Whether the maintenance flag is on, per the bus (the truth the agents read).
    func maintenanceIsOn() -> Bool {
        guard let entry = network.kvEntries().first(where: { $0.key == ClusterKeys.maintenance }),
            let flag = ClusterJSON.decode(MaintenanceFlag.self, entry.value)
        else { return false }
        return flag.isOn(at: now)
    }

    /// The node whose lease is in the bus, if any.
    public func leaderNode() -> SimNode? {
        guard let entry = network.kvEntries().first(where: { $0.key == ClusterKeys.leader }),
            let value = ClusterJSON.decode(LeaseValue.self, entry.value)
        else { return nil }
        return nodes.first { $0.id.description == value.node }
    }

    public func node(_ name: String) -> SimNode? { nodes.first { $0.name == name } }

    /// A node chosen by the workload's entropy among those matching `filter`.
    public func pick(_ filter: (SimNode) -> Bool) -> SimNode? {
        let candidates = nodes.filter(filter)
        guard !candidates.isEmpty else { return nil }
        return candidates[Int(workload.uniform(UInt64(candidates.count)))]
    }

    public func random(_ n: Int) -> Int { Int(workload.uniform(UInt64(max(n, 1)))) }
    public func chance(_ p: Double) -> Bool { Double(workload.next() >> 11) / Double(UInt64(1) << 53) < p }

    // MARK: observations (hooks called from inside events)

    func recordLeaderWrite(_ write: LeaderWrite) {
        leaderWrites.append(write)
        newLeaderWrites.append(write)
        if write.kind == .beginTerm, !write.refusedAsStale {
            trace("term \(write.fence) begins: \(write.node) leads")
            mark("leader f\(write.fence)", node: node(write.node)?.index)
        }
        if write.refusedAsStale {
            trace("PostgreSQL refused \(write.kind.rawValue) from \(write.node) with stale fence \(write.fence)")
            mark("stale fence refused", node: node(write.node)?.index)
        } else if write.kind == .apply {
            trace("\(write.node) (fence \(write.fence)) applied \(write.count) move(s): \(write.reasons.map(\.rawValue).joined(separator: ","))")
        }
    }

    func notePinned(_ pin: String, cid: String) {
        guard let p = accepted[pin], !p.deleted, everPinned[pin] == nil else { return }
        everPinned[pin] = cid
        timeToFirstPin[pin] = Double(now.microseconds - p.acceptedAt.microseconds) / 1_000_000
        pinsByCID[cid, default: []].insert(pin)
    }

    func forgetPin(_ pin: String) {
        guard let cid = everPinned.removeValue(forKey: pin) else { return }
        pinsByCID[cid]?.remove(pin)
        if pinsByCID[cid]?.isEmpty == true { pinsByCID.removeValue(forKey: cid) }
    }

    /// The refcount rule at the moment a Kubo unpin is about to happen: no placement of any org
    /// may still need the CID on that node.
    func checkUnpin(node name: String, cid: String) async {
        dirtyCIDs.insert(cid)
        guard let node = node(name) else { return }
        do {
            let rows = try await ops.query(
                "SELECT count(*)::int8 FROM placements WHERE node_id = \(node.id.uuid) AND cid = \(cid)",
                logger: silentLogger("sim.check")
            ).collect()
            let n = try rows.first?.decode(Int64.self) ?? 0
            if n > 0 {
                pendingViolations.append(
                    Violation(
                        invariant: Checkers.refcount,
                        message: "\(name) unpinned \(cid) from Kubo while \(n) placement(s) still need it there"
                    )
                )
            }
            trace("kubo \(name) unpin \(cid) (placements needing it: \(n))")
        } catch {
            pendingViolations.append(Violation(invariant: Checkers.refcount, message: "could not check an unpin: \(error)"))
        }
    }

    /// Placements on `node` right now (PostgreSQL).
    public func placementCount(_ node: SimNode) async throws -> Int {
        let rows = try await ops.query("SELECT count(*)::int8 FROM placements WHERE node_id = \(node.id.uuid)", logger: silentLogger("sim.check"))
            .collect()
        return Int(try rows.first?.decode(Int64.self) ?? 0)
    }

    // MARK: workload (through the real router)

    public func newCID() -> String {
        cidCounter += 1
        var bytes: [UInt8] = [0x12, 0x20]
        bytes += workload.bytes(32)
        return Base58.encode(bytes)
    }

    /// The node a client's request lands on: any node that is up (also one cut off from the
    /// bus: it still answers, and places by its own, possibly stale, view of the live set).
    func entryNode() -> SimNode? { pick { $0.life == .up && $0.pausedUntil == nil && $0.http != nil } }

    /// One step of pin churn from a random org through a random node's API.
    func churnOnce(neverResolvingRate: Double) async throws {
        guard let node = entryNode(), let http = node.http else { return }
        let o = random(orgs.count)
        let org = orgs[o]
        let roll = random(100)
        let live = livePinsByOrg[o]
        if roll < 12, !live.isEmpty {
            let rid = live[random(live.count)]
            let reply = await http.send(.delete, "/pins/\(rid)", token: org.token)
            apiCalls += 1
            trace("api \(node.name) DELETE /pins/\(rid) \(org.name) → \(reply.status)")
            if reply.status == 202 { deletePin(rid) } else { apiErrors.append("DELETE \(reply.status) \(reply.body.prefix(200))") }
        } else if roll < 20, !live.isEmpty {
            let rid = live[random(live.count)]
            let cid = chooseCID(neverResolvingRate: neverResolvingRate)
            let reply = await http.send(.post, "/pins/\(rid)", token: org.token, json: #"{"cid":"\#(cid)","name":"replaced"}"#)
            apiCalls += 1
            trace("api \(node.name) POST /pins/\(rid) (replace) \(org.name) → \(reply.status)")
            if reply.status == 202, let newID = requestID(reply.body) {
                deletePin(rid)
                acceptPin(newID, org: o, cid: cid)
            } else {
                apiErrors.append("REPLACE \(reply.status) \(reply.body.prefix(200))")
            }
        } else if roll < 24, !live.isEmpty {
            let rid = live[random(live.count)]
            let reply = await http.send(.get, "/pins/\(rid)", token: org.token)
            apiCalls += 1
            trace("api \(node.name) GET /pins/\(rid) \(org.name) → \(reply.status) \(statusField(reply.body) ?? "")")
            if reply.status != 200 { apiErrors.append("GET \(reply.status) \(reply.body.prefix(200))") }
        } else {
            let cid = chooseCID(neverResolvingRate: neverResolvingRate)
            let reply = await http.send(.post, "/pins", token: org.token, json: #"{"cid":"\#(cid)","name":"p\#(pinsCreated + 1)"}"#)
            apiCalls += 1
            if reply.status == 202, let rid = requestID(reply.body) {
                trace("api \(node.name) POST /pins \(org.name) \(cid) → 202 \(rid)")
                acceptPin(rid, org: o, cid: cid)
            } else {
                trace("api \(node.name) POST /pins \(org.name) → \(reply.status)")
                apiErrors.append("POST \(reply.status) \(reply.body.prefix(200))")
            }
        }
    }

    /// `POST /pins` of `cid` for org number `org` through a node's API; the requestid if accepted.
    @discardableResult
    public func postPin(org o: Int, cid: String) async -> String? {
        guard let node = entryNode(), let http = node.http else { return nil }
        let org = orgs[o]
        let reply = await http.send(.post, "/pins", token: org.token, json: #"{"cid":"\#(cid)","name":"p\#(pinsCreated + 1)"}"#)
        apiCalls += 1
        guard reply.status == 202, let rid = requestID(reply.body) else {
            apiErrors.append("POST \(reply.status) \(reply.body.prefix(200))")
            return nil
        }
        trace("api \(node.name) POST /pins \(org.name) \(cid) → 202 \(rid)")
        acceptPin(rid, org: o, cid: cid)
        return rid
    }

    /// The CIDs of accepted pins, by requestid.
    public func acceptedCID(_ rid: String) -> String? { accepted[rid]?.cid }

    /// A new CID, or (a third of the time) one another pin already uses: several orgs pinning
    /// the same CID is what the cross-org refcount is for.
    func chooseCID(neverResolvingRate: Double) -> String {
        if !cidPool.isEmpty, chance(0.33) { return cidPool[random(cidPool.count)] }
        let cid = newCID()
        if neverResolvingRate > 0, chance(neverResolvingRate) { kubos.markNeverResolving(cid) }
        cidPool.append(cid)
        if cidPool.count > 64 { cidPool.removeFirst() }
        return cid
    }

    func acceptPin(_ rid: String, org: Int, cid: String) {
        accepted[rid] = AcceptedPin(org: org, requestID: rid, cid: cid, acceptedAt: now)
        acceptedOrder.append(rid)
        livePinsByOrg[org].append(rid)
        pinsCreated += 1
    }

    func deletePin(_ rid: String) {
        guard var p = accepted[rid] else { return }
        p.deleted = true
        accepted[rid] = p
        livePinsByOrg[p.org].removeAll { $0 == rid }
        forgetPin(rid)
        pinsDeleted += 1
    }

    func requestID(_ body: String) -> String? {
        guard let data = body.data(using: .utf8), let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return nil }
        return obj["requestid"] as? String
    }

    func statusField(_ body: String) -> String? {
        guard let data = body.data(using: .utf8), let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return nil }
        return obj["status"] as? String
    }

    /// Pin churn: `count` API calls spread over `[from, until)`, each at a seeded time.
    public func churn(count: Int, from: Duration, until: Duration, neverResolvingRate: Double = 0) {
        guard count > 0 else { return }
        let span = max((until - from).simMicroseconds, 1)
        let gap = span / Int64(count)
        for i in 0..<count {
            let jitter = Int64(workload.uniform(UInt64(max(gap, 1))))
            let at = from.simMicroseconds + Int64(i) * gap + jitter
            scheduler.schedule(at: start.adding(microseconds: at), label: "churn", key: nil) { [unowned self] in
                guard !self.converging else { return }
                try await self.churnOnce(neverResolvingRate: neverResolvingRate)
            }
        }
    }

    /// `GET /v1/ready` on a node (the drain doc: a draining node answers 503).
    public func readiness(_ node: SimNode) async -> Int? {
        guard let http = node.http else { return nil }
        let reply = await http.send(.get, "/v1/ready")
        trace("api \(node.name) GET /v1/ready → \(reply.status)")
        return reply.status
    }
}

/// A seed for one consumer of randomness, derived from the run's seed and a fixed label, so that
/// adding a consumer never shifts the others' streams.
func derive(_ seed: UInt64, _ label: String) -> UInt64 {
    StableHash.mix(StableHash.fnv1a(StableHash.fnvOffset ^ seed, label.utf8) &+ StableHash.golden)
}

/// One sample of the cluster for the report's timeline.
public struct TimelineSample: Sendable {
    public var at: Double
    public var lives: [SimNode.Life]
    public var states: [NodeState]
    public var paused: [Bool]
    public var placements: [Int]
    public var leader: Int?
    public var maintenance: Bool
}

public struct TimelineMark: Sendable {
    public var at: Double
    public var node: Int?
    public var text: String
}
