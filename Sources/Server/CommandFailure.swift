import ArgumentParser
import Cluster
import Foundation
import PostgresNIO
import PostgresStore
import Seams

/// How `anchorage` ends when something is wrong: one line on stderr naming what was wrong and
/// what to do, and an exit status from sysexits(3), the same for every verb
/// (docs/operations.md, "Exit statuses"). Only a malformed command line prints the usage.
struct CommandFailure: Error, CustomStringConvertible {
    enum Status: Int32 {
        /// Something unexpected (a bug, or an error nobody classified yet).
        case other = 1
        /// The command line is malformed: unknown flag, bad duration, not an ID.
        case usage = 64
        /// Well-formed, but wrong for what is stored: an unknown ID or name, a refused change.
        case data = 65
        /// A service the command needs cannot be reached or is not ready: PostgreSQL, NATS, the leader.
        case unavailable = 69
    }

    var status: Status
    var message: String

    var description: String { message }

    static func data(_ message: String) -> Self { Self(status: .data, message: message) }
    static func unavailable(_ message: String) -> Self { Self(status: .unavailable, message: message) }

    /// The failure an error stands for. `database` names the server the command was talking to,
    /// so an unreachable one is reported with its host and port rather than PSQLError's generic text.
    static func from(_ error: any Error, database: DatabaseURL? = nil) -> CommandFailure {
        switch error {
        case let failure as CommandFailure:
            return failure
        case let e as ValidationError:
            return Self(status: .usage, message: e.message)
        case let e as PostgresTransactionError:
            // The closure's error is what went wrong; begin/commit errors are the connection's.
            if let inner = e.closureError ?? e.beginError ?? e.commitError { return from(inner, database: database) }
            return Self(status: .other, message: String(reflecting: e))
        case let e as PSQLError:
            return databaseFailure(e, database: database)
        case let e as DatabaseError:
            switch e {
            case .notFound, .conflict, .invalidInput: return .data(e.description)
            case .invalidURL: return Self(status: .usage, message: e.description)
            case .migration: return Self(status: .other, message: e.description)
            }
        case ClusterStoreError.unknownNode(let id):
            return .data("no node \(id) is registered; `anchorage admin cluster-presences` lists them")
        default:
            if "\(error)".contains("connectionCreationCircuitBreakerTripped") {
                let server = database.map { "PostgreSQL at \($0.host):\($0.port)" } ?? "PostgreSQL"
                return .unavailable("cannot reach \(server): new connections keep failing")
            }
            return Self(status: .other, message: "\(error)")
        }
    }

    /// Runs `body`, reporting its errors as failures of the conversation with `database`.
    static func talking<T: Sendable>(to database: DatabaseURL, _ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch {
            throw from(error, database: database)
        }
    }

    static func databaseFailure(_ e: PSQLError, database: DatabaseURL?) -> CommandFailure {
        let server = database.map { "PostgreSQL at \($0.host):\($0.port) (database \($0.database), user \($0.username))" } ?? "PostgreSQL"
        if e.code == .server, let info = e.serverInfo {
            let message = info[.message] ?? "an error"
            let state = info[.sqlState] ?? ""
            // 28xxx: authentication; 3D000: no such database; 42P01: no such table (schema not migrated).
            if state.hasPrefix("28") || state == "3D000" {
                return .unavailable("\(server) refused the connection: \(message)")
            }
            if state == "42P01" || state == "42883" {
                return .unavailable("\(server): \(message); is the schema migrated? (anchorage migrate status)")
            }
            let hint = info[.hint].map { " (\($0))" } ?? ""
            return Self(status: .other, message: "\(server) refused the statement: \(message)\(hint)")
        }
        switch e.code {
        case .connectionError, .serverClosedConnection, .uncleanShutdown, .clientClosedConnection, .poolClosed, .sslUnsupported,
            .failedToAddSSLHandler:
            let reason = e.underlying.map { Self.plainReason($0) } ?? "\(e.code)"
            return .unavailable("cannot reach \(server): \(reason)")
        default:
            return Self(status: .other, message: "\(server): \(e.code)\(e.underlying.map { ": \(Self.plainReason($0))" } ?? "")")
        }
    }

    /// NIO's connection errors describe themselves as Swift values; keep the readable part.
    static func plainReason(_ error: any Error) -> String {
        let text = "\(error)"
        if text.contains("Connection refused") || text.contains("connection refused") { return "connection refused (is it running on that port?)" }
        if case BusError.timeout = error { return "no answer in time" }
        if text.contains("connectTimeout") || text.contains("timed out") { return "connection timed out" }
        if text.contains("No such host") || text.contains("unknownHost") || text.contains("Name or service not known") {
            return "unknown host"
        }
        return text
    }
}

extension Anchorage {
    /// ArgumentParser's own `main`, except that errors from a command's `run` go through
    /// `CommandFailure`: one clear line and the documented status, never a type dump or usage.
    static func main() async {
        let command: any ParsableCommand
        do {
            command = try parseAsRoot()
        } catch {
            exit(withError: error)
        }
        do {
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                var plain = command
                try plain.run()
            }
        } catch let error as ExitCode {
            exit(withError: error)
        } catch let error as CleanExit {
            exit(withError: error)
        } catch {
            let failure = CommandFailure.from(error)
            FileHandle.standardError.write(Data("Error: \(failure.message)\n".utf8))
            Foundation.exit(failure.status.rawValue)
        }
    }
}
