import AnchorageTesting
import Cluster
import FakeKubo
import Foundation
import Hummingbird
import HummingbirdTesting
import LocalNATS
import Logging
import NATSBus
import Pins
import PostgresStore
import Seams
import Testing

@testable import AnchorageNode

/// The lines an operator reads to follow the cluster (docs/monitoring.md, "Log lines"): each
/// event once, at notice or warning, with logfmt values; probes at debug.
@Suite(.serialized) struct OperatorLogTests {
    static func node(_ n: UInt64) -> TypeID { ClusterAgentTests.node(n) }

    /// Agents like ClusterAgentTests', each logging into `capture` under the label `agent<i>`.
    func withAgents<T: Sendable>(
        count: Int,
        settings: ClusterSettings,
        _ body: @Sendable (TestNode, [ClusterAgent], LogCapture, NATSBus) async throws -> T
    ) async throws -> T {
        let nats = try await LocalNATSServer.start()
        let capture = LogCapture()
        do {
            let result = try await withTestNode { node in
                let bus = try await NATSBus.connect(urls: [nats.url], logger: Logger(label: "test.bus"))
                do {
                    let store = PostgresClusterStore(client: node.opsClient, entropy: node.entropy, logger: Logger(label: "test.cluster"))
                    var agents: [ClusterAgent] = []
                    for i in 1...count {
                        let agent = ClusterAgent(
                            node: Self.node(UInt64(i)),
                            name: "n\(i)",
                            version: "test",
                            bus: bus,
                            store: store,
                            kubo: FakeKuboNode(seed: UInt64(i)),
                            clock: node.clock,
                            settings: settings,
                            logger: capture.logger("agent\(i)")
                        )
                        try await agent.start()
                        agents.append(agent)
                    }
                    let out = try await body(node, agents, capture, bus)
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

    func settle(_ agents: [ClusterAgent], rounds: Int = 5) async throws {
        for _ in 0..<rounds {
            for a in agents { await a.step() }
            try await Task.sleep(for: .milliseconds(30))
        }
    }

    static func label(_ agent: ClusterAgent) -> String { "agent\(agent.name.dropFirst())" }

    /// A peer falls silent during maintenance: the leader says it stopped heartbeating, then
    /// that it is lost but repairs are paused; maintenance off is said with the lost count, the
    /// repair's `rebalanced` line carries logfmt reasons; the peer's return is said once.
    @Test func aPeerStopsIsLostUnderMaintenanceAndComesBack() async throws {
        var settings = ClusterSettings()
        settings.nodeLostAfterSeconds = 30
        try await withAgents(count: 2, settings: settings) { node, agents, capture, bus in
            try await settle(agents)
            let leader = try #require(await agents.asyncFirst { await $0.isLeader })
            let peer = try #require(agents.first { $0 !== leader })
            let org = try await node.admin.createOrg(name: "acme").id
            _ = try await node.placingService(on: peer.node).add(org: org, request: PinRequest(cid: cidA))
            _ = try await Maintenance(bus: bus).turnOn(reason: "upgrade", by: "test", ttlSeconds: 7200, now: node.clock.now())
            capture.clear()
            // The peer falls silent: only the leader steps, past liveAfter and nodeLostAfter.
            for _ in 0..<9 {
                node.clock.advance(seconds: 4)
                await leader.step()
            }
            let mine = { (prefix: String) in capture.lines(prefix).filter { $0.label == Self.label(leader) } }
            let stopped = mine("peer stopped heartbeating")
            #expect(stopped.count == 1, "\(capture.lines)")
            #expect(stopped.first?.level == .warning)
            #expect(stopped.first?.metadata["node"] == peer.node.description)
            #expect(stopped.first?.metadata["name"] == peer.name)
            #expect(stopped.first?.metadata["liveAfter"] == "15s")
            let lost = mine("peer lost")
            #expect(lost.count == 1, "\(capture.lines)")
            #expect(lost.first?.level == .warning)
            #expect(lost.first?.message.contains("repairs paused by maintenance") == true)
            #expect(lost.first?.metadata["maintenance"] == "upgrade")
            #expect(lost.first?.metadata["nodeLostAfter"] == "30s")

            try await Maintenance(bus: bus).turnOff()
            for _ in 0..<9 {
                node.clock.advance(seconds: 4)
                await leader.step()
            }
            let off = mine("maintenance off")
            #expect(off.count == 1, "\(capture.lines)")
            #expect(off.first?.level == .notice)
            #expect(off.first?.metadata["reason"] == "upgrade")
            #expect(off.first?.metadata["lostNodes"] == "1")
            #expect(mine("maintenance expired").isEmpty)
            let rebalanced = mine("rebalanced")
            #expect(rebalanced.count == 1, "\(capture.lines)")
            #expect(rebalanced.first?.metadata["reasons"] == "node-lost=1", "a logfmt value, not a dictionary dump")

            // The peer comes back: said once, with how long it was silent.
            await peer.step()
            try await Task.sleep(for: .milliseconds(300))  // the bus delivers asynchronously
            await leader.step()
            await leader.step()
            let back = mine("peer is back")
            #expect(back.count == 1, "\(capture.lines)")
            #expect(back.first?.level == .notice)
            #expect(back.first?.metadata["node"] == peer.node.description)
            #expect(back.first?.metadata["silentFor"] == "72s")
            #expect(mine("peer stopped heartbeating").count == 1 && mine("peer lost").count == 1, "each transition once")
        }
    }

    /// Every node, not only the winner, says when the leader changes (with the new fence); the
    /// leader says when the maintenance flag ends at its TTL.
    @Test func leaderChangesAndMaintenanceExpiryAreLogged() async throws {
        try await withAgents(count: 3, settings: ClusterSettings()) { node, agents, capture, bus in
            try await settle(agents)
            // A campaign interval later every follower has read the lease (a node that lost
            // the first race learns the holder at its next campaign).
            node.clock.advance(seconds: 6)
            try await settle(agents)
            let old = try #require(await agents.asyncFirst { await $0.isLeader })
            let oldFence = try #require(await old.fence)
            await old.stop()
            let others = agents.filter { $0 !== old }
            capture.clear()
            // Two campaign intervals: the loser of the race reads the new holder at the next.
            for _ in 0..<2 {
                node.clock.advance(seconds: 6)
                try await settle(others)
            }
            let winner = try #require(await others.asyncFirst { await $0.isLeader })
            let follower = try #require(others.first { $0 !== winner })
            let fence = try #require(await winner.fence)
            #expect(fence > oldFence)
            let changed = capture.lines("leader changed").filter { $0.label == Self.label(follower) }
            #expect(changed.count == 1, "\(capture.lines)")
            #expect(changed.first?.level == .notice)
            #expect(changed.first?.metadata["leader"] == winner.node.description)
            #expect(changed.first?.metadata["fence"] == "\(fence)")
            #expect(changed.first?.metadata["previous"] == old.node.description)
            #expect(capture.lines("elected leader").filter { $0.label == Self.label(winner) }.count == 1)

            _ = try await Maintenance(bus: bus).turnOn(reason: "kernel", by: "test", ttlSeconds: 60, now: node.clock.now())
            for _ in 0..<18 {
                node.clock.advance(seconds: 4)
                for a in others { await a.step() }
            }
            let mine = { (prefix: String) in capture.lines(prefix).filter { $0.label == Self.label(winner) } }
            #expect(mine("maintenance on").count >= 1, "\(capture.lines)")
            let expired = mine("maintenance expired at its TTL")
            #expect(expired.count == 1, "\(capture.lines)")
            #expect(expired.first?.level == .notice)
            #expect(expired.first?.metadata["reason"] == "kernel")
            #expect(mine("maintenance off").isEmpty)
        }
    }

    /// A load balancer probing `/v1/ready` every second must not drown the log: probes are
    /// logged at debug, API requests at info.
    @Test func probesAreLoggedAtDebugAndAPIRequestsAtInfo() async throws {
        try await withTestNode { node in
            let capture = LogCapture()
            try await Application(router: node.router(logRequests: true), logger: capture.logger("test.http")).test(.router) { client in
                _ = try await client.execute(uri: "/v1/ready", method: .get)
                _ = try await client.execute(uri: "/v1/health", method: .get)
                _ = try await client.execute(uri: "/pins", method: .get)
            }
            let levels = Dictionary(
                capture.lines.filter { $0.message == "request" }.map { ($0.metadata["path"] ?? "?", $0.level) },
                uniquingKeysWith: { a, _ in a }
            )
            #expect(levels["/v1/ready"] == .debug, "\(capture.lines)")
            #expect(levels["/v1/health"] == .debug)
            #expect(levels["/pins"] == .info)
        }
    }

    /// A pin accepted while no node can take it: one warning per episode, the count and start
    /// in `/v1/ready`'s body (the status keeps its meaning), a counter in /metrics; the episode
    /// ends when a node is eligible again.
    @Test func pinsAcceptedWithNoNodeAreLoggedAndShownInReady() async throws {
        struct NoBus: Error {}
        try await withTestNode { node in
            let capture = LogCapture()
            let id = Self.node(5)
            let built = node.node(
                id: id,
                kubo: FakeKuboNode(seed: 5),
                configure: { $0.clusterEnabled = true },
                bus: { throw NoBus() },
                logger: { capture.logger($0) }
            )
            #expect(built.isClustered)
            let org = try await node.admin.createOrg(name: "acme").id
            let since = node.clock.now()
            _ = try await built.service.add(org: org, request: PinRequest(cid: cidA))
            node.clock.advance(seconds: 3)
            _ = try await built.service.add(org: org, request: PinRequest(cid: cidB))
            let warnings = capture.lines("accepted a pin no node can take")
            #expect(warnings.count == 1, "once per episode: \(capture.lines)")
            #expect(warnings.first?.level == .warning)
            try await Application(router: built.router).test(.router) { client in
                let ready = try await client.execute(uri: "/v1/ready", method: .get)
                #expect(ready.status == .serviceUnavailable, "not joined: still 503")
                let text = String(buffer: ready.body)
                #expect(text.hasPrefix(#"{"status":"not_ready""#), "status first: \(text)")
                let body = try #require(try JSONSerialization.jsonObject(with: Data(buffer: ready.body)) as? [String: Any])
                let unplaced = try #require(body["unplaced"] as? [String: Any], "\(text)")
                #expect(unplaced["count"] as? Int == 2)
                #expect(unplaced["since"] as? String == since.rfc3339)
                // A node is eligible again (the agent's next step): the leader places them.
                #expect(built.policy.update(eligible: [id])?.count == 2)
                let after = String(buffer: try await client.execute(uri: "/v1/ready", method: .get).body)
                #expect(!after.contains("unplaced"), "\(after)")
            }
            let metrics = String(decoding: built.metrics.render(), as: UTF8.self)
            #expect(metrics.contains("anchorage_pins_unplaced_total 2"), "\(metrics)")
        }
    }

    /// A node whose pins moved away (or were deleted) says how many CIDs it unpinned.
    @Test func unpinningReleasedCIDsIsCounted() async throws {
        try await withTestNode { node in
            let capture = LogCapture()
            let id = Self.node(6)
            let kubo = FakeKuboNode(seed: 6)
            let worker = try #require(node.node(id: id, kubo: kubo, logger: { capture.logger($0) }).worker)
            let service = node.placingService(on: id)
            let org = try await node.admin.createOrg(name: "acme").id
            let a = try await service.add(org: org, request: PinRequest(cid: cidA))
            let b = try await service.add(org: org, request: PinRequest(cid: cidB))
            try await worker.tick()
            #expect(capture.lines("unpinned CIDs").isEmpty)
            try await service.delete(org: org, requestID: a.id.description)
            try await service.delete(org: org, requestID: b.id.description)
            try await worker.tick()
            let unpinned = capture.lines("unpinned CIDs this node no longer holds")
            #expect(unpinned.count == 1, "\(capture.lines)")
            #expect(unpinned.first?.level == .notice)
            #expect(unpinned.first?.metadata["count"] == "2")
        }
    }

    /// The embedded nats-server takes a moment to start: the first failed joins are not
    /// warnings; failures that go on past the ready timeout are.
    @Test func joinFailuresAreQuietWhileNATSStarts() async throws {
        struct NoBus: Error {}
        try await withTestNode { node in
            let capture = LogCapture()
            let built = node.node(
                id: Self.node(7),
                kubo: FakeKuboNode(seed: 7),
                configure: { $0.clusterEnabled = true },
                bus: { throw NoBus() }
            )
            let logger = capture.logger("anchorage.cluster")
            let task = Task { await ClusterService.drive(node: built, logger: logger) }
            try await Task.sleep(for: .milliseconds(700))
            let early = capture.lines("could not join the cluster yet")
            #expect(early.count >= 2, "\(capture.lines)")
            #expect(early.first?.level == .info)
            #expect(early.allSatisfy({ $0.level < .warning }), "\(early)")
            node.clock.advance(seconds: JoinFailures.quietSeconds)
            try await Task.sleep(for: .milliseconds(2_000))
            task.cancel()
            _ = await task.value
            #expect(capture.lines("could not join the cluster yet").last?.level == .warning, "\(capture.lines)")
        }
    }
}
