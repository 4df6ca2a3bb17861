import AnchorageTesting
import AsyncHTTPClient
import Foundation
import LocalNATS
import LocalPostgres
import LocalProcess
import NIOCore
import Testing

/// The real `anchorage` executable as an operator runs it: configuration from the environment
/// and flags, admin exit codes, `serve` answering over TCP, JSON logs, graceful SIGTERM.
@Suite struct ProcessTests {
    static var binary: String {
        URL(fileURLWithPath: ProcessInfo.processInfo.arguments[0]).deletingLastPathComponent().appendingPathComponent("anchorage").path
    }

    func environment(_ db: LocalPostgres.Database) -> [String: String] {
        var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("ANCHORAGE_") }
        env["ANCHORAGE_DB_URL"] = db.api.urlString
        env["ANCHORAGE_DB_OPS_URL"] = db.ops.urlString
        env["ANCHORAGE_DB_OWNER_URL"] = db.owner.urlString
        return env
    }

    /// `anchorage conformance` is the `anchorage-conformance` executable (the server does not
    /// link the kit): arguments, output and exit status pass through.
    @Test func conformanceRunsItsOwnExecutable() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.binary), "build the anchorage executable first (swift build)")
        let (helpCode, help) = try ChildProcess.run(Self.binary, ["conformance", "--help"])
        #expect(helpCode == 0, "\(help)")
        #expect(help.contains("anchorage-conformance") && help.contains("--target"), "\(help)")
        let (badCode, bad) = try ChildProcess.run(Self.binary, ["conformance", "--target", "ftp://example.invalid", "--token", "t"])
        #expect(badCode == 64, "\(bad)")
        #expect(bad.contains("--target"), "\(bad)")
    }

    @Test func adminCommandsAndServeLifecycle() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.binary), "build the anchorage executable first (swift build)")
        let db = try await SharedPostgres.shared.freshDatabase()
        let env = environment(db)

        let (statusCode, status) = try ChildProcess.run(Self.binary, ["migrate", "status", "--json"], environment: env)
        #expect(statusCode == 0, "\(status)")
        #expect(status.contains(#""state":"applied""#))

        let (mintCode, mint) = try ChildProcess.run(
            Self.binary,
            ["admin", "mint-token", "--org", "cli", "--create-org", "--ttl", "1h"],
            environment: env
        )
        #expect(mintCode == 0, "\(mint)")
        let token = try #require(mint.split(separator: "\n").last.map(String.init))
        #expect(token.split(separator: ".").count == 3)

        let (missingCode, missing) = try ChildProcess.run(Self.binary, ["admin", "mint-token", "--org", "nobody"], environment: env)
        #expect(missingCode != 0)
        #expect(missing.contains("no org named"))
        let (ttlCode, ttl) = try ChildProcess.run(Self.binary, ["admin", "mint-token", "--org", "cli", "--ttl", "5x"], environment: env)
        #expect(ttlCode != 0)
        #expect(ttl.contains("--ttl"))
        let (revokeCode, _) = try ChildProcess.run(Self.binary, ["admin", "revoke-token", "tok_nope"], environment: env)
        #expect(revokeCode != 0)
        // Cluster verbs: a malformed node ID, an unknown node and a malformed duration are refused.
        let (badNodeCode, badNode) = try ChildProcess.run(Self.binary, ["admin", "drain", "node-7"], environment: env)
        #expect(badNodeCode != 0 && badNode.contains("not a node ID"), "\(badNode)")
        let (unknownCode, unknown) = try ChildProcess.run(Self.binary, ["admin", "uncordon", "nod_01jc000000e00r000000000099"], environment: env)
        #expect(unknownCode != 0 && unknown.contains("no node"), "\(unknown)")
        let (durCode, dur) = try ChildProcess.run(Self.binary, ["admin", "maintenance", "on", "--reason", "x", "--ttl", "soon"], environment: env)
        #expect(durCode != 0 && dur.contains("--ttl"), "\(dur)")
        var clusterEnv = env
        clusterEnv["ANCHORAGE_CLUSTER_DRAIN_GRACE_PERIOD"] = "2 minutes"
        let (keyCode, key) = try ChildProcess.run(Self.binary, ["admin", "drain", "nod_01jc000000e00r000000000099"], environment: clusterEnv)
        #expect(keyCode != 0 && key.contains("cluster.drainGracePeriod"), "\(key)")
        var badEnv = env
        badEnv["ANCHORAGE_LIMITS_MAX_LIST_LIMIT"] = "5000"
        let (badCode, bad) = try ChildProcess.run(Self.binary, ["serve", "--port", "1"], environment: badEnv)
        #expect(badCode != 0)
        #expect(bad.contains("limits.maxListLimit"))

        // serve: flags beat the environment (port), logs are JSON lines with the org. No nats.url:
        // serve runs its own nats-server (embedded mode) with its store under the data dir.
        let port = try FreePort.loopback()
        let dataDir = FileManager.default.temporaryDirectory.appendingPathComponent("anchorage-serve-\(UInt32.random(in: 0 ... .max))").path
        defer { try? FileManager.default.removeItem(atPath: dataDir) }
        var serveEnv = env
        serveEnv["ANCHORAGE_HTTP_PORT"] = "1"  // overridden by --port
        serveEnv["ANCHORAGE_NODE_DATA_DIR"] = dataDir
        serveEnv["ANCHORAGE_NATS_PORT"] = "\(try FreePort.loopback())"
        let server = try ChildProcess(Self.binary, ["serve", "--port", "\(port)", "--log-format", "json"], environment: serveEnv)
        defer {
            if server.poll() == nil {
                server.signal(SIGKILL)
                server.wait()
            }
        }
        let http = HTTPClient(eventLoopGroupProvider: .singleton)
        defer { _ = http.shutdown() }
        var ready = false
        for _ in 0..<100 {
            if let r = try? await http.execute(HTTPClientRequest(url: "http://127.0.0.1:\(port)/v1/ready"), timeout: .seconds(2)),
                r.status == .ok
            {
                ready = true
                break
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(ready, "server did not become ready: \(server.output)")
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/pins")
        request.headers.add(name: "Authorization", value: "Bearer \(token)")
        let response = try await http.execute(request, timeout: .seconds(5))
        #expect(response.status == .ok)
        #expect(String(buffer: try await response.body.collect(upTo: 1 << 16)) == #"{"count":0,"results":[]}"#)

        server.signal(SIGTERM)
        var code: Int32?
        for _ in 0..<100 where code == nil {
            code = server.poll()
            if code == nil { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(code == 0, "exit after SIGTERM: \(code.map(String.init) ?? "still running")")
        let lines = server.output.split(separator: "\n")
        #expect(
            lines.contains { $0.hasPrefix("{") && $0.contains(#""msg":"request""#) && $0.contains(#""org":"org_"#) },
            "\(server.output.suffix(2000))"
        )
        #expect(lines.allSatisfy { $0.hasPrefix("{") }, "every log line is JSON: \(lines.filter { !$0.hasPrefix("{") }.prefix(5))")
        #expect(FileManager.default.fileExists(atPath: dataDir + "/nats/jetstream"), "the embedded nats-server keeps its store under the data dir")
        #expect(server.output.contains("joined the cluster"))
    }

    @Test func configurationLayersFileThenEnvironmentThenFlags() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.binary), "build the anchorage executable first (swift build)")
        let db = try await SharedPostgres.shared.freshDatabase()
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("anchorage-\(UInt32.random(in: 0 ... .max)).yaml")
        try "log:\n  format: xml\nlimits:\n  maxListLimit: 500\n".write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        var env = environment(db)
        // The file alone: its invalid value is reported with the key's name.
        var (code, out) = try ChildProcess.run(Self.binary, ["migrate", "status", "--config", file.path], environment: env)
        #expect(code != 0)
        #expect(out.contains("log.format"), "\(out)")
        // The environment beats the file.
        env["ANCHORAGE_LOG_FORMAT"] = "json"
        (code, out) = try ChildProcess.run(Self.binary, ["migrate", "status", "--config", file.path], environment: env)
        #expect(code == 0, "\(out)")
        // A flag beats the environment.
        (code, out) = try ChildProcess.run(Self.binary, ["migrate", "status", "--config", file.path, "--log-format", "bogus"], environment: env)
        #expect(code != 0)
        #expect(out.contains("log.format"), "\(out)")
        // A missing file is an error, not silently ignored.
        (code, out) = try ChildProcess.run(Self.binary, ["migrate", "status", "--config", "/nonexistent.yaml"], environment: env)
        #expect(code != 0)
        #expect(out.contains("does not exist"))
    }

    /// `kill -9` of a node in embedded mode used to leave its nats-server running (parent 1),
    /// holding the port and the JetStream store; the restarted node's server then crash-looped
    /// on `address already in use` while the node reported ready through the orphan. Now the
    /// server dies with its node, and a restart starts one server that stays up.
    @Test func aKilledNodeTakesItsNATSServerWithIt() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.binary), "build the anchorage executable first (swift build)")
        let db = try await SharedPostgres.shared.freshDatabase()
        let dataDir = FileManager.default.temporaryDirectory.appendingPathComponent("anchorage-kill-\(UInt32.random(in: 0 ... .max))").path
        defer { try? FileManager.default.removeItem(atPath: dataDir) }
        let store = URL(fileURLWithPath: dataDir).appendingPathComponent("nats").standardizedFileURL.path
        var env = environment(db)
        env["ANCHORAGE_NODE_DATA_DIR"] = dataDir
        env["ANCHORAGE_NATS_PORT"] = "\(try FreePort.loopback())"
        let port = try FreePort.loopback()
        let http = HTTPClient(eventLoopGroupProvider: .singleton)
        defer { _ = http.shutdown() }
        func ready() async -> Bool {
            for _ in 0..<150 {
                if let r = try? await http.execute(HTTPClientRequest(url: "http://127.0.0.1:\(port)/v1/ready"), timeout: .seconds(2)), r.status == .ok
                {
                    return true
                }
                try? await Task.sleep(for: .milliseconds(100))
            }
            return false
        }

        let first = try ChildProcess(Self.binary, ["serve", "--port", "\(port)"], environment: env)
        #expect(await ready(), "\(first.output.suffix(2000))")
        let servers = EmbeddedNATS.serverProcesses(storeDir: store)
        #expect(servers.count == 1, "one nats-server on the node's store: \(servers)")
        first.signal(SIGKILL)
        first.wait()
        var gone = false
        for _ in 0..<100 where !gone {
            gone = EmbeddedNATS.serverProcesses(storeDir: store).isEmpty
            if !gone { try await Task.sleep(for: .milliseconds(50)) }
        }
        #expect(gone, "the nats-server outlived its node: \(EmbeddedNATS.serverProcesses(storeDir: store))")

        let second = try ChildProcess(Self.binary, ["serve", "--port", "\(port)"], environment: env)
        defer {
            if second.poll() == nil {
                second.signal(SIGKILL)
                second.wait()
            }
        }
        #expect(await ready(), "\(second.output.suffix(2000))")
        try await Task.sleep(for: .seconds(2))
        #expect(!second.output.contains("exited unexpectedly"), "\(second.output.suffix(2000))")
        #expect(EmbeddedNATS.serverProcesses(storeDir: store).count == 1)
        second.signal(SIGTERM)
        #expect(await second.waitForExit(timeout: .seconds(15)) == 0)
        #expect(EmbeddedNATS.serverProcesses(storeDir: store).isEmpty, "a clean stop stops the server too")
    }
}
