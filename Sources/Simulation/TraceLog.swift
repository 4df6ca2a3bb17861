import Logging
import Seams
import SimBus
import SimKernel

/// Routes a simulated node's logs into the world's trace: one line per statement at `notice`
/// or above (`  log <node> <level>: <message> {k=v, …}`), metadata sorted by key, no
/// timestamps (the trace line before it carries the virtual time). Lower levels go nowhere.
/// Every statement is also handed to `observe`, so that checkers can count warnings.
struct TraceLogHandler: LogHandler {
    let node: String
    let log: EventLog
    let observe: @Sendable (_ node: String, _ level: Logger.Level, _ message: String) -> Void
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?
    var logLevel: Logger.Level = .notice

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let text = "\(event.message)"
        observe(node, event.level, text)
        var merged = metadata
        for (k, v) in event.metadata ?? [:] { merged[k] = v }
        var line = "  log \(node) \(event.level): \(text)"
        if !merged.isEmpty {
            line += " {" + merged.keys.sorted().map { "\($0)=\(merged[$0]!)" }.joined(separator: ", ") + "}"
        }
        log.record(line)
    }

    static func logger(node: String, label: String, log: EventLog, observe: @escaping @Sendable (String, Logger.Level, String) -> Void) -> Logger {
        Logger(label: label) { _ in TraceLogHandler(node: node, log: log, observe: observe) }
    }
}

/// A logger that drops everything (PostgreSQL clients, HTTP context).
func silentLogger(_ label: String) -> Logger {
    Logger(label: label) { _ in SwiftLogNoOpLogHandler() }
}
