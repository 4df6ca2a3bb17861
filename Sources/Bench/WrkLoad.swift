import Foundation
import LocalProcess

/// `wrk` (C, epoll) as the `POST /pins` load generator, when it is installed: the in-process
/// AsyncHTTPClient generator shares the server's two cores and spent about as much CPU per
/// request as the server did, so what it measured was mostly itself. `wrk` costs a small
/// fraction of that, which leaves the cores to the server and PostgreSQL. Requests go round
/// robin over the orgs' tokens and a set of valid CIDs (one body per CID), as the built-in
/// generator's do.
struct Wrk {
    let executable: String

    /// `wrk` on PATH, if any.
    static func find() -> Wrk? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for dir in path.split(separator: ":") {
            let candidate = "\(dir)/wrk"
            if FileManager.default.isExecutableFile(atPath: candidate) { return Wrk(executable: candidate) }
        }
        return nil
    }

    enum Failure: Error, CustomStringConvertible {
        case exited(Int32, String)
        case unreadable(String)
        case refused(Int, String)
        var description: String {
            switch self {
            case .exited(let code, let output): "wrk exited with \(code): \(output)"
            case .unreadable(let output): "wrk's output has no rate or latency: \(output)"
            case .refused(let n, let output): "\(n) requests were not answered 202: \(output)"
            }
        }
    }

    /// `connections` connections posting for `seconds`; rate and latency as wrk measured them.
    func post(url: String, tokens: [String], cids: [String], connections: Int, seconds: Double) async throws -> APIBench.Result {
        func lua(_ s: String) -> String { "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\"" }
        let bodies = cids.map { #"{"cid":"\#($0)","name":"bench","meta":{"app":"bench"}}"# }
        let script = """
            local tokens = {\(tokens.map { lua("Bearer " + $0) }.joined(separator: ","))}
            local bodies = {\(bodies.map(lua).joined(separator: ","))}
            local n = 0
            request = function()
              n = n + 1
              return wrk.format("POST", "/pins", {["Authorization"] = tokens[n % #tokens + 1], ["Content-Type"] = "application/json"}, bodies[n % #bodies + 1])
            end
            """
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("anchorage-bench-wrk-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let scriptPath = dir.appendingPathComponent("post.lua").path
        try script.write(toFile: scriptPath, atomically: true, encoding: .utf8)
        let outputPath = dir.appendingPathComponent("wrk.out").path
        let threads = max(1, min(2, connections))
        let child = try ChildProcess(
            executable,
            [
                "-t\(threads)", "-c\(connections)", "-d\(Int(seconds.rounded(.up)))s", "--latency", "--timeout", "30s", "-s", scriptPath,
                url + "/pins",
            ],
            outputPath: outputPath
        )
        let code = await child.waitForExit(timeout: .seconds(Int64(seconds) + 60)) ?? -1
        let output = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        guard code == 0 else { throw Failure.exited(code, output) }
        return try Self.parse(output)
    }

    /// Reads `Requests/sec:` and the `--latency` distribution's 50% and 99% lines.
    static func parse(_ output: String) throws -> APIBench.Result {
        var rate: Double?
        var p50: Double?
        var p99: Double?
        var refused = 0
        for line in output.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard let first = fields.first else { continue }
            if first == "Requests/sec:", fields.count == 2 { rate = Double(fields[1]) }
            if first == "50%", fields.count == 2 { p50 = seconds(fields[1]) }
            if first == "99%", fields.count == 2 { p99 = seconds(fields[1]) }
            if line.contains("Non-2xx or 3xx responses:"), let n = fields.last.flatMap({ Int($0) }) { refused += n }
            if first == "Socket", line.contains("errors:") {
                refused += line.split(separator: ",").compactMap { $0.split(separator: " ").last.flatMap { Int($0) } }.reduce(0, +)
            }
        }
        guard refused == 0 else { throw Failure.refused(refused, output) }
        guard let rate, let p50, let p99 else { throw Failure.unreadable(output) }
        return APIBench.Result(rate: rate, p50: p50, p99: p99)
    }

    /// wrk's durations: `635.91us`, `1.23ms`, `2.00s`, `1.5m`.
    static func seconds(_ text: Substring) -> Double? {
        for (suffix, scale) in [("us", 1e-6), ("ms", 1e-3), ("s", 1.0), ("m", 60.0)] where text.hasSuffix(suffix) {
            return Double(text.dropLast(suffix.count)).map { $0 * scale }
        }
        return nil
    }
}
