import Foundation
import Logging

/// One statement a ``LogCapture`` logger received.
struct LogLine: Sendable, CustomStringConvertible {
    var label: String
    var level: Logger.Level
    var message: String
    var metadata: [String: String]

    var description: String {
        "\(level) \(label): \(message) " + metadata.keys.sorted().map { "\($0)=\(metadata[$0]!)" }.joined(separator: " ")
    }
}

/// Loggers that keep what they are told, for tests that assert on the operator-facing log
/// lines. Built with `Logger(label:factory:)`, never through the process-wide bootstrap.
final class LogCapture: @unchecked Sendable {
    // @unchecked: `stored` is only touched under `lock`.
    private let lock = NSLock()
    private var stored: [LogLine] = []

    func logger(_ label: String, level: Logger.Level = .trace) -> Logger {
        Logger(label: label) { label in CapturingLogHandler(label: label, capture: self, logLevel: level) }
    }

    func append(_ line: LogLine) { lock.withLock { stored.append(line) } }

    var lines: [LogLine] { lock.withLock { stored } }

    /// Lines whose message starts with `prefix`.
    func lines(_ prefix: String) -> [LogLine] { lines.filter { $0.message.hasPrefix(prefix) } }

    func clear() { lock.withLock { stored.removeAll() } }
}

struct CapturingLogHandler: LogHandler {
    let label: String
    let capture: LogCapture
    var logLevel: Logger.Level
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var all = metadata
        for (k, v) in event.metadata ?? [:] { all[k] = v }
        capture.append(
            LogLine(label: label, level: event.level, message: "\(event.message)", metadata: all.mapValues { "\($0)" })
        )
    }
}
