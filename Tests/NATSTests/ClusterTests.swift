import LocalNATS
import Logging
import NATS
import NATSBus
import Seams
import Testing

@Suite struct ClusterTests {
    /// Three routed servers (cluster mode of LocalNATS), a bus with 3 replicas on top.
    @Test func replicatedBusOnAThreeNodeCluster() async throws {
        var clusterPorts: [Int] = []
        for _ in 0..<3 { clusterPorts.append(try await LocalNATSServer.freePort()) }
        var servers: [LocalNATSServer] = []
        do {
            for i in 0..<3 {
                let routes = clusterPorts.enumerated().filter { $0.offset != i }.map { "nats://127.0.0.1:\($0.element)" }
                servers.append(
                    try await LocalNATSServer.start(
                        serverName: "n\(i)",
                        cluster: NATSClusterOptions(name: "anchorage-test", port: clusterPorts[i], routes: routes)
                    )
                )
            }
            let bus = try await NATSBus.connect(urls: servers.map(\.url), replicas: 3, logger: Logger(label: "test"))
            let rev = try await bus.kvCreate("leader", "n0".bytes, ttl: nil)
            #expect(try await bus.kvGet("leader")?.revision == rev)
            try await bus.openQueue("pin.jobs.nod_z")
            _ = try await bus.enqueue("pin.jobs.nod_z", msgID: "z", "z".bytes)
            let jobs = try await bus.fetch("pin.jobs.nod_z", max: 1, wait: .seconds(5))
            #expect(jobs.map(\.payload) == ["z".bytes])
            try await bus.ack(jobs[0])
            await bus.close()
        } catch {
            for s in servers { await s.stop() }
            throw error
        }
        for s in servers { await s.stop() }
    }
}
