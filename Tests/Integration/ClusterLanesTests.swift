import AnchorageTesting
import Cluster
import FakeKubo
import LocalNATS
import Logging
import NATSBus
import Seams
import Synchronization
import Testing

@testable import AnchorageNode

/// The production cluster shell (`ClusterService`) against a real nats-server and PostgreSQL:
/// a duty that waits on Kubo does not hold up the node's heartbeats or its lease renewals.
@Suite(.serialized) struct ClusterLanesTests {
    static let nodeID = TypeID(prefix: IDPrefix.node, high: 0x0193_0000_0000_7000 | 41, low: 0x8000_0000_0000_0000 | 41)

    /// Before the lanes, the agent ran presence, drain, leader duties and the reconciler in one
    /// sequence: a `pin/ls` that took longer than `cluster.liveAfter` made peers call the node
    /// lost, and one longer than the lease TTL deposed the leader.
    @Test func heartbeatsAndLeaseRenewalsGoOnWhileTheReconcilerWaitsForKubo() async throws {
        let nats = try await LocalNATSServer.start()
        do {
            try await withTestNode { node in
                let kubo = WedgedListingKubo(inner: FakeKuboNode(seed: 41))
                let url = nats.url
                let built = node.node(
                    id: Self.nodeID,
                    kubo: kubo,
                    configure: {
                        $0.clusterEnabled = true
                        $0.clusterTickMilliseconds = 20
                        $0.cluster.heartbeatSeconds = 1
                        $0.cluster.liveAfterSeconds = 3
                        $0.cluster.nodeLostAfterSeconds = 3
                        $0.cluster.leaseRenewSeconds = 1
                        $0.cluster.leaseTTLSeconds = 30
                        $0.cluster.reconcileSeconds = 1
                    },
                    bus: { try await NATSBus.connect(urls: [url], logger: Logger(label: "test.bus")) }
                )
                let listener = try await NATSBus.connect(urls: [url], logger: Logger(label: "test.listener"))
                let heartbeats = try await listener.subscribe(Subjects.heartbeats, capacity: 10_000)
                let shell = Task { await ClusterService.drive(node: built, logger: Logger(label: "test.cluster")) }
                defer { shell.cancel() }

                let agent = try await Self.eventually("the node joins and leads") { () async -> ClusterAgent? in
                    guard let agent = built.runtime.value?.agent, await agent.isLeader else { return nil }
                    return agent
                }
                // The reconciler's round is due: its listing starts and never answers.
                node.clock.advance(seconds: 1)
                _ = try await Self.eventually("the reconciler lists Kubo's pins") { kubo.listings.withLock { $0 } > 0 ? true : nil }
                _ = await heartbeats.drain()
                let renewalsBefore = await agent.status.leaseRenewals

                for _ in 0..<5 {
                    node.clock.advance(seconds: 1)
                    try await Task.sleep(for: .milliseconds(250))
                }
                let sent = await heartbeats.drain().compactMap { Heartbeat.decode($0.payload) }.filter { $0.node == Self.nodeID.description }
                let status = await agent.status
                #expect(sent.count >= 4, "heartbeats in five seconds of a wedged pin/ls: \(sent.count)")
                #expect(status.leaseRenewals >= renewalsBefore + 4, "renewals: \(renewalsBefore) -> \(status.leaseRenewals)")
                #expect(status.isLeader)
                #expect(kubo.listings.withLock { $0 } == 1, "the listing is still waiting: no second round started")

                shell.cancel()
                _ = await shell.value
                await heartbeats.close()
                await listener.close()
            }
        } catch {
            await nats.stop()
            throw error
        }
        await nats.stop()
    }

    static func eventually<T: Sendable>(
        _ what: String,
        within seconds: Int = 15,
        _ probe: @Sendable () async -> T?
    ) async throws -> T {
        let deadline = ContinuousClock.now + .seconds(seconds)
        while ContinuousClock.now < deadline {
            if let value = await probe() { return value }
            try await Task.sleep(for: .milliseconds(20))
        }
        Issue.record("timed out waiting until \(what)")
        throw CancellationError()
    }
}

/// A Kubo whose full listing never answers (a huge pin set, a wedged daemon): `pin/ls` waits
/// until its task is cancelled. Everything else is the fake's.
final class WedgedListingKubo: KuboAPI {
    let inner: FakeKuboNode
    let listings = Mutex(0)

    init(inner: FakeKuboNode) { self.inner = inner }

    func recursivePins() async throws -> [KuboPin] {
        listings.withLock { $0 += 1 }
        try await Task.sleep(for: .seconds(3600))
        return []
    }

    func identity() async throws -> KuboIdentity { try await inner.identity() }
    func version() async throws -> String { try await inner.version() }
    func pin(cid: String, name: String?, stallTimeout: Duration, deadline: Duration, progress: @Sendable (Int) async -> Void) async throws {
        try await inner.pin(cid: cid, name: name, stallTimeout: stallTimeout, deadline: deadline, progress: progress)
    }
    func unpin(cid: String) async throws { try await inner.unpin(cid: cid) }
    func recursivePin(cid: String) async throws -> KuboPin? { try await inner.recursivePin(cid: cid) }
    func connect(to addresses: [String], limit: Int, timeout: Duration) async -> Int {
        await inner.connect(to: addresses, limit: limit, timeout: timeout)
    }
    func repoStat() async throws -> KuboRepoStat { try await inner.repoStat() }
}
