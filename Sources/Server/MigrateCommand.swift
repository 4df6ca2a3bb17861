import AnchorageNode
import ArgumentParser
import Foundation
import Live
import Logging
import PostgresStore
import Seams

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Manage the database schema.",
        subcommands: [Up.self, Status.self, BootstrapCommand.self]
    )

    struct Up: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Apply pending migrations (connects as db.ownerUrl).")
        @OptionGroup var common: CommonOptions

        func run() async throws {
            let settings = try Settings(try await common.reader())
            let clock = SystemWallClock()
            let logger = LogSetup.bootstrap(level: settings.logLevel, format: settings.logFormat, clock: clock)
            let owner = try settings.ownerURL()
            let applied = try await CommandFailure.talking(to: owner) {
                try await Provisioning.migrate(owner: owner, clock: clock, logger: logger)
            }
            print(
                applied.isEmpty
                    ? "schema is up to date (version \(Migrations.latestVersion))"
                    : "applied migrations: \(applied.map(String.init).joined(separator: ", "))"
            )
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show applied and pending migrations.")
        @OptionGroup var common: CommonOptions
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let settings = try Settings(try await common.reader())
            let clock = SystemWallClock()
            let logger = LogSetup.bootstrap(level: settings.logLevel, format: settings.logFormat, clock: clock)
            let url = try settings.ownerURL()
            let entries = try await CommandFailure.talking(to: url) {
                try await url.withConnection(logger: logger) { conn in
                    try await Migrator(clock: clock, logger: logger).status(conn)
                }
            }
            if json {
                let rows = entries.map { e -> [String: Any] in
                    var r: [String: Any] = ["version": e.version, "name": e.name, "state": e.state.rawValue]
                    if let at = e.appliedAt { r["appliedAt"] = at.rfc3339 }
                    return r
                }
                print(String(decoding: try JSONSerialization.data(withJSONObject: rows, options: [.sortedKeys]), as: UTF8.self))
            } else {
                print(
                    Table.render(
                        ["VERSION", "NAME", "STATE", "APPLIED AT"],
                        entries.map { [String($0.version), $0.name, $0.state.rawValue, $0.appliedAt?.rfc3339 ?? "-"] }
                    )
                )
            }
            if entries.contains(where: { $0.state == .modified }) { throw ExitCode(2) }
        }
    }

    struct BootstrapCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "bootstrap",
            abstract: "Create the anchorage roles and database (connects as a PostgreSQL superuser). Idempotent."
        )
        @OptionGroup var common: CommonOptions
        @Option(
            name: .customLong("superuser-url"),
            help: "postgres://postgres@host:port/postgres (a password here is visible in ps: prefer --superuser-url-file)"
        )
        var superuserURL: String?
        @Option(name: .customLong("superuser-url-file"), help: "A file holding the superuser URL.") var superuserURLFile: String?
        @Option(help: "Database to create.") var database = "anchorage"

        func run() async throws {
            let settings = try Settings(try await common.reader())
            let logger = LogSetup.bootstrap(level: settings.logLevel, format: settings.logFormat, clock: SystemWallClock())
            guard
                let superuser = try superuserURL
                    ?? superuserURLFile.map({ path -> String in
                        guard let data = FileManager.default.contents(atPath: path) else { throw CommandFailure.data("cannot read \(path)") }
                        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
                    })
            else { throw ValidationError("give --superuser-url or --superuser-url-file") }
            // New roles get the passwords of the configured URLs (db.url, db.opsUrl, db.ownerUrl).
            var passwords: [String: String] = [:]
            for (role, url) in [
                (DatabaseRole.api, settings.databaseURL), (DatabaseRole.ops, settings.opsDatabaseURL),
                (DatabaseRole.owner, settings.ownerDatabaseURL),
            ] {
                if let url, let parsed = try? DatabaseURL(url), parsed.username == role, let password = parsed.password {
                    passwords[role] = password
                }
            }
            let superuserURL = try DatabaseURL(superuser)
            try await CommandFailure.talking(to: superuserURL) {
                try await Provisioning.bootstrap(superuser: superuserURL, database: database, passwords: passwords, logger: logger)
            }
            print("roles \(DatabaseRole.owner), \(DatabaseRole.api), \(DatabaseRole.ops) and database \(database) are in place")
        }
    }
}

/// Plain aligned tables for people; `--json` exists wherever scripts need the same data.
enum Table {
    static func render(_ header: [String], _ rows: [[String]]) -> String {
        var widths = header.map(\.count)
        for row in rows { for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], cell.count) } }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { i, c in i == cells.count - 1 ? c : c.padding(toLength: widths[i], withPad: " ", startingAt: 0) }
                .joined(separator: "  ")
        }
        return ([line(header)] + rows.map(line)).joined(separator: "\n")
    }
}
