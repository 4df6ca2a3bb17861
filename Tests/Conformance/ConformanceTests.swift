import AnchorageNode
import AnchorageTesting
import ConformanceKit
import FakeKubo
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Pins
import PinsHTTP
import PostgresStore
import Seams
import Testing
import Tokens
import Worker

/// Sends fixture requests to the router in-process (no socket), through Hummingbird's test client.
struct RouterTransport: ConformanceTransport {
    let client: any TestClientProtocol
    var isRemote: Bool { false }

    func send(_ request: ConformanceRequest) async throws -> ConformanceResponse {
        var fields = HTTPFields()
        for (name, value) in request.headers {
            guard let field = HTTPField.Name(name) else { continue }
            fields.append(HTTPField(name: field, value: value))
        }
        let response = try await client.execute(
            uri: request.path,
            method: HTTPRequest.Method(request.method) ?? .get,
            headers: fields,
            body: request.body.map { ByteBuffer(bytes: $0) }
        )
        return ConformanceResponse(
            status: Int(response.status.code),
            headers: response.headers.map { ($0.name.rawName, $0.value) },
            body: Array(buffer: response.body)
        )
    }
}

enum FixtureSuite {
    static let directory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/pinning-api")

    static func fixtures() throws -> [Fixture] { try FixtureLoader.load(from: directory) }

    /// The repository's copy of the spec (upstream text under a two-line header).
    static func spec() throws -> String {
        try String(contentsOf: directory.deletingLastPathComponent().appendingPathComponent("spec/ipfs-pinning-service.yaml"), encoding: .utf8)
    }

    static func expectAllPass(_ report: ConformanceReport, _ label: String) {
        for result in report.results where result.outcome == .failed {
            Issue.record("\(label): \(result.id) failed at \(result.failedStep ?? "?"): \(result.failures.joined(separator: "; "))")
        }
        #expect(report.failed == 0, "\(label): \(report.summaryLine)")
        #expect(report.passed > 100, "\(label): \(report.summaryLine)")
        // Every fixture runs: the node pins for real (worker + fake Kubo), so even the cases
        // that wait for `pinned` apply.
        for result in report.results where result.outcome == .skipped {
            Issue.record("\(label): \(result.id) skipped: \(result.reason ?? "")")
        }
    }

    static let nodeID = TypeID(prefix: IDPrefix.node, high: 0x0193_0000_0000_7000, low: 0x8000_0000_0000_00c0)

    /// A node whose pins really get pinned: placements on this node, a pin worker ticking in the
    /// background against an in-process fake Kubo (for exactly as long as `body` runs).
    static func withPinningNode<T: Sendable>(
        _ body: @Sendable @escaping (TestNode, Router<AppRequestContext>) async throws -> T
    ) async throws -> T {
        try await withTestNode { node in
            let pinning = node.node(id: nodeID, kubo: FakeKuboNode(seed: 5)) {
                $0.workerPollMilliseconds = 50
                // The test node's clock is virtual and does not move here, so a token bucket
                // would never refill: the fixtures send hundreds of requests per token. The
                // rate limit has its own test (PinsAPITests).
                $0.limits.requestsPerSecond = 0
            }
            return try await withRunning(pinning) { try await body(node, pinning.router) }
        }
    }
}

@Suite struct ConformanceTests {
    @Test func fixturesLintClean() throws {
        let fixtures = try FixtureSuite.fixtures()
        #expect(fixtures.count > 100)
        let problems = FixtureLoader.lint(
            fixtures,
            schemaErrors: FixtureLoader.schemaProblems(in: FixtureSuite.directory),
            spec: try FixtureSuite.spec()
        )
        #expect(problems.isEmpty, "\(problems.joined(separator: "\n"))")
        #expect(Set(fixtures.map(\.id)).count == fixtures.count)
    }

    @Test func referenceServerInProcessPassesEveryFixture() async throws {
        let fixtures = try FixtureSuite.fixtures()
        let report = try await FixtureSuite.withPinningNode { node, router in
            let tokenA = try await node.token(org: "conformance-a", ttlSeconds: 86400)
            let tokenB = try await node.token(org: "conformance-b", ttlSeconds: 86400)
            let app = Application(router: router)
            return try await app.test(.router) { client in
                let target = ConformanceTarget(
                    transport: RouterTransport(client: client),
                    tokenA: tokenA,
                    tokenB: tokenB,
                    capabilities: ["resolves-cids"],
                    name: "in-process"
                )
                return await ConformanceRunner(target: target).run(fixtures)
            }
        }
        FixtureSuite.expectAllPass(report, "in-process")
    }

    @Test func referenceServerOverASocketPassesEveryFixture() async throws {
        let fixtures = try FixtureSuite.fixtures()
        let report = try await FixtureSuite.withPinningNode { node, router in
            let tokenA = try await node.token(org: "conformance-a", ttlSeconds: 86400)
            let tokenB = try await node.token(org: "conformance-b", ttlSeconds: 86400)
            let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
            return try await app.test(.live) { client in
                let port = try #require(client.port)
                let transport = try URLTransport(baseURL: "http://127.0.0.1:\(port)")
                let target = ConformanceTarget(
                    transport: transport,
                    tokenA: tokenA,
                    tokenB: tokenB,
                    capabilities: ["resolves-cids"],
                    name: "live"
                )
                let report = await ConformanceRunner(target: target).run(fixtures)
                try await transport.shutdown()
                return report
            }
        }
        FixtureSuite.expectAllPass(report, "live")
    }
}
