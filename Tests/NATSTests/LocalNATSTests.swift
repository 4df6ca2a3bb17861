import Foundation
import LocalProcess
import Logging
import NATS
import Testing

@testable import LocalNATS

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

    /// With a credential configured, the embedded server demands it on its client port (it used
    /// to accept anyone who reached the port), and the credential is on no command line.
    @Test func anEmbeddedServerWithATokenRefusesClientsWithoutIt() async throws {
        let binary = try NATSServerBinary.locate()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("embedded-auth-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let port = try await LocalNATSServer.freePort()
        let secret = "s3cret-\(UUID().uuidString)"
        var config = EmbeddedNATS.Configuration(binary: binary, port: port, storeDir: dir)
        config.auth = .token(secret)
        let embedded = EmbeddedNATS(config, logger: Logger(label: "test"))
        let runner = Task { try await embedded.run() }
        try await embedded.waitUntilReady()
        await #expect(throws: (any Error).self, "a client without the token was let in") {
            let c = try await NATSClient.connect(NATSOptions(url: embedded.clientURL))
            try await c.flush()
            await c.close()
        }
        await #expect(throws: (any Error).self, "a client with a wrong token was let in") {
            let c = try await NATSClient.connect(NATSOptions(url: embedded.clientURL, auth: .token("wrong")))
            try await c.flush()
            await c.close()
        }
        let client = try await NATSClient.connect(NATSOptions(url: embedded.clientURL, auth: .token(secret)))
        try await client.flush()
        await client.close()
        let pid = try #require(embedded.pid)
        let cmdline = String(decoding: (try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/cmdline"))) ?? Data(), as: UTF8.self)
        #expect(!cmdline.isEmpty && !cmdline.contains(secret), "the token is visible in ps")
        let mode = try FileManager.default.attributesOfItem(atPath: dir + "/anchorage-auth.conf")[.posixPermissions] as? Int
        #expect(mode == 0o600)
        runner.cancel()
        try await runner.value
    }

    /// An executable planted in a parent directory (a shared /tmp, a home directory) used to be
    /// found and run as nats-server; only the working directory and the checkout count now.
    @Test func aNATSServerInAParentDirectoryIsNotRun() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("planted-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        let bin = root.appendingPathComponent(".anchorage/venv/bin")
        try FileManager.default.createDirectory(at: bin, withIntermediateDirectories: true)
        let planted = bin.appendingPathComponent("nats-server").path
        FileManager.default.createFile(atPath: planted, contents: Data("#!/bin/sh\necho pwned\n".utf8), attributes: [.posixPermissions: 0o755])
        let child = root.appendingPathComponent("project/sub")
        try FileManager.default.createDirectory(at: child, withIntermediateDirectories: true)
        let found = try? NATSServerBinary.findPath(environment: ["PATH": ""], from: child.path)
        #expect(found != planted)
        #expect(try NATSServerBinary.findPath(environment: ["PATH": ""], from: root.path) == planted, "the working directory still counts")
    }

    /// Routes carry the route user's password (percent-encoded) in the config file only.
    @Test func theAuthConfigNamesTheRouteUserAndKeepsRoutesOffTheCommandLine() {
        let cluster = NATSClusterOptions(name: "c", port: 6222, routes: ["nats-route://10.0.0.12:6222", "nats://10.0.0.13:6222"])
        let conf = ServerArguments.authConfig(.token("t@k\"en"), cluster: cluster)
        #expect(conf.contains(#"authorization { token: "t@k\"en" }"#))
        #expect(conf.contains(#""nats-route://anchorage-route:t%40k%22en@10.0.0.12:6222""#))
        #expect(conf.contains(#""nats://anchorage-route:t%40k%22en@10.0.0.13:6222""#))
        let args = ServerArguments.make(host: "0.0.0.0", port: 4222, storeDir: "/s", serverName: nil, cluster: cluster, configFile: "/s/a.conf")
        #expect(!args.contains("--routes") && args.prefix(2) == ["-c", "/s/a.conf"])
    }

    /// A nats-server an earlier, killed run left on the node's store (it kept the port and the
    /// store; the new server crash-looped on `address already in use` while the node reported
    /// ready through the leftover): it is found by its store and stopped before starting.
    @Test func aServerLeftOnTheStoreByAnEarlierRunIsStoppedFirst() async throws {
        let binary = try NATSServerBinary.locate()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("embedded-left-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let port = try await LocalNATSServer.freePort()
        let leftover = try ChildProcess(binary.path, ["-a", "127.0.0.1", "-p", "\(port)", "-js", "-sd", dir])
        defer { leftover.signal(SIGKILL) }
        #expect(await eventually { FreePort.accepts(host: "127.0.0.1", port: port) })
        #expect(EmbeddedNATS.serverProcesses(storeDir: dir) == [leftover.pid])

        var config = EmbeddedNATS.Configuration(binary: binary, port: port, storeDir: dir)
        config.restartBaseDelay = .milliseconds(50)
        let embedded = EmbeddedNATS(config, logger: Logger(label: "test"))
        let runner = Task { try await embedded.run() }
        try await embedded.waitUntilReady()
        #expect(leftover.poll() != nil, "the leftover server was stopped")
        #expect(embedded.leftoversStopped == 1)
        let pid = try #require(embedded.pid)
        #expect(pid != leftover.pid && EmbeddedNATS.serverProcesses(storeDir: dir) == [pid])
        // It stays up: no crash loop.
        try await Task.sleep(for: .seconds(1))
        #expect(embedded.starts == 1 && embedded.pid == pid)
        runner.cancel()
        try await runner.value
    }

    /// Another process on the port (not on this store): reported and waited out, never a second
    /// server that fails to bind while the probe reaches the other one.
    @Test func aForeignServerOnThePortIsWaitedOutNotDoubled() async throws {
        let binary = try NATSServerBinary.locate()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("embedded-port-\(UUID().uuidString)").path
        let other = FileManager.default.temporaryDirectory.appendingPathComponent("embedded-other-\(UUID().uuidString)").path
        defer {
            try? FileManager.default.removeItem(atPath: dir)
            try? FileManager.default.removeItem(atPath: other)
        }
        let port = try await LocalNATSServer.freePort()
        let foreign = try ChildProcess(binary.path, ["-a", "127.0.0.1", "-p", "\(port)", "-js", "-sd", other])
        defer { foreign.signal(SIGKILL) }
        #expect(await eventually { FreePort.accepts(host: "127.0.0.1", port: port) })

        var config = EmbeddedNATS.Configuration(binary: binary, port: port, storeDir: dir)
        config.restartBaseDelay = .milliseconds(50)
        config.maxRestartDelay = .milliseconds(400)
        let embedded = EmbeddedNATS(config, logger: Logger(label: "test"))
        let runner = Task { try await embedded.run() }
        try await Task.sleep(for: .seconds(1.5))
        #expect(embedded.starts == 0, "no server was started on a taken port")
        #expect(foreign.poll() == nil, "the other process's server is left alone")
        await foreign.terminate(grace: .seconds(5))
        try await embedded.waitUntilReady()
        #expect(embedded.starts == 1)
        runner.cancel()
        try await runner.value
    }

    @Test func startFailsClearlyWhenTheServerCannotStart() async throws {
        await #expect(throws: LocalNATSError.self) {
            try await LocalNATSServer.start(extraArguments: ["--no-such-flag"])
        }
    }
}
