import LocalNATS
import Logging
import NATS
import NATSBus
import Seams
import Testing

/// NATSBus specifics. The `ClusterBus` semantics (queue, KV, pub/sub) are checked by the
/// shared contract suite in `Tests/BusContract`, against this bus and the simulator's.
@Suite struct NATSBusTests {
    func withBus<T>(ackWait: Duration = .seconds(30), _ body: (NATSBus, LocalNATSServer) async throws -> T) async throws -> T {
        try await withServer { server in
            let bus = try await NATSBus.connect(urls: [server.url], ackWait: ackWait, logger: Logger(label: "test"))
            do {
                let r = try await body(bus, server)
                await bus.close()
                return r
            } catch {
                await bus.close()
                throw error
            }
        }
    }

    @Test func connectIsIdempotentOnTheSameServer() async throws {
        try await withBus { _, server in
            let again = try await NATSBus.connect(urls: [server.url])
            await again.close()
        }
    }

    @Test func fetchOnAClosedQueueSaysHowToOpenIt() async throws {
        try await withBus { bus, _ in
            do {
                _ = try await bus.fetch("pin.jobs.nod_c", max: 10, wait: .zero)
                Issue.record("fetch without a consumer succeeded")
            } catch let e as BusError {
                #expect("\(e)".contains("openQueue"))
            }
        }
    }

    @Test func requestsWhileTheServerIsDownAreUnavailable() async throws {
        try await withBus { bus, server in
            try await bus.openQueue("pin.jobs.nod_d")
            await server.kill()
            #expect(await eventually { !bus.client.isConnected })
            await #expect(throws: BusError.self) { try await bus.kvGet("x") }
            do {
                _ = try await bus.enqueue("pin.jobs.nod_d", msgID: "d", [])
                Issue.record("enqueue succeeded while the server was down")
            } catch let e as BusError {
                if case .unavailable = e {} else { Issue.record("expected unavailable, got \(e)") }
            }
            try await server.restart()
            #expect(await eventually { (try? await bus.kvPut("x", [1], ttl: nil)) != nil })
        }
    }
}
