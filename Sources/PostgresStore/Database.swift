import Foundation
import Logging
import PostgresNIO
import Seams

/// A `postgres://user:password@host:port/database` URL, parsed into a client configuration.
public struct DatabaseURL: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var username: String
    public var password: String?
    public var database: String
    public var requireTLS: Bool

    public init(host: String, port: Int, username: String, password: String? = nil, database: String, requireTLS: Bool = false) {
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.database = database
        self.requireTLS = requireTLS
    }

    public init(_ text: String) throws {
        guard let components = URLComponents(string: text),
            components.scheme == "postgres" || components.scheme == "postgresql",
            let host = components.host, !host.isEmpty
        else { throw DatabaseError.invalidURL("expected postgres://user[:password]@host[:port]/database, got \"\(Self.redact(text))\"") }
        let database = String(components.path.drop(while: { $0 == "/" }))
        guard !database.isEmpty, let user = components.user, !user.isEmpty else {
            throw DatabaseError.invalidURL("the database URL needs a user and a database name")
        }
        let sslmode = components.queryItems?.first(where: { $0.name == "sslmode" })?.value
        self.init(
            host: host,
            port: components.port ?? 5432,
            username: user.removingPercentEncoding ?? user,
            password: components.password.map { $0.removingPercentEncoding ?? $0 },
            database: database,
            requireTLS: sslmode == "require" || sslmode == "verify-full"
        )
    }

    /// The same server and credentials, another user or database.
    public func with(username: String? = nil, password: String?? = .none, database: String? = nil) -> DatabaseURL {
        var copy = self
        if let username { copy.username = username }
        if case .some(let p) = password { copy.password = p }
        if let database { copy.database = database }
        return copy
    }

    public var description: String {
        "postgres://\(username)\(password == nil ? "" : ":***")@\(host):\(port)/\(database)"
    }

    /// The URL as text, password included (for writing an env file the operator owns).
    public var urlString: String {
        var c = URLComponents()
        c.scheme = "postgres"
        c.user = username
        c.password = password
        c.host = host
        c.port = port
        c.path = "/" + database
        return c.string ?? description
    }

    static func redact(_ text: String) -> String {
        guard var c = URLComponents(string: text), c.password != nil else { return text }
        c.password = "***"
        return c.string ?? "<unparseable>"
    }

    /// With `statementTimeoutSeconds` > 0, PostgreSQL cancels any statement of these
    /// connections running longer (`statement_timeout`, set at connection start). With an
    /// `applicationName`, `pg_stat_activity` tells this pool's connections apart (the node's
    /// connection gauges read them there).
    public func clientConfiguration(
        maxConnections: Int = 20,
        statementTimeoutSeconds: Int = 0,
        applicationName: String? = nil
    ) -> PostgresClient.Configuration {
        var config = PostgresClient.Configuration(
            host: host,
            port: port,
            username: username,
            password: password,
            database: database,
            tls: requireTLS ? .require(.makeClientConfiguration()) : .disable
        )
        config.options.maximumConnections = maxConnections
        if statementTimeoutSeconds > 0 {
            config.options.additionalStartupParameters.append(("statement_timeout", "\(statementTimeoutSeconds)s"))
        }
        if let applicationName { config.options.additionalStartupParameters.append(("application_name", String(applicationName.prefix(63)))) }
        return config
    }
}

public enum DatabaseError: Error, CustomStringConvertible, Equatable {
    case invalidURL(String)
    case migration(String)
    case conflict(String)
    case notFound(String)
    case invalidInput(String)

    public var description: String {
        switch self {
        case .invalidURL(let s), .migration(let s), .conflict(let s), .notFound(let s), .invalidInput(let s): s
        }
    }
}

extension PostgresConnection {
    /// Sets the tenancy org for the rest of the current transaction.
    func setOrg(_ org: TypeID, logger: Logger) async throws {
        try await query("SELECT set_config('anchorage.org_id', \(org.uuid.uuidString), true)", logger: logger)
    }
}

extension Error {
    /// The SQLSTATE of a server error, if this is one (also inside `withTransaction`'s wrapper).
    var sqlState: String? {
        if let tx = self as? PostgresTransactionError { return tx.closureError?.sqlState ?? tx.commitError?.sqlState }
        if let row = self as? PostgresPinStore.RefusedRow { return row.code }
        return (self as? PSQLError)?.serverInfo?[.sqlState]
    }
}
