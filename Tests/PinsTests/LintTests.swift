import Foundation
import Testing

/// Source lints that keep the core honest: the simulator can only drive what reaches time,
/// randomness and tasks through the seams, and the core must not depend on any adapter.
@Suite struct LintTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    /// Modules holding domain and cluster logic. Adapters (HTTP, Postgres, CLI, Live, Sim) are exempt.
    static let coreModules = ["Seams", "Pins", "Tokens", "Worker", "Cluster"]
    static let banned: [(String, String)] = [
        (#"\bDate\(\)"#, "Date()"), (#"\bUUID\(\)"#, "UUID()"), (#"Task\.sleep"#, "Task.sleep"),
        (#"ContinuousClock\(\)"#, "ContinuousClock()"), (#"SuspendingClock\(\)"#, "SuspendingClock()"),
        (#"\.random\("#, "default random"), (#"SystemRandomNumberGenerator"#, "the system RNG"),
        (#"\bTask\s*\{"#, "an unstructured Task"), (#"Task\.detached"#, "Task.detached"), (#"Date\.now"#, "Date.now"),
    ]
    static let forbiddenImports = [
        "Hummingbird", "PostgresNIO", "NIOCore", "NIOPosix", "AsyncHTTPClient", "PostgresStore", "PinsHTTP", "Live", "DeterministicSeams",
        "SimKernel", "SimBus",
    ]

    static func sources(_ module: String) throws -> [(String, String)] {
        let dir = root.appendingPathComponent("Sources/\(module)")
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".swift") }
        return try files.sorted().map { ("\(module)/\($0)", try String(contentsOf: dir.appendingPathComponent($0), encoding: .utf8)) }
    }

    @Test(arguments: coreModules)
    func coreReachesTimeRandomnessAndTasksOnlyThroughSeams(_ module: String) throws {
        for (path, text) in try Self.sources(module) {
            for (n, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                let code = line.split(separator: "//", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
                for (pattern, name) in Self.banned where code.contains(try Regex(pattern)) {
                    Issue.record("\(path):\(n + 1) uses \(name); go through the WallClock/Entropy seams")
                }
            }
        }
    }

    @Test(arguments: coreModules)
    func coreImportsNoAdapter(_ module: String) throws {
        for (path, text) in try Self.sources(module) {
            for line in text.split(separator: "\n") where line.hasPrefix("import ") {
                let name = line.dropFirst("import ".count).trimmingCharacters(in: .whitespaces)
                #expect(!Self.forbiddenImports.contains(name), "\(path) imports \(name)")
            }
        }
    }

    /// Child processes are started and reaped only by LocalProcess's `ChildProcess`
    /// (posix_spawn + waitpid): Foundation's `Process` hung in `waitUntilExit()` on `runuser`
    /// children here, and a second reaper would steal exit statuses.
    static let spawning: [(String, String)] = [
        (#"\bProcess\(\)"#, "Foundation's Process"), (#"Foundation\.Process\b"#, "Foundation's Process"),
        (#"\bposix_spawnp?\("#, "posix_spawn"), (#"\bfork\(\)"#, "fork()"), (#"\bwait(pid|id)?\(-1\b"#, "a wait for any child"),
    ]

    @Test func childProcessesGoThroughLocalProcess() throws {
        let fm = FileManager.default
        for top in ["Sources", "Tests"] {
            let dir = Self.root.appendingPathComponent(top)
            guard let walker = fm.enumerator(atPath: dir.path) else { continue }
            for case let relative as String in walker
            where relative.hasSuffix(".swift") && !relative.hasPrefix("LocalProcess/") && relative != "PinsTests/LintTests.swift" {
                let text = try String(contentsOf: dir.appendingPathComponent(relative), encoding: .utf8)
                // Swift Regex is slow: only files with a candidate substring get the per-line scan.
                guard ["Process()", "Foundation.Process", "posix_spawn", "fork()", "(-1"].contains(where: text.contains) else { continue }
                for (n, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                    let code = line.split(separator: "//", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
                    for (pattern, name) in Self.spawning where code.contains(try Regex(pattern)) {
                        Issue.record("\(top)/\(relative):\(n + 1) uses \(name); use LocalProcess.ChildProcess")
                    }
                }
            }
        }
    }

    @Test func theSpawnLintCatchesAViolation() throws {
        let sample = "let p = Process()\nposix_spawn(&pid, path, nil, nil, argv, envp)\nlet q = ChildProcess(path, [])"
        let hits = try Self.spawning.filter { sample.contains(try Regex($0.0)) }.map(\.1)
        #expect(hits == ["Foundation's Process", "posix_spawn"])
    }

    /// The node is built in one place (`AnchorageNode.buildNode`, DESIGN §9): the simulator,
    /// the test kit and the benchmark build theirs through it, never by constructing the parts.
    static let nodeUsers = ["Simulation", "AnchorageTesting", "Bench", "SimCLI"]
    static let nodeParts: [(String, String)] = [
        (#"\bPinService\s*(<[^>]*>)?\s*\("#, "PinService"), (#"\bClusterAgent\s*\("#, "ClusterAgent"),
        (#"\bPinWorker\s*\("#, "PinWorker"), (#"\bmakeRouter\s*\("#, "makeRouter"),
    ]

    static func nodePartsConstructed(in text: String) throws -> [String] {
        var hits: [String] = []
        for (n, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let code = line.split(separator: "//", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
            for (pattern, name) in Self.nodeParts where code.contains(try Regex(pattern)) { hits.append("\(n + 1): \(name)") }
        }
        return hits
    }

    @Test(arguments: nodeUsers)
    func nodesAreBuiltOnlyByTheNodeBuilder(_ module: String) throws {
        for (path, text) in try Self.sources(module) {
            for hit in try Self.nodePartsConstructed(in: text) {
                Issue.record("\(path):\(hit) constructed directly; build the node with AnchorageNode.buildNode instead")
            }
        }
    }

    @Test func theNodeBuilderLintCatchesAViolation() throws {
        let sample = """
            let service = PinService(store: store, clock: clock, entropy: entropy, limits: Limits(), options: APIOptions())
            let agent = ClusterAgent(node: id, name: "n1", version: "1", bus: bus, store: store, kubo: nil, clock: clock, settings: s, logger: l)
            let worker = PinWorker (node: id, store: p, kubo: k, clock: c, entropy: e, logger: l)
            let typed = PinService<PostgresPinStore>(store: store, clock: clock, entropy: entropy, limits: l, options: o)
            // PinWorker( in a comment is fine
            let node = buildNode(configuration, environment)
            """
        #expect(try Self.nodePartsConstructed(in: sample) == ["1: PinService", "2: ClusterAgent", "3: PinWorker", "4: PinService"])
    }

    @Test func theLintCatchesAViolation() throws {
        let sample = "let now = Date()  // wall clock\nTask { await work() }"
        let hits = try Self.banned.filter { sample.contains(try Regex($0.0)) }.map(\.1)
        #expect(hits.contains("Date()"))
        #expect(hits.contains("an unstructured Task"))
    }
}
