import AnchorageNode
import ArgumentParser
import Configuration
import Foundation
import SystemPackage

/// Options every subcommand accepts: where the config comes from, and the settings most often
/// given on the command line. Flags win over `ANCHORAGE_…` environment variables, which win
/// over the YAML file, which wins over the defaults (docs/configuration.md lists every key).
struct CommonOptions: ParsableArguments {
    @Option(name: .long, help: "YAML configuration file.")
    var config: String?

    @Option(
        name: .customLong("database-url"),
        help: "PostgreSQL URL for the API role (db.url). A password here is visible in ps: prefer --database-url-file or ANCHORAGE_DB_URL."
    )
    var databaseURL: String?

    @Option(name: .customLong("database-url-file"), help: "A file holding db.url (db.urlFile).")
    var databaseURLFile: String?

    @Option(
        name: .customLong("ops-database-url"),
        help: "PostgreSQL URL for the ops role (db.opsUrl). Visible in ps: prefer --ops-database-url-file or ANCHORAGE_DB_OPS_URL."
    )
    var opsDatabaseURL: String?

    @Option(name: .customLong("ops-database-url-file"), help: "A file holding db.opsUrl (db.opsUrlFile).")
    var opsDatabaseURLFile: String?

    @Option(
        name: .customLong("owner-database-url"),
        help: "PostgreSQL URL for the schema owner (db.ownerUrl). Visible in ps: prefer --owner-database-url-file or ANCHORAGE_DB_OWNER_URL."
    )
    var ownerDatabaseURL: String?

    @Option(name: .customLong("owner-database-url-file"), help: "A file holding db.ownerUrl (db.ownerUrlFile).")
    var ownerDatabaseURLFile: String?

    @Option(
        name: .customLong("nats-url"),
        help: "NATS server(s) to use instead of the local embedded one, comma-separated (nats.url)."
    )
    var natsURL: String?

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error, critical (log.level).")
    var logLevel: String?

    @Option(name: .customLong("log-format"), help: "logfmt or json (log.format).")
    var logFormat: String?

    /// Flags as the highest-priority provider.
    func flagValues() -> [AbsoluteConfigKey: ConfigValue] {
        var v: [AbsoluteConfigKey: ConfigValue] = [:]
        func set(_ key: String, _ value: String?) {
            if let value {
                v[AbsoluteConfigKey(key.split(separator: ".").map(String.init))] = ConfigValue(.string(value), isSecret: key.hasPrefix("db."))
            }
        }
        set("db.url", databaseURL)
        set("db.opsUrl", opsDatabaseURL)
        set("db.ownerUrl", ownerDatabaseURL)
        set("db.urlFile", databaseURLFile)
        set("db.opsUrlFile", opsDatabaseURLFile)
        set("db.ownerUrlFile", ownerDatabaseURLFile)
        set("nats.url", natsURL)
        set("log.level", logLevel)
        set("log.format", logFormat)
        return v
    }

    func reader(extraFlags: [AbsoluteConfigKey: ConfigValue] = [:]) async throws -> ConfigReader {
        var providers: [any ConfigProvider] = [
            InMemoryProvider(name: "flags", values: flagValues().merging(extraFlags) { _, new in new }),
            EnvironmentVariablesProvider().prefixKeys(with: "anchorage"),
        ]
        if let config {
            guard FileManager.default.fileExists(atPath: config) else {
                throw ValidationError("configuration file \(config) does not exist")
            }
            providers.append(try await FileProvider<YAMLSnapshot>(filePath: FilePath(config)))
        }
        return ConfigReader(providers: providers)
    }
}

/// The node's configuration, read by every subcommand; a bad value is a usage error (exit 64).
typealias Settings = NodeConfiguration

extension NodeConfiguration {
    init(_ reader: ConfigReader) throws {
        do {
            try self.init(reader: reader)
        } catch let error as ConfigurationError {
            throw ValidationError(error.message)
        }
    }
}
