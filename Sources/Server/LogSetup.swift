import Foundation
import Logging
import Seams
import Synchronization

/// Structured logs on stderr, one line per event: `logfmt` for people, `json` for collectors.
/// Request lines carry Hummingbird's `hb.request.id` and, once authenticated, the `org`.
struct LineLogHandler: LogHandler {
    enum Format: Sendable { case logfmt, json }

    let label: String
    let format: Format
    let clock: any WallClock
    var logLevel: Logger.Level
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        write(level: event.level, message: event.message, metadata: event.metadata)
    }

    func write(level: Logger.Level, message: Logger.Message, metadata explicit: Logger.Metadata?) {
        var all = metadata
        if let provided = metadataProvider?.get() { all.merge(provided) { _, new in new } }
        if let explicit { all.merge(explicit) { _, new in new } }
        var fields: [(String, String)] = [
            ("ts", clock.now().rfc3339), ("level", level.rawValue), ("logger", label), ("msg", message.description),
        ]
        for key in all.keys.sorted() { fields.append((key, "\(all[key]!)")) }
        let text: String
        switch format {
        case .logfmt:
            text = fields.map { "\($0.0)=\(Self.logfmtValue($0.1))" }.joined(separator: " ")
        case .json:
            text = "{" + fields.map { "\(Self.jsonString($0.0)):\(Self.jsonString($0.1))" }.joined(separator: ",") + "}"
        }
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }

    static func logfmtValue(_ s: String) -> String {
        if !s.isEmpty, !s.contains(where: { $0 == " " || $0 == "=" || $0 == "\"" || $0.isNewline }) { return s }
        return jsonString(s)
    }

    static func jsonString(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 { out += String(format: "\\u%04x", u.value) } else { out.unicodeScalars.append(u) }
            }
        }
        return out + "\""
    }
}

enum LogSetup {
    static func level(_ text: String) -> Logger.Level? { Logger.Level(rawValue: text.lowercased()) }

    /// Installs the process-wide handler once; returns the root logger.
    static func bootstrap(level: String, format: String, clock: any WallClock) -> Logger {
        let lvl = Self.level(level) ?? .info
        let fmt: LineLogHandler.Format = format == "json" ? .json : .logfmt
        // swift-log allows one bootstrap per process; a command that opens PostgreSQL and then
        // NATS (revoke-token, retire-key) asks twice, and the first configuration stands.
        bootstrapped.withLock { done in
            guard !done else { return }
            done = true
            LoggingSystem.bootstrap { label in LineLogHandler(label: label, format: fmt, clock: clock, logLevel: lvl) }
        }
        return Logger(label: "anchorage")
    }

    private static let bootstrapped = Mutex(false)
}
