import Foundation
import LocalProcess
import Logging
import Synchronization

/// Supervises a nats-server child for `anchorage serve` when no external NATS is configured:
/// `run()` starts it, waits until it accepts connections, restarts it with capped backoff when
/// it exits unexpectedly, and on cancellation stops it (SIGTERM, then SIGKILL) and returns.
public final class EmbeddedNATS: Sendable {
    public struct Configuration: Sendable {
        public var binary: NATSServerBinary
        public var host: String
        public var port: Int
        public var storeDir: String
        public var serverName: String?
        public var cluster: NATSClusterOptions?
        /// Demand this credential from clients and routes (`nats.token`, or `nats.user` and
        /// `nats.password`); nil: no authentication (loopback-only use).
        public var auth: NATSServerAuth?
        public var extraArguments: [String] = []
        /// How long a start may take before it counts as failed.
        public var readyTimeout: Duration = .seconds(30)
        /// Restart delay doubles from this up to `maxRestartDelay`.
        public var restartBaseDelay: Duration = .milliseconds(250)
        public var maxRestartDelay: Duration = .seconds(30)
        /// SIGTERM → SIGKILL grace on shutdown (JetStream flushes its store on SIGTERM).
        public var stopGracePeriod: Duration = .seconds(10)
        /// A server that exits sooner than this after starting counts as failing to start
        /// (its restarts back off) even if its port answered meanwhile.
        public var minimumUptime: Duration = .seconds(10)

        public init(
            binary: NATSServerBinary,
            host: String = "127.0.0.1",
            port: Int = 4222,
            storeDir: String,
            serverName: String? = nil,
            cluster: NATSClusterOptions? = nil
        ) {
            self.binary = binary
            self.host = host
            self.port = port
            self.storeDir = storeDir
            self.serverName = serverName
            self.cluster = cluster
        }
    }

    private struct State {
        var ready = false
        var finished = false
        var waiters: [CheckedContinuation<Void, any Error>] = []
        var starts = 0
        var pid: pid_t?
        var leftoversStopped = 0
    }

    public let configuration: Configuration
    private let logger: Logger
    private let state = Mutex(State())

    public init(_ configuration: Configuration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    /// The store as an absolute path: the server's command line names it, and leftovers are
    /// found by it whatever directory their run started in.
    var storeDir: String { URL(fileURLWithPath: configuration.storeDir).standardizedFileURL.path }

    /// What clients connect to.
    public var clientURL: String {
        let h = configuration.host == "0.0.0.0" ? "127.0.0.1" : configuration.host
        return "nats://\(h):\(configuration.port)"
    }

    /// How many times the server was started (1 + restarts).
    public var starts: Int { state.withLock { $0.starts } }
    /// The running server's process id (nil between runs and after `run()` returned).
    public var pid: pid_t? { state.withLock { $0.pid } }
    /// Servers on this store left running by an earlier run, stopped before starting.
    public var leftoversStopped: Int { state.withLock { $0.leftoversStopped } }

    /// Returns once the server first accepts connections; throws if `run()` ends before.
    public func waitUntilReady() async throws {
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, any Error>) in
            let result: Result<Void, any Error>? = state.withLock { s in
                if s.ready { return .success(()) }
                if s.finished { return .failure(LocalNATSError.failed("embedded nats-server stopped before it was ready")) }
                s.waiters.append(c)
                return nil
            }
            if let result { c.resume(with: result) }
        }
    }

    /// Runs until cancelled. Throws only if the server cannot be started at all (binary gone);
    /// exits of a running server are logged and followed by a restart.
    public func run() async throws {
        defer { finish() }
        try FileManager.default.createDirectory(atPath: configuration.storeDir, withIntermediateDirectories: true)
        var configFile: String?
        if let auth = configuration.auth {
            let path = (configuration.storeDir as NSString).appendingPathComponent("anchorage-auth.conf")
            try Self.writePrivately(ServerArguments.authConfig(auth, cluster: configuration.cluster), to: path)
            configFile = path
        }
        let args = ServerArguments.make(
            host: configuration.host,
            port: configuration.port,
            storeDir: storeDir,
            serverName: configuration.serverName,
            cluster: configuration.cluster,
            configFile: configFile,
            extra: configuration.extraArguments
        )
        let logPath = (configuration.storeDir as NSString).appendingPathComponent("nats-server.log")
        var failures = 0
        var warnedNoSetpriv = false
        while !Task.isCancelled {
            await stopLeftovers()
            // Something else holds the port: a second server would fail to bind and, worse,
            // its readiness probe would reach the other one. Say so and wait for the port.
            if FreePort.accepts(host: configuration.host, port: configuration.port) {
                failures += 1
                logger.error(
                    "another process already listens on the nats-server port; not starting a second server (stop it, or set nats.port)",
                    metadata: ["host": "\(configuration.host)", "port": "\(configuration.port)", "retryIn": "\(restartDelay(failures))"]
                )
                do { try await Task.sleep(for: restartDelay(failures)) } catch { return }
                continue
            }
            let started = ContinuousClock.now
            let process = try ChildProcess(configuration.binary.path, args, outputPath: logPath, diesWithParent: true)
            if !process.diesWithParent, !warnedNoSetpriv {
                warnedNoSetpriv = true
                logger.warning("setpriv (util-linux) not found: the nats-server may outlive this node if it is killed")
            }
            ChildRegistry.add(process.pid)
            state.withLock {
                $0.starts += 1
                $0.pid = process.pid
            }
            logger.info("nats-server started", metadata: ["pid": "\(process.pid)", "url": "\(clientURL)"])
            let outcome = await supervise(process)
            ChildRegistry.remove(process.pid)
            state.withLock { $0.pid = nil }
            switch outcome {
            case .cancelled:
                logger.info("nats-server stopped")
                return
            case .exited(let code, let wasReady):
                failures = wasReady && ContinuousClock.now - started >= configuration.minimumUptime ? 1 : failures + 1
                logger.error(
                    "nats-server exited unexpectedly; restarting",
                    metadata: [
                        "code": "\(code)", "log": "\(String(process.output.suffix(800)))",
                    ]
                )
            case .notReady:
                failures += 1
                logger.error("nats-server did not become ready; restarting", metadata: ["timeout": "\(configuration.readyTimeout)"])
            }
            do { try await Task.sleep(for: restartDelay(failures)) } catch { return }
        }
    }

    /// Doubles from `restartBaseDelay` with each failure in a row, up to `maxRestartDelay`.
    func restartDelay(_ failures: Int) -> Duration {
        min(configuration.restartBaseDelay * Double(1 << min(max(failures - 1, 0), 16)), configuration.maxRestartDelay)
    }

    /// Stops nats-servers running on this node's store: ones an earlier run of this node left
    /// behind when it was killed before it could stop them (before `setpriv --pdeathsig`, or
    /// where setpriv is missing). Two servers on one store directory can corrupt it.
    func stopLeftovers() async {
        for pid in Self.serverProcesses(storeDir: storeDir) {
            logger.warning(
                "stopping a nats-server an earlier run of this node left running on its store",
                metadata: ["pid": "\(pid)", "store": "\(storeDir)"]
            )
            kill(pid, SIGTERM)
            let deadline = ContinuousClock.now + configuration.stopGracePeriod
            while Self.isRunning(pid), ContinuousClock.now < deadline { await ChildProcess.nap(.milliseconds(20)) }
            if Self.isRunning(pid) { kill(pid, SIGKILL) }
            while Self.isRunning(pid) { await ChildProcess.nap(.milliseconds(5)) }
            state.withLock { $0.leftoversStopped += 1 }
        }
    }

    /// Alive and not a zombie (an exited child its parent has not reaped yet holds its pid).
    static func isRunning(_ pid: pid_t) -> Bool {
        guard kill(pid, 0) == 0 else { return false }
        guard let stat = FileManager.default.contents(atPath: "/proc/\(pid)/stat") else { return false }
        // "pid (comm) S …": the state follows the last ')'.
        guard let close = stat.lastIndex(of: UInt8(ascii: ")")), close + 2 < stat.endIndex else { return true }
        return stat[close + 2] != UInt8(ascii: "Z")
    }

    /// Processes whose command line runs a nats-server with `-sd storeDir` (from /proc).
    public static func serverProcesses(storeDir: String) -> [pid_t] {
        let me = getpid()
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { name -> pid_t? in
            guard let pid = pid_t(name), pid != me, isRunning(pid),
                let data = FileManager.default.contents(atPath: "/proc/\(name)/cmdline")
            else { return nil }
            let args = data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            guard let first = args.first, first.hasSuffix("nats-server"),
                let i = args.firstIndex(of: "-sd"), i + 1 < args.count, args[i + 1] == storeDir
            else { return nil }
            return pid
        }
    }

    private enum Outcome {
        case cancelled
        case exited(Int32, wasReady: Bool)
        case notReady
    }

    /// Waits for readiness, then for exit or cancellation (polling: the child is reaped with
    /// waitpid, and an async poll keeps no thread blocked).
    private func supervise(_ process: ChildProcess) async -> Outcome {
        let deadline = ContinuousClock.now + configuration.readyTimeout
        var ready = false
        while true {
            if Task.isCancelled {
                await process.terminate(grace: configuration.stopGracePeriod)
                return .cancelled
            }
            if let code = process.poll() { return .exited(code, wasReady: ready) }
            if !ready {
                if FreePort.accepts(host: configuration.host, port: configuration.port) {
                    ready = true
                    markReady()
                    logger.info("nats-server ready", metadata: ["url": "\(clientURL)"])
                } else if ContinuousClock.now > deadline {
                    await process.terminate(grace: configuration.stopGracePeriod)
                    return .notReady
                }
            }
            try? await Task.sleep(for: .milliseconds(ready ? 200 : 25))
        }
    }

    /// Creates (or replaces) `path` with mode 0600 before a byte is written: the credential is
    /// never readable by others, not even for a moment.
    static func writePrivately(_ text: String, to path: String) throws {
        unlink(path)
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw LocalNATSError.failed("cannot create \(path): errno \(errno)") }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        guard bytes.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) == bytes.count else {
            throw LocalNATSError.failed("cannot write \(path): errno \(errno)")
        }
    }

    private func markReady() {
        let waiters = state.withLock { s in
            s.ready = true
            defer { s.waiters = [] }
            return s.waiters
        }
        for w in waiters { w.resume() }
    }

    private func finish() {
        let waiters = state.withLock { s in
            s.finished = true
            defer { s.waiters = [] }
            return s.waiters
        }
        for w in waiters { w.resume(throwing: LocalNATSError.failed("embedded nats-server stopped before it was ready")) }
    }
}
