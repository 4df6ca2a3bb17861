import Foundation

/// A child process started with `posix_spawn`, output to a file, reaped with `waitpid`.
/// (Foundation's `Process` proved unreliable at reaping children on this platform.)
/// Copied from LocalPostgres so that this module stays independent of it.
final class ChildProcess: @unchecked Sendable {
    // @unchecked: `status` is written once, by `wait()`/`poll()`, under `lock`.
    let pid: pid_t
    let outputPath: String
    private var status: Int32?
    private let lock = NSLock()

    init(_ executable: String, _ args: [String], outputPath: String? = nil) throws {
        let path = outputPath ?? FileManager.default.temporaryDirectory
            .appendingPathComponent("anchorage-nats-\(getpid())-\(UInt32.random(in: 0 ... .max)).log").path
        self.outputPath = path
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, path, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + args).map { strdup($0) } + [nil]
        defer { for a in argv { free(a) } }
        let envp: [UnsafeMutablePointer<CChar>?] = ProcessInfo.processInfo.environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for e in envp { free(e) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, executable, &actions, nil, argv, envp)
        guard rc == 0 else { throw LocalNATSError.failed("cannot run \(executable): \(String(cString: strerror(rc)))") }
        self.pid = pid
    }

    /// Blocks until the child exits; returns its exit code (128 + signal if killed).
    @discardableResult
    func wait() -> Int32 {
        if let s = lock.withLock({ status }) { return s }
        var raw: Int32 = 0
        while waitpid(pid, &raw, 0) < 0, errno == EINTR {}
        return record(raw)
    }

    /// Non-blocking: the exit code if the child has exited.
    func poll() -> Int32? {
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

    func signal(_ sig: Int32) {
        if poll() == nil { kill(pid, sig) }
    }

    /// SIGTERM, then SIGKILL if still alive after `grace`; reaps it. Not cancellable: a
    /// child is never left running because its caller was cancelled.
    func terminate(grace: Duration) async {
        signal(SIGTERM)
        let deadline = ContinuousClock.now + grace
        while poll() == nil, ContinuousClock.now < deadline { await Self.nap(.milliseconds(20)) }
        if poll() == nil {
            signal(SIGKILL)
            while poll() == nil { await Self.nap(.milliseconds(5)) }
        }
    }

    /// Exits within `timeout`? (polls)
    func waitForExit(timeout: Duration) async -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let code = poll() { return code }
            await Self.nap(.milliseconds(20))
        }
        return poll()
    }

    /// A sleep that ignores cancellation (used while reaping).
    static func nap(_ d: Duration) async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            DispatchQueue.global().asyncAfter(deadline: .now() + .nanoseconds(Int(d.components.attoseconds / 1_000_000_000 + d.components.seconds * 1_000_000_000))) {
                c.resume()
            }
        }
    }

    var output: String { (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? "" }

    /// Runs to completion; returns (exit code, output).
    static func run(_ executable: String, _ args: [String]) throws -> (Int32, String) {
        let child = try ChildProcess(executable, args)
        let code = child.wait()
        let out = child.output
        unlink(child.outputPath)
        return (code, out)
    }
}

/// Children still running when the test process exits are killed (atexit).
enum ChildRegistry {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var pids: Set<pid_t> = []  // guarded by `lock`
    nonisolated(unsafe) private static var installed = false  // guarded by `lock`

    static func add(_ pid: pid_t) {
        lock.withLock {
            pids.insert(pid)
            if !installed {
                installed = true
                atexit { ChildRegistry.killAll() }
            }
        }
    }

    static func remove(_ pid: pid_t) { _ = lock.withLock { pids.remove(pid) } }

    static func killAll() {
        for pid in lock.withLock({ pids }) { kill(pid, SIGKILL) }
    }
}
