import Foundation

/// A child process started with `posix_spawn`, its stdout and stderr appended to a file, reaped
/// with `waitpid` for its own pid.
///
/// Not Foundation's `Process`: it hung in `waitUntilExit()` on `runuser` children here. Not a
/// pipe: a pipe never reaches end-of-file when the child leaves a daemon holding it, as
/// `pg_ctl start` does.
public final class ChildProcess: @unchecked Sendable {
    // @unchecked: `status` is written once, by `wait()`/`poll()`, under `lock`.
    public let pid: pid_t
    /// Where stdout and stderr go (appended to if the file exists).
    public let outputPath: String
    private var status: Int32?
    private let lock = NSLock()

    /// Starts `executable` (an absolute path; PATH is not searched) with `args`. Without
    /// `environment`, the child inherits this process's. Without `outputPath`, output goes to a
    /// new temporary file.
    ///
    /// With `diesWithParent`, the child gets SIGTERM when this process dies, however it dies
    /// (`kill -9` included), through `setpriv --pdeathsig` (util-linux): a supervised server
    /// must not outlive its supervisor and hold its port and store. `diesWithParent` reads
    /// false afterwards when setpriv is not installed.
    public init(
        _ executable: String,
        _ args: [String],
        environment: [String: String]? = nil,
        outputPath: String? = nil,
        diesWithParent: Bool = false
    ) throws {
        let setpriv = diesWithParent ? Self.setpriv : nil
        self.diesWithParent = setpriv != nil
        let spawned: (pid: pid_t, path: String)
        if let setpriv {
            let (exe, arguments) = (setpriv, ["--pdeathsig", "TERM", "--", executable] + args)
            // The parent-death signal is tied to the *thread* that spawned the child, and the
            // pool threads of Swift concurrency come and go: spawn from one that never exits.
            spawned = try SpawnerThread.shared.run {
                try Self.spawn(exe, arguments, environment: environment, outputPath: outputPath)
            }
        } else {
            spawned = try Self.spawn(executable, args, environment: environment, outputPath: outputPath)
        }
        (self.pid, self.outputPath) = spawned
    }

    /// Whether the child is signalled when this process dies (see `init`).
    public let diesWithParent: Bool

    static let setpriv: String? = ["/usr/bin/setpriv", "/bin/setpriv"].first { FileManager.default.isExecutableFile(atPath: $0) }

    private static func spawn(
        _ executable: String,
        _ args: [String],
        environment: [String: String]?,
        outputPath: String?
    ) throws -> (pid: pid_t, path: String) {
        let path =
            outputPath
            ?? FileManager.default.temporaryDirectory
            .appendingPathComponent("anchorage-child-\(getpid())-\(UInt32.random(in: 0 ... .max)).log").path
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, path, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + args).map { strdup($0) } + [nil]
        defer { for a in argv { free(a) } }
        let env = environment ?? ProcessInfo.processInfo.environment
        let envp: [UnsafeMutablePointer<CChar>?] = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for e in envp { free(e) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, executable, &actions, nil, argv, envp)
        guard rc == 0 else { throw LocalProcessError("cannot run \(executable): \(String(cString: strerror(rc)))") }
        return (pid, path)
    }

    /// Blocks until the child exits; returns its exit code (128 + signal if killed).
    @discardableResult
    public func wait() -> Int32 {
        if let s = lock.withLock({ status }) { return s }
        var raw: Int32 = 0
        while waitpid(pid, &raw, 0) < 0, errno == EINTR {}
        return record(raw)
    }

    /// Non-blocking: the exit code if the child has exited.
    public func poll() -> Int32? {
        if let s = lock.withLock({ status }) { return s }
        var raw: Int32 = 0
        guard waitpid(pid, &raw, WNOHANG) == pid else { return nil }
        return record(raw)
    }

    private func record(_ raw: Int32) -> Int32 {
        let code = (raw & 0x7f) == 0 ? (raw >> 8) & 0xff : 128 + (raw & 0x7f)
        lock.withLock { status = code }
        return code
    }

    /// Sends `sig` unless the child has already exited (and been reaped: its pid may be reused).
    public func signal(_ sig: Int32) {
        if poll() == nil { kill(pid, sig) }
    }

    /// SIGTERM, then SIGKILL if still alive after `grace`; reaps it. Not cancellable: a
    /// child is never left running because its caller was cancelled.
    public func terminate(grace: Duration) async {
        signal(SIGTERM)
        let deadline = ContinuousClock.now + grace
        while poll() == nil, ContinuousClock.now < deadline { await Self.nap(.milliseconds(20)) }
        if poll() == nil {
            signal(SIGKILL)
            while poll() == nil { await Self.nap(.milliseconds(5)) }
        }
    }

    /// The exit code if the child exits within `timeout` (polls), else nil.
    public func waitForExit(timeout: Duration) async -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let code = poll() { return code }
            await Self.nap(.milliseconds(20))
        }
        return poll()
    }

    /// A sleep that ignores cancellation (used while reaping).
    public static func nap(_ d: Duration) async {
        let (seconds, attoseconds) = d.components
        let nanoseconds = Int(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            DispatchQueue.global().asyncAfter(deadline: .now() + .nanoseconds(nanoseconds)) { c.resume() }
        }
    }

    /// Everything the child wrote so far (stdout and stderr).
    public var output: String { (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? "" }

    /// Runs to completion; returns (exit code, output) and removes the output file.
    public static func run(_ executable: String, _ args: [String], environment: [String: String]? = nil) throws -> (Int32, String) {
        let child = try ChildProcess(executable, args, environment: environment)
        let code = child.wait()
        let out = child.output
        unlink(child.outputPath)
        return (code, out)
    }
}

/// Long-running children (servers) that are SIGKILLed if this process exits normally while
/// they still run (atexit), so a failed test run leaves none behind.
public enum ChildRegistry {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var pids: Set<pid_t> = []  // guarded by `lock`
    nonisolated(unsafe) private static var installed = false  // guarded by `lock`

    public static func add(_ pid: pid_t) {
        lock.withLock {
            pids.insert(pid)
            if !installed {
                installed = true
                atexit { ChildRegistry.killAll() }
            }
        }
    }

    public static func remove(_ pid: pid_t) { _ = lock.withLock { pids.remove(pid) } }

    static func killAll() {
        for pid in lock.withLock({ pids }) { kill(pid, SIGKILL) }
    }
}

/// A child could not be started, or no free port could be found.
public struct LocalProcessError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// One thread that lives as long as the process and runs spawn requests, so that children's
/// parent-death signal (bound to the spawning thread) fires only when the process dies.
final class SpawnerThread: @unchecked Sendable {
    // @unchecked: `jobs` is guarded by `condition`.
    static let shared = SpawnerThread()

    private let condition = NSCondition()
    private var jobs: [@Sendable () -> Void] = []

    private init() {
        let thread = Thread { [self] in loop() }
        thread.name = "anchorage-spawner"
        thread.start()
    }

    private func loop() {
        while true {
            condition.lock()
            while jobs.isEmpty { condition.wait() }
            let job = jobs.removeFirst()
            condition.unlock()
            job()
        }
    }

    /// Runs `body` on the spawner thread and waits for it (a spawn takes a millisecond or so).
    func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) throws -> T {
        let box = ResultBox<T>()
        let done = DispatchSemaphore(value: 0)
        condition.lock()
        jobs.append {
            box.result = Result { try body() }
            done.signal()
        }
        condition.signal()
        condition.unlock()
        done.wait()
        return try box.result!.get()
    }

    private final class ResultBox<T: Sendable>: @unchecked Sendable {
        // @unchecked: written once on the spawner thread before `done.signal()`, read after `done.wait()`.
        var result: Result<T, any Error>?
    }
}
