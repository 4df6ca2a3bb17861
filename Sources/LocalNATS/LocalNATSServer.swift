import Foundation
import LocalProcess
import Synchronization

/// A throwaway nats-server (JetStream on) on a free loopback port, for tests and benchmarks.
/// `kill()` + `restart()` simulate a crash and recovery on the same port and store.
public final class LocalNATSServer: Sendable {
    public let binary: NATSServerBinary
    public let host = "127.0.0.1"
    public let port: Int
    public let storeDir: String
    public let serverName: String?
    public let cluster: NATSClusterOptions?
    private let extraArguments: [String]
    private let ownsStoreDir: Bool
    private let readyTimeout: Duration
    private let child = Mutex<ChildProcess?>(nil)

    public var url: String { "nats://\(host):\(port)" }

    /// A loopback port that was free a moment ago (for EmbeddedNATS or cluster routes).
    public static func freePort() async throws -> Int { try FreePort.loopback() }

    private init(
        binary: NATSServerBinary,
        port: Int,
        storeDir: String,
        ownsStoreDir: Bool,
        serverName: String?,
        cluster: NATSClusterOptions?,
        extraArguments: [String],
        readyTimeout: Duration
    ) {
        self.binary = binary
        self.port = port
        self.storeDir = storeDir
        self.ownsStoreDir = ownsStoreDir
        self.serverName = serverName
        self.cluster = cluster
        self.extraArguments = extraArguments
        self.readyTimeout = readyTimeout
    }

    /// Starts a server and waits until its client port accepts connections. Without
    /// `storeDir`, a temporary one is made (and removed by `stop()`). Without `port`, a free
    /// one is picked (and another tried if the server cannot bind it).
    public static func start(
        binary: NATSServerBinary? = nil,
        port: Int? = nil,
        storeDir: String? = nil,
        serverName: String? = nil,
        cluster: NATSClusterOptions? = nil,
        extraArguments: [String] = [],
        readyTimeout: Duration = .seconds(15)
    ) async throws -> LocalNATSServer {
        let binary = try binary ?? NATSServerBinary.locate()
        let dir =
            storeDir
            ?? FileManager.default.temporaryDirectory
            .appendingPathComponent("anchorage-nats-\(getpid())-\(UInt32.random(in: 0 ... .max))").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var lastError: any Error = LocalNATSError.failed("not started")
        for _ in 0..<(port == nil ? 3 : 1) {
            let server = LocalNATSServer(
                binary: binary,
                port: try port ?? FreePort.loopback(),
                storeDir: dir,
                ownsStoreDir: storeDir == nil,
                serverName: serverName,
                cluster: cluster,
                extraArguments: extraArguments,
                readyTimeout: readyTimeout
            )
            do {
                try await server.launch()
                return server
            } catch {
                lastError = error
            }
        }
        if storeDir == nil { try? FileManager.default.removeItem(atPath: dir) }
        throw lastError
    }

    private func launch() async throws {
        let args = ServerArguments.make(
            host: host,
            port: port,
            storeDir: storeDir,
            serverName: serverName,
            cluster: cluster,
            extra: extraArguments
        )
        let logPath = (storeDir as NSString).appendingPathComponent("nats-server.log")
        let process = try ChildProcess(binary.path, args, outputPath: logPath)
        ChildRegistry.add(process.pid)
        child.withLock { $0 = process }
        let deadline = ContinuousClock.now + readyTimeout
        while ContinuousClock.now < deadline {
            if let code = process.poll() {
                ChildRegistry.remove(process.pid)
                throw LocalNATSError.failed("nats-server exited with \(code): \(process.output.suffix(1500))")
            }
            if FreePort.accepts(host: host, port: port) { return }
            await ChildProcess.nap(.milliseconds(25))
        }
        await process.terminate(grace: .seconds(2))
        ChildRegistry.remove(process.pid)
        throw LocalNATSError.failed("nats-server did not accept connections on \(port) within \(readyTimeout)")
    }

    public var isRunning: Bool { child.withLock { $0 }.map { $0.poll() == nil } ?? false }

    /// The server's log (stdout and stderr).
    public var log: String { (try? String(contentsOfFile: (storeDir as NSString).appendingPathComponent("nats-server.log"), encoding: .utf8)) ?? "" }

    /// SIGTERM (SIGKILL after 5 s); removes the store directory if this created it.
    public func stop() async {
        await terminate()
        if ownsStoreDir { try? FileManager.default.removeItem(atPath: storeDir) }
    }

    /// SIGKILL, like a crash; the store directory stays for `restart()`.
    public func kill() async {
        guard
            let process = child.withLock({ p in
                defer { p = nil }
                return p
            })
        else { return }
        process.signal(SIGKILL)
        _ = await process.waitForExit(timeout: .seconds(10))
        ChildRegistry.remove(process.pid)
    }

    /// Stops the server if running, then starts it again on the same port and store directory.
    public func restart() async throws {
        await terminate()
        try await launch()
    }

    private func terminate() async {
        guard
            let process = child.withLock({ p in
                defer { p = nil }
                return p
            })
        else { return }
        await process.terminate(grace: .seconds(5))
        ChildRegistry.remove(process.pid)
    }
}
