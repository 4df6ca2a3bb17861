import Foundation
import LocalProcess

/// Prometheus' own checker, for the tests of `/metrics` and of the shipped alerting rules.
/// `make deps` unpacks it from Debian's `prometheus` package into `.anchorage/prometheus`.
public enum Promtool {
    /// `ANCHORAGE_PROMTOOL`, the checkout's `.anchorage/prometheus`, or the system's.
    public static var path: String? {
        let checkout = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let candidates: [String?] = [
            ProcessInfo.processInfo.environment["ANCHORAGE_PROMTOOL"],
            checkout.appendingPathComponent(".anchorage/prometheus/usr/bin/promtool").path,
            "/usr/bin/promtool",
        ]
        return candidates.compactMap { $0 }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    public static let missing = "promtool is not installed: run `make deps` (it unpacks Debian's prometheus package into .anchorage/prometheus)"

    /// Runs promtool with `args` (`stdin`, if given, from a temporary file); returns its exit
    /// status and combined output.
    public static func run(_ path: String, _ args: [String], stdin: String? = nil) async throws -> (Int32, String) {
        var executable = path
        var arguments = args
        var input: String?
        if let stdin {
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("promtool-\(UUID().uuidString).txt").path
            try stdin.write(toFile: file, atomically: true, encoding: .utf8)
            input = file
            // promtool reads metrics only from standard input.
            executable = "/bin/sh"
            arguments = ["-c", "exec \"$0\" \"$@\" < \"$PROMTOOL_INPUT\"", path] + args
        }
        defer { if let input { try? FileManager.default.removeItem(atPath: input) } }
        var environment = ProcessInfo.processInfo.environment
        if let input { environment["PROMTOOL_INPUT"] = input }
        let child = try ChildProcess(executable, arguments, environment: environment)
        let status = await child.waitForExit(timeout: .seconds(60)) ?? -1
        let output = child.output
        try? FileManager.default.removeItem(atPath: child.outputPath)
        return (status, output)
    }
}
