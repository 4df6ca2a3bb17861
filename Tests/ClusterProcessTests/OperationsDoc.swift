import Foundation
import LocalProcess

/// An executable Markdown document (docs/operations.md): its ```sh and ```console blocks, run in
/// order in one bash session, and each console command's output compared with the lines the doc
/// shows under it. The conventions are in the comment at the top of docs/operations.md.
struct DocStep: Sendable, Equatable {
    /// 1-based line in the document of the command (a sh block: its first line).
    var line: Int
    var command: String
    /// Console commands only: the lines the doc says the command prints.
    var expected: [ExpectedLine]?
    var isConsole: Bool { expected != nil }
}

struct ExpectedLine: Sendable, Equatable {
    var line: Int
    var text: String
}

struct SkippedBlock: Sendable, Equatable {
    var line: Int
    var reason: String
}

struct DocParseError: Error, CustomStringConvertible {
    var description: String
}

enum OperationsDoc {
    /// The runnable steps of a document and the blocks it marks as skipped.
    static func parse(_ text: String, name: String = "doc") throws -> (steps: [DocStep], skipped: [SkippedBlock]) {
        let lines = text.components(separatedBy: "\n")
        var steps: [DocStep] = []
        var skipped: [SkippedBlock] = []
        var i = 0
        var lastNonBlank = ""
        while i < lines.count {
            let line = lines[i]
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            // A multi-line HTML comment: nothing in it is a block.
            if trimmed.contains("<!--") && !trimmed.contains("-->") {
                while i < lines.count && !lines[i].contains("-->") { i += 1 }
                i += 1
                lastNonBlank = ""
                continue
            }
            guard trimmed.hasPrefix("```") else {
                if !trimmed.isEmpty { lastNonBlank = trimmed }
                i += 1
                continue
            }
            let fenceLine = i + 1
            let info = trimmed.dropFirst(3).trimmingCharacters(in: .whitespaces)
            var body: [String] = []
            i += 1
            while i < lines.count && lines[i].trimmingCharacters(in: .whitespaces) != "```" {
                body.append(lines[i])
                i += 1
            }
            guard i < lines.count else { throw DocParseError(description: "\(name):\(fenceLine): the block is never closed") }
            i += 1
            let skipReason = Self.skipReason(lastNonBlank)
            lastNonBlank = ""
            guard info == "sh" || info == "console" else { continue }
            if let skipReason {
                skipped.append(SkippedBlock(line: fenceLine, reason: skipReason))
                continue
            }
            if info == "sh" {
                steps.append(DocStep(line: fenceLine + 1, command: body.joined(separator: "\n"), expected: nil))
                continue
            }
            var current: DocStep?
            var continuing = false
            for (offset, raw) in body.enumerated() {
                let n = fenceLine + 1 + offset
                if raw.hasPrefix("$ ") || raw == "$" {
                    if let c = current { steps.append(c) }
                    current = DocStep(line: n, command: String(raw.dropFirst(2)), expected: [])
                    continuing = true
                } else if continuing, raw.hasPrefix("> ") || raw == ">" {
                    current?.command += "\n" + String(raw.dropFirst(2))
                } else {
                    guard current != nil else { throw DocParseError(description: "\(name):\(n): output before any \"$ \" command") }
                    continuing = false
                    current?.expected?.append(ExpectedLine(line: n, text: raw))
                }
            }
            if let c = current { steps.append(c) }
        }
        return (steps, skipped)
    }

    static func skipReason(_ line: String) -> String? {
        let prefix = "<!-- doc-runner: skip:"
        guard line.hasPrefix(prefix), line.hasSuffix("-->") else { return nil }
        return String(line.dropFirst(prefix.count).dropLast(3)).trimmingCharacters(in: .whitespaces)
    }

    // MARK: comparing

    nonisolated(unsafe) private static let typeID = try! NSRegularExpression(pattern: #"\b([a-z]{2,8})_[0-9a-hjkmnp-tv-z]{26}\b"#)
    nonisolated(unsafe) private static let timestamp = try! NSRegularExpression(
        pattern: #"\b\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})"#
    )
    nonisolated(unsafe) private static let spaces = try! NSRegularExpression(pattern: #"[ \t]+"#)

    /// IDs → `<prefix>`, RFC 3339 times → `<time>`, runs of spaces → one, no surrounding spaces.
    static func normalise(_ line: String) -> String {
        var s = line.replacingOccurrences(of: "\r", with: "")
        for (regex, template) in [(typeID, "<$1>"), (timestamp, "<time>"), (spaces, " ")] {
            s = regex.stringByReplacingMatches(in: s, range: NSRange(s.startIndex..., in: s), withTemplate: template)
        }
        return s.trimmingCharacters(in: .whitespaces)
    }

    /// A command's output as lines, normalised, without trailing blank lines.
    static func normaliseOutput(_ output: String) -> [String] {
        var lines = output.components(separatedBy: "\n").map(normalise)
        while lines.last == "" { lines.removeLast() }
        return lines
    }

    /// One normalised expected line against one normalised actual line; `…` matches any text
    /// (and the spaces next to it are optional).
    static func lineMatches(expected: String, actual: String) -> Bool {
        let pieces = expected.components(separatedBy: "…").enumerated().map { index, piece -> String in
            var p = Substring(piece)
            if index > 0 { while p.first == " " { p.removeFirst() } }
            if index < expected.components(separatedBy: "…").count - 1 { while p.last == " " { p.removeLast() } }
            return String(p)
        }
        if pieces.count == 1 { return expected == actual }
        guard actual.hasPrefix(pieces[0]) else { return false }
        var rest = actual.dropFirst(pieces[0].count)
        for piece in pieces.dropFirst().dropLast() where !piece.isEmpty {
            guard let r = rest.range(of: piece) else { return false }
            rest = rest[r.upperBound...]
        }
        return rest.hasSuffix(pieces.last!)
    }

    /// Nil when `actual` matches `expected` (both normalised; an expected line of just `…`
    /// matches any number of lines); otherwise the index of the furthest expected line no
    /// alignment got past (`expected.count`: the actual output has extra lines).
    static func mismatch(expected: [String], actual: [String]) -> Int? {
        var memo: [Int: Bool] = [:]
        var furthest = 0
        func match(_ i: Int, _ j: Int) -> Bool {
            let key = i * (actual.count + 1) + j
            if let m = memo[key] { return m }
            let result: Bool
            if i == expected.count {
                result = j == actual.count
            } else if expected[i] == "…" {
                result = match(i + 1, j) || (j < actual.count && match(i, j + 1))
            } else {
                result = j < actual.count && lineMatches(expected: expected[i], actual: actual[j]) && match(i + 1, j + 1)
            }
            if !result { furthest = max(furthest, i) }
            memo[key] = result
            return result
        }
        return match(0, 0) ? nil : furthest
    }

    // MARK: checking a run

    struct Failure: Sendable, CustomStringConvertible {
        /// The document line at fault: the expected line that did not match, or the command.
        var line: Int
        var message: String
        var description: String { message }
    }

    /// Compares every step's outcome with the document; one failure per failing step.
    static func check(_ steps: [DocStep], _ outcomes: [DocRunner.Outcome?], name: String) -> [Failure] {
        var failures: [Failure] = []
        for (index, step) in steps.enumerated() {
            let where_ = "\(name):\(step.line)"
            let shown = step.command.split(separator: "\n").first.map(String.init) ?? ""
            guard index < outcomes.count, let outcome = outcomes[index] else {
                failures.append(Failure(line: step.line, message: "\(where_): not reached: `\(shown)`"))
                continue
            }
            if outcome.timedOut {
                failures.append(
                    Failure(
                        line: step.line,
                        message: "\(where_): timed out after \(Int(outcome.seconds)) s: `\(shown)`\n\(outcome.output.suffix(3000))"
                    )
                )
                continue
            }
            guard let expected = step.expected else {
                if outcome.exitCode != 0 {
                    let failed = outcome.failedCommand.map { " at `\($0)`" } ?? ""
                    failures.append(
                        Failure(
                            line: step.line,
                            message:
                                "\(where_): the block failed (exit \(outcome.exitCode.map(String.init) ?? "?"))\(failed)\n\(outcome.output.suffix(3000))"
                        )
                    )
                }
                continue
            }
            var actual = normaliseOutput(outcome.output)
            if let code = outcome.exitCode, code != 0 { actual.append("[exit \(code)]") }
            var wanted = expected.map { normalise($0.text) }
            while wanted.last == "" { wanted.removeLast() }
            if let at = mismatch(expected: wanted, actual: actual) {
                let line = at < expected.count ? expected[at].line : (expected.last?.line ?? step.line)
                let what =
                    at < expected.count
                    ? "expected line \(name):\(line) `\(expected[at].text)` does not match"
                    : "the command printed more lines than the doc shows"
                failures.append(
                    Failure(
                        line: line,
                        message: "\(where_): $ \(step.command)\n  \(what); it printed (normalised):\n"
                            + actual.map { "    | \($0)" }.joined(separator: "\n")
                    )
                )
            }
        }
        return failures
    }
}

/// Runs a document's steps in one bash session (its own process group), each with a timeout.
enum DocRunner {
    struct Config: Sendable {
        /// The directory the session starts in.
        var workDir: String
        /// Where the driver script and the steps' outputs go.
        var stepsDir: String
        var environment: [String: String]
        var consoleTimeout: Double = 60
        var shTimeout: Double = 180
        var totalTimeout: Double = 480
    }

    struct Outcome: Sendable {
        var output: String
        /// Nil if the session died in this step without an exit code (killed).
        var exitCode: Int32?
        var seconds: Double
        var failedCommand: String?
        var timedOut = false
    }

    static func quote(_ s: String) -> String { "'" + s.replacingOccurrences(of: "'", with: #"'\''"#) + "'" }

    /// The bash script that runs every step, recording each one's start, output and exit code.
    static func script(_ steps: [DocStep], config: Config) -> String {
        let dir = quote(config.stepsDir)
        var s = "cd \(quote(config.workDir))\nset -e\ntrap 'echo \"$BASH_COMMAND\" > \(dir)/failed-command' ERR\n"
        for (i, step) in steps.enumerated() {
            s += "# step \(i), line \(step.line)\n: > \(dir)/\(i).start\n"
            if step.isConsole {
                s += "if {\n\(step.command)\n} > \(dir)/\(i).out 2>&1 < /dev/null; then echo 0 > \(dir)/\(i).rc; else echo $? > \(dir)/\(i).rc; fi\n"
            } else {
                s += "{\n\(step.command)\n} > \(dir)/\(i).out 2>&1 < /dev/null\necho 0 > \(dir)/\(i).rc\n"
            }
        }
        s += ": > \(dir)/all-done\n"
        return s
    }

    /// Runs `steps`; returns one outcome per step (nil: not reached). Kills the session's whole
    /// process group at the end, whatever happened. `log` gets a line per step as it finishes.
    static func run(_ steps: [DocStep], config: Config, name: String, log: @Sendable (String) -> Void) async throws -> [Outcome?] {
        let fm = FileManager.default
        try fm.createDirectory(atPath: config.stepsDir, withIntermediateDirectories: true)
        let driver = "\(config.stepsDir)/driver.sh"
        try script(steps, config: config).write(toFile: driver, atomically: true, encoding: .utf8)
        func read(_ file: String) -> String? { try? String(contentsOfFile: "\(config.stepsDir)/\(file)", encoding: .utf8) }
        func exists(_ file: String) -> Bool { fm.fileExists(atPath: "\(config.stepsDir)/\(file)") }
        // setsid: the session leads its own process group, so that everything the blocks start
        // in the background (servers, nats-server, fake Kubos) goes with one kill.
        let session = try ChildProcess(
            "/usr/bin/setsid",
            ["bash", driver],
            environment: config.environment,
            outputPath: "\(config.stepsDir)/driver.log"
        )
        defer {
            kill(-session.pid, SIGKILL)
            session.signal(SIGKILL)
            session.wait()
        }
        var outcomes: [Outcome?] = Array(repeating: nil, count: steps.count)
        var starts: [Int: ContinuousClock.Instant] = [:]
        let begin = ContinuousClock.now
        var reported = 0
        func seconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18 }
        func finish(_ i: Int, code: Int32?, timedOut: Bool) {
            let elapsed = starts[i].map { seconds(ContinuousClock.now - $0) } ?? 0
            outcomes[i] = Outcome(
                output: read("\(i).out") ?? "",
                exitCode: code,
                seconds: elapsed,
                failedCommand: code == 0 ? nil : read("failed-command")?.trimmingCharacters(in: .whitespacesAndNewlines),
                timedOut: timedOut
            )
        }
        func report(upTo end: Int) {
            while reported < end {
                let step = steps[reported]
                let shown = (step.isConsole ? "$ " : "") + (step.command.split(separator: "\n").first.map(String.init) ?? "")
                if let o = outcomes[reported] {
                    let status = o.timedOut ? "TIMED OUT" : (o.exitCode.map { "exit \($0)" } ?? "killed")
                    log(String(format: "%@:%d  %5.1fs  %@  %@", name, step.line, o.seconds, status, String(shown.prefix(100))))
                }
                reported += 1
            }
        }
        while true {
            let now = ContinuousClock.now
            for i in 0..<steps.count where starts[i] == nil && exists("\(i).start") { starts[i] = now }
            for i in 0..<steps.count where outcomes[i] == nil && starts[i] != nil {
                if let rc = read("\(i).rc").flatMap({ Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }) {
                    finish(i, code: rc, timedOut: false)
                }
            }
            report(upTo: outcomes.prefix { $0 != nil }.count)
            let running = (0..<steps.count).last { starts[$0] != nil && outcomes[$0] == nil }
            if let code = session.poll() {
                // Finished, or died in the step that has no exit code (set -e, exit).
                if let i = running { finish(i, code: code == 0 ? 1 : code, timedOut: false) }
                break
            }
            if let i = running, let start = starts[i] {
                let limit = steps[i].isConsole ? config.consoleTimeout : config.shTimeout
                if seconds(now - start) > limit || seconds(now - begin) > config.totalTimeout {
                    kill(-session.pid, SIGKILL)
                    session.wait()
                    finish(i, code: nil, timedOut: true)
                    break
                }
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        report(upTo: steps.count)
        return outcomes
    }
}
