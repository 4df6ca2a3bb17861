import Foundation
import LocalProcess
import Logging
import PostgresNIO
import PostgresStore
import Seams

/// A throwaway PostgreSQL cluster: `initdb` into a temporary directory, `pg_ctl start` on a free
/// loopback port, removed on `stop()` (and at process exit, if still running). Used by the test
/// suite, the benchmark and the simulator, so that they need nothing but the server binaries.
public final class LocalPostgres: Sendable {
    public let directory: String
    public let port: Int
    public let binDirectory: String
    /// The superuser (`postgres`, trust authentication on loopback).
    public var superuser: DatabaseURL { DatabaseURL(host: "127.0.0.1", port: port, username: "postgres", database: "postgres") }

    public struct Options: Sendable {
        /// fsync and synchronous commit on: slower, for benchmarks that compare with real servers.
        public var durable = false
        public var maxConnections = 300
        public init(durable: Bool = false, maxConnections: Int = 300) {
            self.durable = durable
            self.maxConnections = maxConnections
        }
    }

    /// URLs of one anchorage database for each of its roles.
    public struct Database: Sendable {
        public var name: String
        public var owner: DatabaseURL
        public var api: DatabaseURL
        public var ops: DatabaseURL
    }

    private init(directory: String, port: Int, binDirectory: String) {
        self.directory = directory
        self.port = port
        self.binDirectory = binDirectory
    }

    public static func start(options: Options = Options(), logger: Logger = Logger(label: "local-postgres")) async throws -> LocalPostgres {
        let bin = try findBinDirectory()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("anchorage-pg-\(getpid())-\(UInt32.random(in: 0 ... .max))").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let asRoot = getuid() == 0
        if asRoot { try run("/bin/chown", ["postgres:postgres", dir]) }
        try runPG(
            bin + "/initdb",
            ["-D", dir + "/data", "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"],
            asRoot: asRoot
        )
        var lastError: (any Error)?
        for _ in 0..<5 {
            let port = try FreePort.loopback()
            var settings = [
                "-c listen_addresses=127.0.0.1", "-p \(port)", "-k \(dir)", "-c max_connections=\(options.maxConnections)",
            ]
            if !options.durable { settings += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"] }
            do {
                try runPG(
                    bin + "/pg_ctl",
                    ["-D", dir + "/data", "-l", dir + "/postgres.log", "-w", "-t", "60", "-o", settings.joined(separator: " "), "start"],
                    asRoot: asRoot
                )
                let pg = LocalPostgres(directory: dir, port: port, binDirectory: bin)
                Cleanup.register(pg)
                return pg
            } catch {
                lastError = error  // most likely the port was taken in between; try another
            }
        }
        throw lastError ?? LocalPostgresError.failed("pg_ctl start failed")
    }

    /// Restarts the server on the same port and settings. `immediate`: no checkpoint, every
    /// connection cut (a crash, as far as clients can tell); it recovers from its WAL on start.
    public func restart(immediate: Bool) throws {
        try Self.runPG(
            binDirectory + "/pg_ctl",
            ["-D", directory + "/data", "-l", directory + "/postgres.log", "-m", immediate ? "immediate" : "fast", "-w", "-t", "60", "restart"],
            asRoot: getuid() == 0
        )
    }

    /// Stops the server and removes its directory.
    public func stop() {
        Cleanup.unregister(self)
        _ = try? Self.runPG(binDirectory + "/pg_ctl", ["-D", directory + "/data", "-m", "immediate", "-w", "stop"], asRoot: getuid() == 0)
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Creates a bootstrapped, migrated database. With `template`, clones it instead (much
    /// faster than migrating again; the template must have no open connections).
    public func createDatabase(_ name: String, template: String? = nil, clock: any WallClock, logger: Logger) async throws -> Database {
        if let template {
            try await superuser.withConnection(logger: logger) { conn in
                try await conn.query(
                    PostgresQuery(unsafeSQL: "CREATE DATABASE \(name) TEMPLATE \(template) OWNER \(DatabaseRole.owner)"),
                    logger: logger
                )
                for statement in Bootstrap.databaseStatements(name) {
                    try await conn.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                }
            }
        } else {
            try await Provisioning.bootstrap(superuser: superuser, database: name, logger: logger)
            try await Provisioning.migrate(owner: urls(name).owner, clock: clock, logger: logger)
        }
        return urls(name)
    }

    public func dropDatabase(_ name: String, logger: Logger) async throws {
        try await superuser.withConnection(logger: logger) { conn in
            try await conn.query(PostgresQuery(unsafeSQL: "DROP DATABASE IF EXISTS \(name) WITH (FORCE)"), logger: logger)
        }
    }

    public func urls(_ name: String) -> Database {
        Database(
            name: name,
            owner: superuser.with(username: DatabaseRole.owner, database: name),
            api: superuser.with(username: DatabaseRole.api, database: name),
            ops: superuser.with(username: DatabaseRole.ops, database: name)
        )
    }

    // MARK: Helpers

    static func findBinDirectory() throws -> String {
        let fm = FileManager.default
        if let env = ProcessInfo.processInfo.environment["ANCHORAGE_PG_BIN"], fm.fileExists(atPath: env + "/initdb") {
            return env
        }
        let root = "/usr/lib/postgresql"
        let versions = ((try? fm.contentsOfDirectory(atPath: root)) ?? []).compactMap(Int.init).sorted(by: >)
        for v in versions where fm.fileExists(atPath: "\(root)/\(v)/bin/initdb") { return "\(root)/\(v)/bin" }
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":")
        where fm.fileExists(atPath: "\(dir)/initdb") {
            return String(dir)
        }
        throw LocalPostgresError.failed(
            "PostgreSQL server binaries (initdb, pg_ctl) not found; install postgresql (apt-get install -y postgresql) or set ANCHORAGE_PG_BIN"
        )
    }

    static func runPG(_ tool: String, _ args: [String], asRoot: Bool) throws {
        if asRoot {
            try run("/usr/sbin/runuser", ["-u", "postgres", "--", tool] + args)
        } else {
            try run(tool, args)
        }
    }

    static func run(_ executable: String, _ args: [String]) throws {
        let (code, output) = try ChildProcess.run(executable, args)
        guard code == 0 else {
            throw LocalPostgresError.failed("\(executable) \(args.joined(separator: " ")) exited \(code): \(output.suffix(2000))")
        }
    }
}

public enum LocalPostgresError: Error, CustomStringConvertible {
    case failed(String)
    public var description: String {
        switch self {
        case .failed(let s): s
        }
    }
}

/// Stops clusters left running when the process exits normally.
enum Cleanup {
    nonisolated(unsafe) static var running: [ObjectIdentifier: LocalPostgres] = [:]
    static let lock = Lock()
    nonisolated(unsafe) static var installed = false

    static func register(_ pg: LocalPostgres) {
        lock.withLock {
            running[ObjectIdentifier(pg)] = pg
            if !installed {
                installed = true
                atexit {
                    let all = Cleanup.lock.withLock { Array(Cleanup.running.values) }
                    for pg in all { pg.stop() }
                }
            }
        }
    }

    static func unregister(_ pg: LocalPostgres) {
        _ = lock.withLock { running.removeValue(forKey: ObjectIdentifier(pg)) }
    }
}
