import LocalNATS
import Logging
import NATS

/// Runs `body` against a throwaway nats-server, stopped afterwards whatever happens.
func withServer<T>(_ body: (LocalNATSServer) async throws -> T) async throws -> T {
    let server = try await LocalNATSServer.start()
    do {
        let result = try await body(server)
        await server.stop()
        return result
    } catch {
        await server.stop()
        throw error
    }
}

/// A connected client, closed afterwards.
func withClient<T>(
    _ server: LocalNATSServer,
    configure: (inout NATSOptions) -> Void = { _ in },
    _ body: (NATSClient) async throws -> T
) async throws -> T {
    var options = NATSOptions(url: server.url)
    configure(&options)
    let client = try await NATSClient.connect(options, logger: Logger(label: "test"))
    do {
        let result = try await body(client)
        await client.close()
        return result
    } catch {
        await client.close()
        throw error
    }
}

/// Polls `condition` until it holds or `timeout` passes (generous: these run on a busy machine).
func eventually(
    timeout: Duration = .seconds(20),
    every: Duration = .milliseconds(50),
    _ condition: () async throws -> Bool
) async rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: every)
    }
    return try await condition()
}

extension String {
    var bytes: [UInt8] { Array(utf8) }
}

/// JetStream durations are nanoseconds on the wire.
func ns(_ d: Duration) -> Int64 { d.components.seconds * 1_000_000_000 + d.components.attoseconds / 1_000_000_000 }
