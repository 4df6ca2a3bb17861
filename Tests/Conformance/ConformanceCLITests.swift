import AnchorageTesting
import ConformanceKit
import Foundation
import Hummingbird
import HummingbirdTesting
import LocalProcess
import Testing

/// The `anchorage-conformance` executable as CI runs it: exit statuses, reports validated by
/// external tools, the matrix, and interruption with real signals.
@Suite(.serialized) struct ConformanceCLITests {
    static let tokens = ("minimal-a-\(UInt32.random(in: 0 ... .max))", "minimal-b-\(UInt32.random(in: 0 ... .max))")

    static func run(_ args: [String]) throws -> (code: Int32, output: String) {
        try #require(FileManager.default.isExecutableFile(atPath: ConformanceExecutable.path), "build anchorage-conformance first (swift build)")
        let fixtures = FixtureSuite.directory.path
        return try ChildProcess.run(ConformanceExecutable.path, args + ["--fixtures", fixtures])
    }

    static func summary(_ output: String) -> String? {
        output.split(separator: "\n").last { $0.hasPrefix("conformance: required ") }.map(String.init)
    }

    /// The spec-faithful minimal service (required rules only) passes: exit 0; under --strict
    /// its recommended failures count: exit 1. The strict run's four reports validate.
    @Test func minimalImplementationPassesAndFailsUnderStrict() async throws {
        // In process first, to name any required case the minimal service fails.
        let report = try await FaultyTarget.run(nil, extras: false)
        for r in report.results where r.outcome == .failed && r.level == .required {
            Issue.record("minimal service fails required \(r.id) at \(r.failedStep ?? "?"): \(r.failures.joined(separator: "; "))")
        }
        #expect(report.tally(.recommended).failed > 0, "the minimal service has none of the recommended extras")

        let dir = try ConformanceExecutable.scratch("minimal")
        defer { try? FileManager.default.removeItem(at: dir) }
        let (a, b) = Self.tokens
        try await TransportServer.serve(InMemoryPinningService(tokens: [a, b], extras: false)) { base in
            let common = ["--target", base, "--token", a, "--token-b", b, "--state-dir", dir.appendingPathComponent("state").path]
            let plain = try Self.run(common)
            let line = try #require(Self.summary(plain.output), "\(plain.output)")
            #expect(plain.code == 0, "\(line)\n\(plain.output.suffix(3000))")
            #expect(
                line.range(of: #"^conformance: required (\d+)/\1, recommended \d+/\d+, anchorage \d+/\d+"#, options: .regularExpression) != nil,
                "\(line)"
            )
            #expect(!line.contains("recommended 18/18"), "the minimal service must miss recommended extras: \(line)")

            let reports = ["r.json", "r.xml", "r.html", "r.md"].map { dir.appendingPathComponent($0).path }
            let strict = try Self.run(common + ["--strict"] + reports.flatMap { ["--report", $0] })
            #expect(strict.code == 1, "\(Self.summary(strict.output) ?? strict.output.suffix(2000).description)")

            let json = dir.appendingPathComponent("r.json")
            let jsonProblems = try ExternalValidators.jsonProblems(json, schema: FixtureSuite.directory.appendingPathComponent("report.schema.json"))
            #expect(jsonProblems == nil, "JSON report vs report.schema.json: \(jsonProblems ?? "")")
            let document = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: json)) as? [String: Any])
            let summary = try #require(document["summary"] as? [String: Any])
            #expect(summary["success"] as? Bool == false)
            #expect(summary["line"] as? String == Self.summary(strict.output))

            let junitProblems = try ExternalValidators.junitProblems(dir.appendingPathComponent("r.xml"))
            #expect(junitProblems == nil, "JUnit report vs junit.xsd: \(junitProblems ?? "")")
            let junit = try String(contentsOf: dir.appendingPathComponent("r.xml"), encoding: .utf8)
            #expect(junit.contains("<failure message=") && junit.contains("type=\"recommended\""), "strict: recommended failures are JUnit failures")

            let html = try String(contentsOf: dir.appendingPathComponent("r.html"), encoding: .utf8)
            #expect(html.hasPrefix("<!DOCTYPE html>") && html.contains("<html lang=\"en\">"))
            #expect(!html.contains("<script") && !html.contains("src=\"http") && !html.contains("href=\"http"), "self-contained, no scripts")
            let markdown = try String(contentsOf: dir.appendingPathComponent("r.md"), encoding: .utf8)
            #expect(markdown.contains("## By level"))
        }
    }

    /// The JUnit report of a passing run validates too, and marks no non-binding case as failed.
    @Test func junitOfANonStrictRunHasNoFailures() async throws {
        let dir = try ConformanceExecutable.scratch("junit")
        defer { try? FileManager.default.removeItem(at: dir) }
        let (a, b) = Self.tokens
        try await TransportServer.serve(InMemoryPinningService(tokens: [a, b], extras: false)) { base in
            let file = dir.appendingPathComponent("j.xml")
            let result = try Self.run([
                "--target", base, "--token", a, "--token-b", b, "--only", "optional/*", "--report", file.path, "--state-dir", dir.path,
            ])
            #expect(result.code == 0, "\(result.output.suffix(2000))")
            let problems = try ExternalValidators.junitProblems(file)
            #expect(problems == nil, "\(problems ?? "")")
            let xml = try String(contentsOf: file, encoding: .utf8)
            #expect(!xml.contains("<failure"))
            #expect(xml.contains("not binding: recommended case failed"))
        }
    }

    @Test func dryRunListsRequestsAndSendsNone() throws {
        let result = try Self.run(["--dry-run", "--only", "pins-add/*"])
        #expect(result.code == 0, "\(result.output)")
        #expect(result.output.contains("v1.0.0/pins-add/add-minimal-pin [required]"))
        #expect(result.output.contains("  POST /pins  {\"cid\":\"{{cid:1}}\"}  [auth tenantA]"), "\(result.output.prefix(2000))")
        #expect(result.output.contains("nothing was sent"))
    }

    /// Three targets in one invocation: the reference server, the minimal service and the
    /// reference server with a planted defect (refuses limit=1000). The matrix shows the
    /// defect in exactly one cell. With CONFORMANCE_MATRIX_OUT set, the HTML is copied there
    /// (docs/conformance.md's screenshot).
    @Test func matrixOverThreeTargetsShowsThePlantedDefectInOneCell() async throws {
        let dir = try ConformanceExecutable.scratch("matrix")
        defer { try? FileManager.default.removeItem(at: dir) }
        let (a, b) = Self.tokens
        try await FixtureSuite.withPinningNode { node, router in
            let refA = try await node.token(org: "matrix-ref-a", ttlSeconds: 86400)
            let refB = try await node.token(org: "matrix-ref-b", ttlSeconds: 86400)
            let defA = try await node.token(org: "matrix-defect-a", ttlSeconds: 86400)
            let defB = try await node.token(org: "matrix-defect-b", ttlSeconds: 86400)
            for (name, token) in [("ref-a", refA), ("ref-b", refB), ("def-b", defB), ("min-a", a), ("min-b", b)] {
                try token.write(to: dir.appendingPathComponent(name), atomically: true, encoding: .utf8)
            }
            let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
            try await app.test(.live) { client in
                let reference = "http://127.0.0.1:\(try #require(client.port))"
                let upstream = try URLTransport(baseURL: reference)
                try await TransportServer.serve(LimitCappingTransport(inner: upstream)) { defective in
                    try await TransportServer.serve(InMemoryPinningService(tokens: [a, b], extras: false)) { minimal in
                        let yaml = """
                            targets:
                              - name: reference
                                url: \(reference)
                                token-file: ref-a
                                token-b-file: ref-b
                                capabilities: [resolves-cids]
                              - name: minimal
                                url: \(minimal)
                                token-file: min-a
                                token-b-file: min-b
                              - name: reference-with-defect
                                url: \(defective)
                                token-env: MATRIX_DEFECT_TOKEN
                                token-b-file: def-b
                                capabilities: [resolves-cids]

                            """
                        let targets = dir.appendingPathComponent("targets.yaml")
                        try yaml.write(to: targets, atomically: true, encoding: .utf8)
                        let html = dir.appendingPathComponent("matrix.html")
                        let md = dir.appendingPathComponent("matrix.md")
                        var environment = ProcessInfo.processInfo.environment
                        environment["MATRIX_DEFECT_TOKEN"] = defA
                        let (code, output) = try ChildProcess.run(
                            ConformanceExecutable.path,
                            [
                                "--targets", targets.path, "--matrix", html.path, "--matrix", md.path, "--fixtures", FixtureSuite.directory.path,
                                "--state-dir", dir.appendingPathComponent("state").path,
                            ],
                            environment: environment
                        )
                        #expect(code == 1, "the defective target fails a required case: \(output.suffix(3000))")

                        // Markdown rows: | level | `case` | reference | minimal | defect |
                        let rows = try String(contentsOf: md, encoding: .utf8).split(separator: "\n").map {
                            $0.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
                        }
                        .filter { $0.count == 5 && ["required", "recommended", "anchorage"].contains($0[0]) }
                        #expect(rows.count > 100)
                        #expect(rows.allSatisfy { $0[2] == "✅" }, "the reference passes every case: \(rows.filter { $0[2] != "✅" })")
                        let defectCells = rows.filter { $0[4] != $0[2] }
                        #expect(defectCells.count == 1, "\(defectCells)")
                        #expect(defectCells.first?[1].hasPrefix("`pins-list/list-limit-1000-is-accepted`") == true, "\(defectCells)")
                        #expect(defectCells.first?[4] == "❌")
                        #expect(rows.filter { $0[0] == "required" }.allSatisfy { $0[3] != "❌" }, "the minimal service fails no required case")

                        let page = try String(contentsOf: html, encoding: .utf8)
                        #expect(page.components(separatedBy: ">✗ FAIL<").count - 1 == 1, "exactly one binding failure cell")
                        #expect(page.contains("list-limit-1000-is-accepted"))
                        if let out = ProcessInfo.processInfo.environment["CONFORMANCE_MATRIX_OUT"] {
                            try? FileManager.default.removeItem(atPath: out)
                            try FileManager.default.copyItem(at: html, to: URL(fileURLWithPath: out))
                        }
                    }
                }
                try await upstream.shutdown()
            }
        }
    }

    /// SIGTERM halfway: the run stops, deletes what it created, exits 143; nothing is left on
    /// the target. SIGKILL halfway leaves pins, which --cleanup-only RUN_ID then deletes.
    @Test func interruptedRunsLeaveNoPins() async throws {
        let dir = try ConformanceExecutable.scratch("interrupt")
        defer { try? FileManager.default.removeItem(at: dir) }
        try await FixtureSuite.withPinningNode { node, router in
            let tokenA = try await node.token(org: "interrupt-a", ttlSeconds: 86400)
            let tokenB = try await node.token(org: "interrupt-b", ttlSeconds: 86400)
            let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
            try await app.test(.live) { client in
                let reference = try URLTransport(baseURL: "http://127.0.0.1:\(try #require(client.port))")
                let counting = CountingTransport(reference)
                try await TransportServer.serve(counting) { base in
                    func pins() async throws -> Int {
                        var total = 0
                        for token in [tokenA, tokenB] {
                            let response = try await reference.send(
                                ConformanceRequest(
                                    method: "GET",
                                    path: "/pins?limit=1000&status=failed%2Cpinned%2Cpinning%2Cqueued",
                                    headers: [("Authorization", "Bearer \(token)")]
                                )
                            )
                            total += Int(try #require(try JSONParser.parse(response.body)["count"]?.intValue))
                        }
                        return total
                    }
                    let state = dir.appendingPathComponent("state").path
                    let args = [
                        "--target", base, "--token", tokenA, "--token-b", tokenB, "--max-rps", "20", "--state-dir", state, "--fixtures",
                        FixtureSuite.directory.path,
                    ]
                    for (signo, label) in [(SIGTERM, "SIGTERM"), (SIGKILL, "SIGKILL")] {
                        let before = await counting.pinsCreated
                        let child = try ChildProcess(ConformanceExecutable.path, args)
                        let deadline = ContinuousClock.now + .seconds(60)
                        while await counting.pinsCreated < before + 25, ContinuousClock.now < deadline, child.poll() == nil {
                            await ChildProcess.nap(.milliseconds(20))
                        }
                        #expect(try await pins() > 0, "\(label): the run holds pins when it is signalled")
                        child.signal(signo)
                        let code = await child.waitForExit(timeout: .seconds(60))
                        let output = child.output
                        let runID = try #require(output.firstMatch(of: /conformance: run ([0-9a-f]{8})/)?.1, "\(output.prefix(500))")
                        if signo == SIGTERM {
                            #expect(code == 143, "\(output.suffix(2000))")
                            #expect(Self.summary(output)?.hasSuffix("interrupted") == true, "\(output.suffix(1000))")
                            #expect(try await pins() == 0, "SIGTERM left pins behind: \(output.suffix(2000))")
                            #expect(!FileManager.default.fileExists(atPath: "\(state)/\(runID).journal"), "a clean stop removes its journal")
                        } else {
                            #expect(code == 137)
                            #expect(try await pins() > 0, "SIGKILL leaves pins (no chance to clean up)")
                            let cleanup = try Self.run([
                                "--cleanup-only", String(runID), "--target", base, "--token", tokenA, "--token-b", tokenB, "--state-dir", state,
                            ])
                            #expect(cleanup.code == 0, "\(cleanup.output)")
                            #expect(try await pins() == 0, "--cleanup-only left pins behind: \(cleanup.output)")
                        }
                        unlink(child.outputPath)
                    }
                }
                try await reference.shutdown()
            }
        }
    }
}

/// `--max-rps` spacing and `Retry-After` honoured up to the cap (URLTransport).
struct PolitenessTests {
    @Test func retryAfterIsHonouredUpToTheCap() async throws {
        let limited = ConformanceResponse(status: 429, headers: [("Retry-After", "30")], body: Array(#"{"error":{"reason":"RATE_LIMITED"}}"#.utf8))
        let script = ScriptedTransport([limited])
        try await TransportServer.serve(script) { base in
            let transport = try URLTransport(baseURL: base, configuration: .init(maxWait: .milliseconds(400)))
            let start = ContinuousClock.now
            let response = try await transport.send(ConformanceRequest(method: "GET", path: "/pins"))
            let elapsed = ContinuousClock.now - start
            try await transport.shutdown()
            #expect(response.status == 200, "retried after the 429")
            #expect(elapsed >= .milliseconds(400) && elapsed < .seconds(10), "waited the capped 0.4 s, not 30 s: \(elapsed)")
            #expect(await script.arrivals.count == 2)
        }
    }

    @Test func maxRPSSpacesRequests() async throws {
        let script = ScriptedTransport([])
        try await TransportServer.serve(script) { base in
            let transport = try URLTransport(baseURL: base, configuration: .init(minInterval: .milliseconds(200)))
            for _ in 0..<6 { _ = try await transport.send(ConformanceRequest(method: "GET", path: "/pins")) }
            try await transport.shutdown()
            let arrivals = await script.arrivals
            #expect(arrivals.count == 6)
            for (earlier, later) in zip(arrivals, arrivals.dropFirst()) {
                #expect(later - earlier >= .milliseconds(190), "requests at most 5 per second: \(later - earlier)")
            }
        }
    }
}
