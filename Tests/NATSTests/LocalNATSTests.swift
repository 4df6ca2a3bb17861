import Foundation
import LocalNATS
import Logging
import NATS
import Testing

@Suite struct LocalNATSTests {
    @Test func embeddedServerRunsRestartsAfterACrashAndStopsOnCancel() async throws {
        let binary = try NATSServerBinary.locate()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("embedded-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let port = try await LocalNATSServer.freePort()
        var config = EmbeddedNATS.Configuration(binary: binary, port: port, storeDir: dir)
        config.restartBaseDelay = .milliseconds(50)
        let embedded = EmbeddedNATS(config, logger: Logger(label: "test"))
        let runner = Task { try await embedded.run() }
        try await embedded.waitUntilReady()
        let client = try await NATSClient.connect(NATSOptions(url: embedded.clientURL))
        try await client.flush()
        #expect(embedded.starts == 1)

        // A crash: the supervisor starts it again and the client reconnects.
        let pid = try #require(embedded.pid)
        kill(pid, SIGKILL)
        #expect(await eventually { embedded.starts == 2 })
        #expect(await eventually { (try? await client.flush()) != nil })

        runner.cancel()
        try await runner.value
        #expect(embedded.pid == nil)
        #expect(await eventually { !client.isConnected })
        await client.close()
    }

    @Test func startFailsClearlyWhenTheServerCannotStart() async throws {
        await #expect(throws: LocalNATSError.self) {
            try await LocalNATSServer.start(extraArguments: ["--no-such-flag"])
        }
    }
}
