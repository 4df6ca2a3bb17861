import Foundation
import LocalProcess
import ProcessCluster
import Testing

/// docs/operations.md is executable: every ```sh and ```console block is run, in order, against
/// a scratch 3-node cluster, and what each command prints is compared with what the doc shows
/// (OperationsDoc.swift; the conventions are at the top of the doc).
@Suite(.serialized) struct OperationsDocTests {
    static let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    /// ANCHORAGE_DOC_RUNNER_DOC: run another file instead (e.g. a copy with a deliberately wrong line).
    static let docPath = ProcessInfo.processInfo.environment["ANCHORAGE_DOC_RUNNER_DOC"] ?? "\(repoRoot)/docs/operations.md"
    static let docName = ProcessInfo.processInfo.environment["ANCHORAGE_DOC_RUNNER_DOC"] ?? "docs/operations.md"

    /// The blocks the doc may mark `<!-- doc-runner: skip: … -->`: a new skipped block fails the
    /// test until it is added here (so nothing stops being run silently).
    static let knownSkips: Set<String> = [
        "needs your own PostgreSQL server (the test uses `make db`)"
    ]

    /// The fixed ports the doc's cluster uses (nats-server, the fake Kubos, the nodes).
    static let docPorts = [4222, 5001, 5002, 5003, 8081, 8082, 8083]

    /// Cluster timers for the doc's nodes and commands, so drains and rebalances take seconds.
    static let timings: [String: String] = [
        "ANCHORAGE_CLUSTER_HEARTBEAT_INTERVAL": "1s", "ANCHORAGE_CLUSTER_LIVE_AFTER": "3s",
        "ANCHORAGE_CLUSTER_NODE_LOST_AFTER": "20s", "ANCHORAGE_CLUSTER_LEADER_LEASE_TTL": "4s",
        "ANCHORAGE_CLUSTER_LEADER_RENEW_INTERVAL": "1s", "ANCHORAGE_CLUSTER_DRAIN_GRACE_PERIOD": "2s",
        "ANCHORAGE_CLUSTER_SWEEP_INTERVAL": "1s", "ANCHORAGE_CLUSTER_REBALANCE_INTERVAL": "1s",
        "ANCHORAGE_CLUSTER_RECONCILE_INTERVAL": "3s", "ANCHORAGE_CLUSTER_TICK_MILLISECONDS": "100",
        "ANCHORAGE_WORKER_POLL_MILLISECONDS": "200",
    ]

    // MARK: the doc itself

    @Test func operationsDocRunsAsWritten() async throws {
        let binDir = ClusterHarness.binDir.path
        for exe in ["anchorage", "fake-kubo"] {
            try #require(FileManager.default.isExecutableFile(atPath: "\(binDir)/\(exe)"), "build the executables first (swift build)")
        }
        let busy = Self.docPorts.filter { FreePort.accepts(host: "127.0.0.1", port: $0) }
        try #require(
            busy.isEmpty,
            """
            ports \(busy) are in use; docs/operations.md's cluster needs 4222, 5001-5003 and 8081-8083 \
            (a `make run` dev node uses 4222 and 5001): stop what listens there to run this test
            """
        )
        let text = try String(contentsOfFile: Self.docPath, encoding: .utf8)
        let (steps, skipped) = try OperationsDoc.parse(text, name: Self.docName)
        for s in skipped { print("[doc-runner] SKIPPED \(Self.docName):\(s.line): \(s.reason)") }
        #expect(Set(skipped.map(\.reason)) == Self.knownSkips, "the doc's skipped blocks changed: \(skipped)")
        #expect(steps.count > 20)

        let root = FileManager.default.temporaryDirectory.appendingPathComponent("anchorage-doc-\(getpid())-\(UInt32.random(in: 0 ... .max))").path
        let work = "\(root)/checkout"
        let fm = FileManager.default
        try fm.createDirectory(atPath: "\(work)/.anchorage", withIntermediateDirectories: true)
        // The postgres user (PostgreSQL runs as it when the tests run as root) must reach the dev dir.
        for dir in [root, work, "\(work)/.anchorage"] { chmod(dir, 0o755) }
        for link in ["Makefile", "scripts", ".anchorage/venv", ".anchorage/prometheus"]
        where fm.fileExists(atPath: "\(Self.repoRoot)/\(link)") {
            try fm.createSymbolicLink(atPath: "\(work)/\(link)", withDestinationPath: "\(Self.repoRoot)/\(link)")
        }
        var env = ProcessInfo.processInfo.environment.filter {
            !($0.key.hasPrefix("ANCHORAGE_") && $0.key != "ANCHORAGE_PG_BIN") && !$0.key.hasPrefix("MAKE") && $0.key != "MFLAGS"
        }
        env["ANCHORAGE_BIN_DIR"] = binDir
        env["ANCHORAGE_DEV_DIR"] = "\(work)/.anchorage/dev"
        env["ANCHORAGE_DEV_PG_PORT"] = String(try FreePort.loopback())
        for (k, v) in Self.timings { env[k] = v }
        let config = DocRunner.Config(workDir: work, stepsDir: "\(root)/steps", environment: env)

        let started = ContinuousClock.now
        let outcomes: [DocRunner.Outcome?]
        do {
            outcomes = try await DocRunner.run(steps, config: config, name: Self.docName) { print("[doc-runner] \($0)") }
        } catch {
            Self.stopDevPostgres(env: env, work: work)
            throw error
        }
        Self.stopDevPostgres(env: env, work: work)
        print("[doc-runner] \(steps.count) commands and blocks in \(ContinuousClock.now - started)")

        let failures = OperationsDoc.check(steps, outcomes, name: Self.docName)
        for f in failures { Issue.record("\(f)") }
        if failures.isEmpty {
            try? fm.removeItem(atPath: root)
        } else {
            for n in 1...3 {
                let log = (try? String(contentsOfFile: "\(work)/.anchorage/cluster/node\(n)/serve.log", encoding: .utf8)) ?? ""
                print("---- node\(n) serve.log (tail) ----\n\(log.suffix(3000))")
            }
            print("[doc-runner] scratch directory kept: \(root)")
            return
        }

        // A deliberately wrong line in a copy of the doc fails, naming that line (checked against
        // this run's outputs: the commands are the same, only what they should print differs).
        let wrong = "pruned 0 entries"
        let lines = text.components(separatedBy: "\n")
        let at = try #require(lines.firstIndex(of: wrong))
        var copy = lines
        copy[at] = "pruned 0 entry"
        let mutated = try OperationsDoc.parse(copy.joined(separator: "\n"), name: "copy of \(Self.docName)")
        #expect(mutated.steps.map(\.command) == steps.map(\.command))
        let caught = OperationsDoc.check(mutated.steps, outcomes, name: "copy of \(Self.docName)")
        #expect(caught.map(\.line) == [at + 1], "\(caught)")
        #expect(caught.first?.message.contains("`pruned 0 entry` does not match") == true, "\(caught)")
    }

    static func stopDevPostgres(env: [String: String], work: String) {
        _ = try? ChildProcess.run("/bin/bash", ["\(work)/scripts/dev-run.sh", "--stop-only"], environment: env)
    }

    // MARK: the runner on small documents (fast)

    static func runSmall(_ doc: String, consoleTimeout: Double = 20) async throws -> [OperationsDoc.Failure] {
        let (steps, _) = try OperationsDoc.parse(doc, name: "small.md")
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("anchorage-doc-small-\(getpid())-\(UInt32.random(in: 0 ... .max))")
            .path
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        var config = DocRunner.Config(workDir: root, stepsDir: "\(root)/steps", environment: ProcessInfo.processInfo.environment)
        config.consoleTimeout = consoleTimeout
        config.shTimeout = consoleTimeout
        let outcomes = try await DocRunner.run(steps, config: config, name: "small.md") { print("[doc-runner] \($0)") }
        return OperationsDoc.check(steps, outcomes, name: "small.md")
    }

    @Test func aWrongExpectedLineFailsAtThatLine() async throws {
        let doc = """
            Text.

            ```console
            $ echo hello nod_01m94er81vefqaprcgkrkhvqrm at 2026-12-06T01:17:00.167000Z
            hello nod_01m89pfxa6esgv627tcdvxqh33 at 2020-01-01T00:00:00Z
            $ X=5; printf 'a    b\\n\\n'
            a b
            $ false
            [exit 1]
            $ for i in 1 2; do
            >   echo "line $i"
            > done
            line 1
            line 2
            ```

            ```yaml
            not: run
            ```

            <!-- doc-runner: skip: an example -->
            ```sh
            exit 3
            ```

            ```sh
            Y=$((X + 1))
            ```

            ```console
            $ echo "$Y"; printf 'one\\ntwo\\nthree\\n'
            6
            …
            three
            $ echo "maintenance ON for 3 min (by ops): x"
            maintenance ON for … (by …): x
            $ echo the right words
            the wrong words
            $ echo still run
            still run
            ```
            """
        let parsed = try OperationsDoc.parse(doc, name: "small.md")
        #expect(parsed.skipped == [SkippedBlock(line: 22, reason: "an example")])
        #expect(parsed.steps.count == 9)
        let failures = try await Self.runSmall(doc)
        #expect(failures.map(\.line) == [38], "\(failures)")
        #expect(failures.first?.message.contains("`the wrong words` does not match") == true)
        #expect(failures.first?.message.contains("| the right words") == true)
    }

    @Test func aFailingShBlockNamesTheCommandAndStopsTheRun() async throws {
        let doc = """
            ```sh
            true
            false
            echo never
            ```

            ```console
            $ echo not reached
            not reached
            ```
            """
        let failures = try await Self.runSmall(doc)
        #expect(failures.count == 2, "\(failures)")
        #expect(failures.first?.message.contains("exit 1") == true, "\(failures)")
        #expect(failures.first?.message.contains("at `false`") == true, "\(failures)")
        #expect(failures.last?.message.contains("not reached") == true)
    }

    @Test func aHangingCommandTimesOutAndItsBackgroundChildrenAreKilled() async throws {
        let marker = FileManager.default.temporaryDirectory.appendingPathComponent("anchorage-doc-bg-\(getpid())").path
        let doc = """
            ```sh
            (sleep 5; touch \(marker)) > /dev/null 2>&1 &
            ```

            ```console
            $ sleep 30
            ```
            """
        let started = ContinuousClock.now
        let failures = try await Self.runSmall(doc, consoleTimeout: 1)
        #expect(ContinuousClock.now - started < .seconds(4))
        #expect(failures.map(\.line) == [6], "\(failures)")
        #expect(failures.first?.message.contains("timed out") == true)
        try await Task.sleep(for: .seconds(5))
        #expect(!FileManager.default.fileExists(atPath: marker), "the background job outlived the run")
        try? FileManager.default.removeItem(atPath: marker)
    }

    // MARK: normalising and matching

    @Test func normaliserMasksIDsTimesAndTableWidths() {
        #expect(
            OperationsDoc.normalise("nod_01m94er81vefqaprcgkrkhvqrm  node1   active  2026-12-06T01:16:52.969510Z  ")
                == "<nod> node1 active <time>"
        )
        #expect(OperationsDoc.normalise("pin_01m94etmqffgkswfb1vdk8ceax tok_01m94esqvbekdvafqg2jd32cd9") == "<pin> <tok>")
        #expect(OperationsDoc.normalise("expires 2026-11-25T16:40:00Z, at 2026-11-25T16:40:00+01:00") == "expires <time>, at <time>")
        // Not an ID: wrong length, or not Crockford base32 (no i, l, o, u).
        #expect(OperationsDoc.normalise("nod_01m94er81vefq nod_01m94er81vefqaprcgkrkhvqri") == "nod_01m94er81vefq nod_01m94er81vefqaprcgkrkhvqri")
        #expect(OperationsDoc.lineMatches(expected: "NODE NAME …", actual: "NODE NAME STATUS LAST HEARTBEAT"))
        #expect(OperationsDoc.lineMatches(expected: "a … c … e", actual: "a b c d e"))
        #expect(!OperationsDoc.lineMatches(expected: "a … c … e", actual: "a b d e"))
        #expect(OperationsDoc.lineMatches(expected: "… move(s) planned", actual: "7 move(s) planned"))
        #expect(!OperationsDoc.lineMatches(expected: "maintenance OFF", actual: "maintenance ON"))
        #expect(OperationsDoc.mismatch(expected: ["a", "…", "z"], actual: ["a", "z"]) == nil)
        #expect(OperationsDoc.mismatch(expected: ["a", "…", "z"], actual: ["a", "b", "c", "z"]) == nil)
        #expect(OperationsDoc.mismatch(expected: ["a", "…", "z"], actual: ["a", "b"]) == 2)
        #expect(OperationsDoc.mismatch(expected: ["a", "b"], actual: ["a", "c"]) == 1)
        #expect(OperationsDoc.mismatch(expected: ["a"], actual: ["a", "extra"]) == 1)
    }
}
