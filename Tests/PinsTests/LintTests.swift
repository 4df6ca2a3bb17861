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
    static let forbiddenImports = ["Hummingbird", "PostgresNIO", "NIOCore", "NIOPosix", "AsyncHTTPClient", "PostgresStore", "PinsHTTP", "Live", "Sim"]

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

    @Test func theLintCatchesAViolation() throws {
        let sample = "let now = Date()  // wall clock\nTask { await work() }"
        let hits = try Self.banned.filter { sample.contains(try Regex($0.0)) }.map(\.1)
        #expect(hits.contains("Date()"))
        #expect(hits.contains("an unstructured Task"))
    }
}
