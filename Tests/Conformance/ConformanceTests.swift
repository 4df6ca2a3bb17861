import AnchorageTesting
import ConformanceKit
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

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
            uri: request.path, method: HTTPRequest.Method(request.method) ?? .get, headers: fields,
            body: request.body.map { ByteBuffer(bytes: $0) })
        return ConformanceResponse(
            status: Int(response.status.code),
            headers: response.headers.map { ($0.name.rawName, $0.value) },
            body: Array(buffer: response.body))
    }
}

enum Suite {
    static let directory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/pinning-api")

    static func fixtures() throws -> [Fixture] { try FixtureLoader.load(from: directory) }

    static func expectAllPass(_ report: ConformanceReport, _ label: String) {
        for result in report.results where result.outcome == .failed {
            Issue.record("\(label): \(result.id) failed at \(result.failedStep ?? "?"): \(result.failures.joined(separator: "; "))")
        }
        #expect(report.failed == 0, "\(label): \(report.summaryLine)")
        #expect(report.passed > 100, "\(label): \(report.summaryLine)")
        // The only skip allowed on the reference server is the one that needs real content.
        for result in report.results where result.outcome == .skipped {
            #expect(result.id.hasSuffix("kubo/add-waits-until-pinned"), "\(label): \(result.id) skipped: \(result.reason ?? "")")
        }
    }
}

@Suite struct ConformanceTests {
    @Test func fixturesLintClean() throws {
        let fixtures = try Suite.fixtures()
        #expect(fixtures.count > 100)
        let problems = FixtureLoader.lint(fixtures, schemaErrors: FixtureLoader.schemaProblems(in: Suite.directory))
        #expect(problems.isEmpty, "\(problems.joined(separator: "\n"))")
        #expect(Set(fixtures.map(\.id)).count == fixtures.count)
    }

    @Test func referenceServerInProcessPassesEveryFixture() async throws {
        let fixtures = try Suite.fixtures()
        let report = try await withTestNode { node in
            let tokenA = try await node.token(org: "conformance-a", ttlSeconds: 86400)
            let tokenB = try await node.token(org: "conformance-b", ttlSeconds: 86400)
            let app = Application(router: node.router())
            return try await app.test(.router) { client in
                let target = ConformanceTarget(
                    transport: RouterTransport(client: client), tokenA: tokenA, tokenB: tokenB, name: "in-process")
                return await ConformanceRunner(target: target).run(fixtures)
            }
        }
        Suite.expectAllPass(report, "in-process")
    }

    @Test func referenceServerOverASocketPassesEveryFixture() async throws {
        let fixtures = try Suite.fixtures()
        let report = try await withTestNode { node in
            let tokenA = try await node.token(org: "conformance-a", ttlSeconds: 86400)
            let tokenB = try await node.token(org: "conformance-b", ttlSeconds: 86400)
            let app = Application(router: node.router(), configuration: .init(address: .hostname("127.0.0.1", port: 0)))
            return try await app.test(.live) { client in
                let port = try #require(client.port)
                let transport = try URLTransport(baseURL: "http://127.0.0.1:\(port)")
                let target = ConformanceTarget(transport: transport, tokenA: tokenA, tokenB: tokenB, name: "live")
                let report = await ConformanceRunner(target: target).run(fixtures)
                try await transport.shutdown()
                return report
            }
        }
        Suite.expectAllPass(report, "live")
    }
}
