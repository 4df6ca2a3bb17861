import Logging
import PostgresNIO
import Seams

extension DatabaseURL {
    public var connectionConfiguration: PostgresConnection.Configuration {
        PostgresConnection.Configuration(
            host: host,
            port: port,
            username: username,
            password: password,
            database: database,
            tls: requireTLS ? .require(try! .init(configuration: .makeClientConfiguration())) : .disable
        )
    }

    /// Opens one connection, runs `body`, closes it.
    public func withConnection<T: Sendable>(
        logger: Logger,
        _ body: (PostgresConnection) async throws -> T
    ) async throws -> T {
        let connection = try await PostgresConnection.connect(
            configuration: connectionConfiguration,
            id: 1,
            logger: logger
        )
        do {
            let result = try await body(connection)
            try? await connection.close()
            return result
        } catch {
            try? await connection.close()
            throw error
        }
    }
}

/// Creating the roles and the database, and migrating it: what `anchorage migrate bootstrap`,
/// `make run` and the throwaway test clusters share.
public enum Provisioning {
    /// Creates the three roles (if missing) and `database` owned by the owner role (if missing).
    /// `superuser` must be able to create roles and databases.
    public static func bootstrap(
        superuser: DatabaseURL,
        database: String,
        passwords: [String: String] = [:],
        logger: Logger
    ) async throws {
        guard database.utf8.allSatisfy({ ($0 >= 97 && $0 <= 122) || ($0 >= 48 && $0 <= 57) || $0 == 95 }),
            !database.isEmpty, database.utf8.count <= 63
        else { throw DatabaseError.invalidInput("database names are 1-63 characters of a-z, 0-9 and _") }
        try await superuser.withConnection(logger: logger) { conn in
            for statement in Bootstrap.roleStatements(passwords: passwords) {
                try await conn.query(PostgresQuery(unsafeSQL: statement), logger: logger)
            }
            let exists =
                try await conn.query(
                    "SELECT count(*) FROM pg_database WHERE datname = \(database)",
                    logger: logger
                ).collect().first?.decode(Int.self) ?? 0
            if exists == 0 {
                try await conn.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(database) OWNER \(DatabaseRole.owner)"), logger: logger)
            }
            for statement in Bootstrap.databaseStatements(database) {
                try await conn.query(PostgresQuery(unsafeSQL: statement), logger: logger)
            }
        }
        try await superuser.with(database: database).withConnection(logger: logger) { conn in
            for statement in Bootstrap.leakproofStatements {
                try await conn.query(PostgresQuery(unsafeSQL: statement), logger: logger)
            }
        }
    }

    /// Applies pending migrations as the owner role.
    @discardableResult
    public static func migrate(owner: DatabaseURL, clock: any WallClock, logger: Logger) async throws -> [Int] {
        try await owner.withConnection(logger: logger) { conn in
            try await Migrator(clock: clock, logger: logger).up(conn)
        }
    }
}
