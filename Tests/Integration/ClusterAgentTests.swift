import AnchorageTesting
import Cluster
import FakeKubo
import Foundation
import LocalNATS
import Logging
import NATSBus
import Pins
import PostgresNIO
import PostgresStore
import Seams
import Testing
import Worker

/// The cluster agent in-process against a real nats-server and a real PostgreSQL, with a
/// virtual clock so that each duty runs exactly when the test says.
@Suite(.serialized) struct ClusterAgentTests {
    static func node(_ n: UInt64) -> TypeID { TypeID(prefix: IDPrefix.node, high: 0x0193_0000_0000_7000 | n, low: 0x8000_0000_0000_0000 | n) }

    func withAgents<T: Sendable>(
        count: Int,
        settings: ClusterSettings = ClusterSettings(),
        _ body: @Sendable (TestNode, [ClusterAgent], [FakeKuboNode], NATSBus) async throws -> T
    ) async throws -> T {
        let nats = try await LocalNATSServer.start()
        do {
            let result = try await withTestNode { node in
                let bus = try await NATSBus.connect(urls: [nats.url], logger: Logger(label: "test.bus"))
                do {
                    let store = PostgresClusterStore(client: node.opsClient, entropy: node.entropy, logger: Logger(label: "test.cluster"))
                    var agents: [ClusterAgent] = []
                    var kubos: [FakeKuboNode] = []
                    for i in 1...count {
                        let kubo = FakeKuboNode(seed: UInt64(i))
                        kubos.append(kubo)
                        let agent = ClusterAgent(
                            node: Self.node(UInt64(i)),
                            name: "n\(i)",
                            version: "test",
                            bus: bus,
                            store: store,
                            kubo: kubo,
                            clock: node.clock,
                            settings: settings,
                            logger: Logger(label: "test.agent\(i)")
                        )
                        try await agent.start()
                        agents.append(agent)
                    }
                    let out = try await body(node, agents, kubos, bus)
                    for a in agents { await a.stop() }
                    await bus.close()
                    return out
                } catch {
                    await bus.close()
                    throw error
                }
            }
            await nats.stop()
            return result
        } catch {
            await nats.stop()
            throw error
        }
    }

    /// Steps every agent until heartbeats have been exchanged over the real bus.
    func settle(_ agents: [ClusterAgent], rounds: Int = 5) async throws {
        for _ in 0..<rounds {
            for a in agents { await a.step() }
            try await Task.sleep(for: .milliseconds(30))
        }
    }

    @Test func exactlyOneLeaderAndPresenceOverTheBus() async throws {
        try await withAgents(count: 3) { node, agents, _, _ in
            try await settle(agents)
            var leaders = 0
            for a in agents where await a.isLeader { leaders += 1 }
            #expect(leaders == 1)
            // Everyone hears everyone: placement spreads over all three.
            for a in agents { #expect(await a.status.eligible.count == 3) }
            // A leader that stops releases the lease; the next campaign elects another, with a newer fence.
            let leader = try #require(await agents.asyncFirst { await $0.isLeader })
            let oldFence = try #require(await leader.fence)
            await leader.stop()
            node.clock.advance(seconds: 6)
            let others = agents.filter { $0 !== leader }
            try await settle(others)
            var newFences: [Int64] = []
            for a in others { if let f = await a.fence { newFences.append(f) } }
            #expect(newFences.count == 1 && newFences[0] > oldFence)
        }
    }

    @Test func reconcilerRepairsBothWaysAndLeavesOperatorPinsAlone() async throws {
        let settings = {
            var s = ClusterSettings()
            s.replicationFactor = 1
            return s
        }()
        try await withAgents(count: 1, settings: settings) { node, agents, kubos, _ in
            let agent = agents[0]
            let kubo = kubos[0]
            let worker = node.worker(node: agent.node, kubo: kubo)
            let service = node.placingService(on: agent.node)
            let org = try await node.admin.createOrg(name: "acme").id
            let kept = try await service.add(org: org, request: PinRequest(cid: cidA))
            try await worker.tick()
            // Kubo loses our pin; an orphan anchorage pin and an operator's own pin appear.
            try await kubo.unpin(cid: cidA)
            try await kubo.pin(cid: cidB, name: "anchorage", stallTimeout: .seconds(5), deadline: .seconds(5), progress: { _ in })
            let operatorCID = CIDText.synthetic(77, namespace: 100)
            try await kubo.pin(cid: operatorCID, name: "mine", stallTimeout: .seconds(5), deadline: .seconds(5), progress: { _ in })
            node.clock.advance(seconds: settings.reconcileSeconds + 1)
            let status = await agent.step()
            #expect(status.repaired == 1)
            #expect(status.orphansUnpinned == 1)
            #expect(try await node.service.get(org: org, requestID: kept.id.description).status == .queued)
            try await worker.tick()
            let pins = Set(await kubo.snapshot().pins.map(\.cid))
            #expect(pins == [cidA, operatorCID], "re-pinned ours, removed the orphan, kept the operator's")
            #expect(try await node.service.get(org: org, requestID: kept.id.description).status == .pinned)
        }
    }

    /// A CID submitted as base58btc (`z…`) is the CID Kubo lists in base32: the reconciler must
    /// see it as placed, neither "missing" (re-pinned every round) nor an orphan (unpinned).
    @Test func theReconcilerComparesCIDsAsKuboDoesNotAsStrings() async throws {
        let settings = {
            var s = ClusterSettings()
            s.replicationFactor = 1
            return s
        }()
        try await withAgents(count: 1, settings: settings) { node, agents, kubos, _ in
            let agent = agents[0]
            let worker = node.worker(node: agent.node, kubo: kubos[0])
            let service = node.placingService(on: agent.node)
            let org = try await node.admin.createOrg(name: "acme").id
            let z = base58Spelling(of: cidA)
            let pin = try await service.add(org: org, request: PinRequest(cid: z))
            try await worker.tick()
            #expect(Set(await kubos[0].snapshot().pins.map(\.cid)) == [cidA], "Kubo prints base32")
            node.clock.advance(seconds: settings.reconcileSeconds + 1)
            let status = await agent.step()
            #expect(status.repaired == 0)
            #expect(status.orphansUnpinned == 0)
            let after = try await node.service.get(org: org, requestID: pin.id.description)
            #expect(after.status == .pinned)
            #expect(after.request.cid == z, "the API echoes the client's spelling")
        }
    }

    /// Membership is PostgreSQL's: a heartbeat published on NATS for a node that is not
    /// registered (anyone who can reach NATS could send one) never makes it eligible for pins;
    /// once the node registers, its next heartbeat counts.
    @Test func heartbeatsFromUnregisteredNodesAreIgnored() async throws {
        try await withAgents(count: 1) { node, agents, _, bus in
            let agent = agents[0]
            let forged = Self.node(66)
            let hb = Heartbeat(node: forged.description, name: "evil", state: .active, version: "x", inflight: 0, leaderFence: nil, sentAt: 0)
            try await bus.publish(Subjects.heartbeat(forged), hb.encoded())
            try await Task.sleep(for: .milliseconds(300))  // the bus delivers asynchronously
            var status = await agent.step()
            #expect(!status.eligible.contains(forged))
            #expect(status.ignoredHeartbeats == 1)
            let store = PostgresClusterStore(client: node.opsClient, entropy: node.entropy, logger: Logger(label: "t"))
            try await store.register(node: forged, name: "late", version: "x", now: node.clock.now())
            // The registry is reloaded at most once per heartbeat interval for an ID already
            // refused (a forger cannot make every step query PostgreSQL).
            node.clock.advance(seconds: ClusterSettings().heartbeatSeconds)
            try await bus.publish(Subjects.heartbeat(forged), hb.encoded())
            try await Task.sleep(for: .milliseconds(300))
            status = await agent.step()
            #expect(status.eligible.contains(forged), "a node that registered is heard")
        }
    }

    @Test func drainStopsTheConsumerAfterTheGracePeriodAndUncordonReopensIt() async throws {
        let settings = {
            var s = ClusterSettings()
            s.drainGraceSeconds = 60
            return s
        }()
        try await withAgents(count: 2, settings: settings) { node, agents, _, bus in
            let store = PostgresClusterStore(client: node.opsClient, entropy: node.entropy, logger: Logger(label: "t"))
            let a = agents[0]
            try await settle(agents)
            #expect(await a.notReadyReason() == nil)
            try await store.setState(node: a.node, to: .draining, now: node.clock.now())
            node.clock.advance(seconds: settings.heartbeatSeconds)
            await a.step()
            #expect(await a.notReadyReason()?.contains("draining") == true)
            #expect(await a.acceptsJobs, "still working during the grace period")
            node.clock.advance(seconds: 61)
            await a.setInflight(2)
            await a.step()
            #expect(await !a.acceptsJobs)
            #expect(await a.status.queueOpen, "waits for in-flight pins")
            await a.setInflight(0)
            await a.step()
            #expect(await !a.status.queueOpen)
            #expect(try await store.node(a.node)?.state == .drained)
            await #expect(throws: BusError.self) { _ = try await bus.fetch(Subjects.jobs(a.node), max: 1, wait: .zero) }
            try await store.setState(node: a.node, to: .active, now: node.clock.now())
            node.clock.advance(seconds: settings.heartbeatSeconds)
            await a.step()
            #expect(await a.notReadyReason() == nil)
            #expect(await a.status.queueOpen)
            _ = try await bus.fetch(Subjects.jobs(a.node), max: 1, wait: .zero)
        }
    }

    @Test func maintenanceSilencesRebalancerAndSweeperAndTheWatchdogWarns() async throws {
        let settings = {
            var s = ClusterSettings()
            s.maintenanceMaxSeconds = 60
            s.nodeLostAfterSeconds = 20
            return s
        }()
        try await withAgents(count: 1, settings: settings) { node, agents, _, bus in
            let agent = agents[0]
            let store = PostgresClusterStore(client: node.opsClient, entropy: node.entropy, logger: Logger(label: "t"))
            try await settle(agents)
            #expect(await agent.isLeader)
            // A second node with a placement registers and goes silent: normally a node-lost repair.
            let ghost = Self.node(9)
            try await store.register(node: ghost, name: "ghost", version: "t", now: node.clock.now())
            let org = try await node.admin.createOrg(name: "acme").id
            _ = try await node.placingService(on: ghost).add(org: org, request: PinRequest(cid: cidA))
            _ = try await Maintenance(bus: bus).turnOn(reason: "upgrade", by: "test", ttlSeconds: 7200, now: node.clock.now())
            // Time passes in steps (the lease is renewed as it would be).
            var status = await agent.status
            for _ in 0..<16 {
                node.clock.advance(seconds: 4)
                status = await agent.step()
            }
            #expect(status.maintenance?.reason == "upgrade")
            #expect(status.maintenanceOverdue, "the watchdog raises its gauge past maxDuration")
            #expect(status.movesApplied == 0 && status.requeued == 0, "rebalancer and sweeper stay silent during maintenance")
            try await Maintenance(bus: bus).turnOff()
            for _ in 0..<9 {
                node.clock.advance(seconds: 4)
                status = await agent.step()
            }
            #expect(!status.maintenanceOverdue)
            #expect(status.maintenance == nil)
            #expect(status.movesApplied == 1, "after maintenance the lost node's placement is re-made: \(status)")
        }
    }
}

extension Array where Element == ClusterAgent {
    func asyncFirst(_ predicate: (ClusterAgent) async -> Bool) async -> ClusterAgent? {
        for e in self where await predicate(e) { return e }
        return nil
    }
}
