import DeterministicSeams
import LocalPostgres
import Logging
import PostgresNIO
import PostgresStore

/// Where runs get their databases: a throwaway cluster this process starts (`LocalPostgres`),
/// or a server given by a superuser URL. A migrated template is made once per process; each run
/// clones it (`CREATE DATABASE … TEMPLATE`) and drops its clone afterwards unless kept.
public actor SimDatabaseServer {
    public enum Source: Sendable {
        case local
        case url(DatabaseURL)
    }

    let source: Source
    private var local: LocalPostgres?
    private var superuser: DatabaseURL?
    private var templateReady = false
    private let logger = silentLogger("anchorage.sim.postgres")
    static let template = "anchorage_sim_template"

    public init(_ source: Source) { self.source = source }

    private var preparing: Task<DatabaseURL, any Error>?

    /// Starts the server (local) and migrates the template, once (concurrent callers share it).
    func prepare() async throws -> DatabaseURL {
        if let preparing { return try await preparing.value }
        let task = Task { try await self.prepareOnce() }
        preparing = task
        do {
            return try await task.value
        } catch {
            preparing = nil
            throw error
        }
    }

    private func prepareOnce() async throws -> DatabaseURL {
        if let superuser, templateReady { return superuser }
        let su: DatabaseURL
        switch source {
        case .local:
            let pg = try await LocalPostgres.start(logger: logger)
            local = pg
            su = pg.superuser
        case .url(let url):
            su = url
        }
        superuser = su
        // Drop a template left by an earlier process, then migrate a new one.
        try await Self.execute(su, ["DROP DATABASE IF EXISTS \(Self.template) WITH (FORCE)"])
        try await Provisioning.bootstrap(superuser: su, database: Self.template, logger: logger)
        try await Provisioning.migrate(
            owner: su.with(username: DatabaseRole.owner, database: Self.template),
            clock: VirtualWallClock(),
            logger: logger
        )
        templateReady = true
        return su
    }

    /// A fresh database cloned from the template, named `name`.
    public func fresh(_ name: String) async throws -> SimDatabase {
        let su = try await prepare()
        // PostgreSQL refuses concurrent clones of one template: one at a time.
        let previous = lastClone
        let clone = Task {
            _ = await previous?.result
            try await Self.clone(su, name)
        }
        lastClone = clone
        try await clone.value
        return SimDatabase(
            name: name,
            api: su.with(username: DatabaseRole.api, database: name),
            ops: su.with(username: DatabaseRole.ops, database: name)
        )
    }

    private var lastClone: Task<Void, any Error>?

    static func clone(_ su: DatabaseURL, _ name: String) async throws {
        try await Self.execute(
            su,
            [
                "DROP DATABASE IF EXISTS \(name) WITH (FORCE)",
                "CREATE DATABASE \(name) TEMPLATE \(Self.template) OWNER \(DatabaseRole.owner)",
            ]
        )
    }

    public func drop(_ name: String) async throws {
        guard let su = superuser else { return }
        try await Self.execute(su, ["DROP DATABASE IF EXISTS \(name) WITH (FORCE)"])
    }

    static func execute(_ url: DatabaseURL, _ statements: [String]) async throws {
        let logger = silentLogger("anchorage.sim.postgres")
        try await url.withConnection(logger: logger) { conn in
            for sql in statements { try await conn.query(PostgresQuery(unsafeSQL: sql), logger: logger) }
        }
    }

    /// Stops the local server, if this process started one.
    public func shutdown() {
        local?.stop()
        local = nil
        preparing = nil
        templateReady = false
        superuser = nil
    }

    /// Where a kept database can be reached (for `--keep-db`).
    public func describe(_ name: String) -> String {
        guard let su = superuser else { return name }
        return su.with(database: name).description
    }
}

/// One run's database: URLs for the API role and the ops role.
public struct SimDatabase: Sendable {
    public var name: String
    public var api: DatabaseURL
    public var ops: DatabaseURL
}
