import Foundation

/// A child process started with `posix_spawn`, output to a file, reaped with `waitpid`.
/// (Foundation's `Process` proved unreliable at reaping children here, and a pipe never reaches
/// end-of-file when the child leaves a daemon holding it, as `pg_ctl start` does.)
public final class ChildProcess: @unchecked Sendable {
    // @unchecked: `status` is written once, by `wait()`, under `lock`.
    public let pid: pid_t
    public let outputPath: String
    private var status: Int32?
    private let lock = NSLock()

    public init(_ executable: String, _ args: [String], environment: [String: String]? = nil, outputPath: String? = nil) throws {
        let path = outputPath ?? FileManager.default.temporaryDirectory
            .appendingPathComponent("anchorage-child-\(getpid())-\(UInt32.random(in: 0 ... .max)).log").path
        self.outputPath = path
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + args).map { strdup($0) } + [nil]
        defer { for a in argv { free(a) } }
        let env = environment ?? ProcessInfo.processInfo.environment
        let envp: [UnsafeMutablePointer<CChar>?] = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for e in envp { free(e) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, executable, &actions, nil, argv, envp)
        guard rc == 0 else { throw LocalPostgresError.failed("cannot run \(executable): \(String(cString: strerror(rc)))") }
        self.pid = pid
    }

    /// Blocks until the child exits; returns its exit code (128 + signal if killed).
    @discardableResult
    public func wait() -> Int32 {
        if let s = lock.withLock({ status }) { return s }
        var raw: Int32 = 0
        while waitpid(pid, &raw, 0) < 0, errno == EINTR {}
        let code = (raw & 0x7f) == 0 ? (raw >> 8) & 0xff : 128 + (raw & 0x7f)
        lock.withLock { status = code }
        return code
    }

    /// Non-blocking: the exit code if the child has exited.
    public func poll() -> Int32? {
        if let s = lock.withLock({ status }) { return s }
        var raw: Int32 = 0
        guard waitpid(pid, &raw, WNOHANG) == pid else { return nil }
        let code = (raw & 0x7f) == 0 ? (raw >> 8) & 0xff : 128 + (raw & 0x7f)
        lock.withLock { status = code }
        return code
    }

    public func signal(_ sig: Int32) { kill(pid, sig) }

    public var output: String { (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? "" }

    /// Runs to completion; returns (exit code, output).
    public static func run(_ executable: String, _ args: [String], environment: [String: String]? = nil) throws -> (Int32, String) {
        let child = try ChildProcess(executable, args, environment: environment)
        let code = child.wait()
        let out = child.output
        unlink(child.outputPath)
        return (code, out)
    }
}
