import AsyncHTTPClient
import FakeKubo
import Foundation
import KuboRPC
import NIOCore
import NIOHTTP1
import Seams
import Testing

/// Wire-level checks of `FakeKuboServer` with raw HTTP (kubo-rpc.md §9 fidelity checklist).
@Suite struct FakeKuboWireTests {
    struct Reply {
        var status: Int
        var headers: [String: String]
        var body: String
    }

    static func call(_ url: String, method: HTTPMethod = .POST, headers: [String: String] = [:]) async throws -> Reply {
        var request = HTTPClientRequest(url: url)
        request.method = method
        if headers["User-Agent"] == nil { request.headers.add(name: "User-Agent", value: "anchorage-tests/1") }
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(5))
        var body = ""
        for try await chunk in response.body { body += String(buffer: chunk) }
        var fields: [String: String] = [:]
        for header in response.headers { fields[header.name.lowercased()] = header.value }
        return Reply(status: Int(response.status.code), headers: fields, body: body)
    }

    static func withServer(_ knobs: FakeKuboKnobs = Arm.fastKnobs, _ body: @Sendable (String, FakeKuboNode) async throws -> Void) async throws {
        let node = FakeKuboNode(seed: 3, knobs: knobs)
        try await FakeKuboServer.withRunning(node: node, logger: Arm.serverLogger) { url in try await body(url, node) }
    }

    @Test func getIs405WithAllowHeader() async throws {
        try await Self.withServer { url, _ in
            let reply = try await Self.call("\(url)/api/v0/id", method: .GET)
            #expect(reply.status == 405)
            #expect(reply.headers["allow"] == "OPTIONS, POST")
            #expect(reply.headers["content-type"] == "text/plain; charset=utf-8")
            #expect(reply.body == "405 - Method Not Allowed\n")
            let options = try await Self.call("\(url)/api/v0/id", method: .OPTIONS)
            #expect(options.status == 204)
        }
    }

    @Test func unknownCommandIs404() async throws {
        try await Self.withServer { url, _ in
            for path in ["/api/v0/pin/frobnicate", "/api/v0/nope", "/elsewhere"] {
                let reply = try await Self.call("\(url)\(path)")
                #expect(reply.status == 404, "\(path)")
                #expect(reply.body == "404 page not found\n")
                #expect(reply.headers["content-type"]?.hasPrefix("text/plain") == true)
            }
        }
    }

    @Test func missingArgAndBadBoolAre400() async throws {
        try await Self.withServer { url, _ in
            let missing = try await Self.call("\(url)/api/v0/pin/add")
            #expect(missing.status == 400)
            #expect(missing.body == "argument \"ipfs-path\" is required\n")
            #expect(try await Self.call("\(url)/api/v0/pin/rm").body == "argument \"ipfs-path\" is required\n")
            #expect(try await Self.call("\(url)/api/v0/swarm/connect").body == "argument \"address\" is required\n")
            let badBool = try await Self.call("\(url)/api/v0/pin/add?arg=\(TestCID.identity())&progress=maybe")
            #expect(badBool.status == 400)
            #expect(badBool.body == "could not convert value \"maybe\" to type \"bool\" (for option \"-progress\")\n")
        }
    }

    @Test func browserGatesAre403() async throws {
        try await Self.withServer { url, _ in
            let withOrigin = try await Self.call("\(url)/api/v0/id", headers: ["Origin": "http://evil.example"])
            #expect(withOrigin.status == 403)
            let browser = try await Self.call("\(url)/api/v0/id", headers: ["User-Agent": "Mozilla/5.0"])
            #expect(browser.status == 403)
        }
    }

    @Test func oneShotCommandHeaders() async throws {
        try await Self.withServer { url, node in
            let reply = try await Self.call("\(url)/api/v0/version?unknown-option=ignored")
            #expect(reply.status == 200)
            #expect(reply.headers["content-type"] == "application/json")
            #expect(reply.headers["server"] == "kubo/\(node.kuboVersion)")
            #expect(reply.headers["trailer"] == "X-Stream-Error")
            #expect(reply.headers["x-chunked-output"] == nil)
            #expect(reply.headers["transfer-encoding"]?.lowercased() == "chunked")
            let object = try JSONSerialization.jsonObject(with: Data(reply.body.utf8)) as? [String: Any]
            #expect(object?["Version"] as? String == node.kuboVersion)
            #expect(object?["Repo"] as? String == "18")
            #expect(reply.body.hasSuffix("}\n"))
        }
    }

    @Test func pinAddProgressIsNDJSON() async throws {
        var knobs = Arm.fastKnobs
        let cid = TestCID.identity()
        knobs.scripts[cid] = .available(afterMs: 90, blocks: 9)
        try await Self.withServer(knobs) { url, node in
            let reply = try await Self.call("\(url)/api/v0/pin/add?arg=\(cid)&recursive=true&progress=true")
            #expect(reply.status == 200)
            #expect(reply.headers["x-chunked-output"] == "1")
            #expect(reply.headers["content-type"] == "application/json")
            #expect(reply.headers["trailer"] == "X-Stream-Error")
            #expect(reply.headers["server"] == "kubo/\(node.kuboVersion)")
            let lines = reply.body.split(separator: "\n")
            #expect(lines.count >= 3, "\(lines)")
            #expect(lines.last == "{\"Pins\":[\"\(cid)\"]}")
            #expect(lines.dropLast().allSatisfy { $0.hasPrefix("{\"Progress\":") })
            #expect(lines.dropLast().last == "{\"Progress\":9}")
            // Without progress: one-shot.
            let again = try await Self.call("\(url)/api/v0/pin/add?arg=\(cid)")
            #expect(again.body == "{\"Pins\":[\"\(cid)\"]}\n")
            #expect(again.headers["x-chunked-output"] == nil)
        }
    }

    @Test func pinLsStreamsOneLinePerPin() async throws {
        try await Self.withServer { url, _ in
            let empty = try await Self.call("\(url)/api/v0/pin/ls?type=recursive")
            #expect(empty.body == "{}\n")
            let a = TestCID.identity()
            let b = TestCID.identity()
            _ = try await Self.call("\(url)/api/v0/pin/add?arg=\(a)&name=alpha")
            _ = try await Self.call("\(url)/api/v0/pin/add?arg=\(b)")
            let stream = try await Self.call("\(url)/api/v0/pin/ls?type=recursive&stream=true&names=true")
            #expect(stream.headers["x-chunked-output"] == "1")
            let lines = stream.body.split(separator: "\n").map { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: String] }
            #expect(lines.count == 2)
            #expect(lines.contains { $0 == ["Cid": a, "Type": "recursive", "Name": "alpha"] })
            #expect(lines.contains { $0 == ["Cid": b, "Type": "recursive"] })
            let notPinned = try await Self.call("\(url)/api/v0/pin/ls?arg=\(TestCID.identity("x"))&type=recursive")
            #expect(notPinned.status == 500)
            #expect(notPinned.body.contains("is not pinned"))
            let badType = try await Self.call("\(url)/api/v0/pin/ls?type=bogus")
            #expect(badType.body.contains("invalid type 'bogus', must be one of {direct, indirect, recursive, all}"))
        }
    }

    @Test func commandErrorBodyShape() async throws {
        try await Self.withServer { url, _ in
            let reply = try await Self.call("\(url)/api/v0/pin/rm?arg=\(TestCID.identity())")
            #expect(reply.status == 500)
            #expect(reply.headers["content-type"] == "application/json")
            #expect(reply.headers["trailer"] == "X-Stream-Error")
            let object = try JSONSerialization.jsonObject(with: Data(reply.body.utf8)) as? [String: Any]
            #expect(object?["Message"] as? String == "not pinned or pinned indirectly")
            #expect(object?["Code"] as? Int == 0)
            #expect(object?["Type"] as? String == "error")
        }
    }

    @Test func timeoutOptionEndsAStreamWithoutAPinsFrame() async throws {
        try await Self.withServer { url, node in
            let cid = TestCID.unfindable()
            // Frames every 5 s: the 20 ms deadline fires long before the first one, however
            // loaded the machine is.
            await node.updateKnobs {
                $0.neverResolve = [cid]
                $0.progressIntervalMs = 5000
            }
            // Before the first frame: a 500 JSON error.
            let early = try await Self.call("\(url)/api/v0/pin/add?arg=\(cid)&progress=true&timeout=20ms")
            #expect(early.status == 500)
            #expect(early.body.contains("context deadline exceeded"))
            // After frames started (every 10 ms): 200, `{}` ticks, no Pins frame (the error is in
            // the trailer).
            await node.updateKnobs { $0.progressIntervalMs = 10 }
            let late = try await Self.call("\(url)/api/v0/pin/add?arg=\(cid)&progress=true&timeout=300ms")
            #expect(late.status == 200)
            #expect(!late.body.isEmpty && !late.body.contains("Pins"))
            #expect(late.body.split(separator: "\n").allSatisfy { $0 == "{}" })
        }
    }

    @Test func adminKnobsEndpointChangesBehaviourAtRunTime() async throws {
        try await Self.withServer { url, node in
            var request = HTTPClientRequest(url: "\(url)/fake/knobs")
            request.method = .POST
            request.body = .bytes(ByteBuffer(string: #"{"failureRate":{"version":1},"failureMessage":"boom"}"#))
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(5))
            #expect(response.status == .ok)
            #expect(await node.currentKnobs().failureRate == ["version": 1])
            let client = KuboRPCClient(baseURL: url, logger: Arm.logger)
            await #expect(throws: KuboError.command(message: "boom", code: 0)) { try await client.version() }
            try await client.shutdown()
            let snapshot = try await Self.call("\(url)/fake/snapshot", method: .GET)
            #expect(snapshot.body.contains("\"version\":1"))
        }
    }

    /// The worker's 16 pins at once all reach Kubo and are pinned, each taking longer than the
    /// stall timeout (progress every 100 ms, done after 2 s). Issue 15: the client kept
    /// AsyncHTTPClient's 8 connections per host and started the stall timer before the request
    /// was sent, so pins 9–16 waited for a connection and failed as "stalled" unseen by Kubo.
    @Test func sixteenPinsAtOnceAllReachKubo() async throws {
        let knobs = FakeKuboKnobs(progressIntervalMs: 100, defaultScript: .available(afterMs: 2_000, blocks: 20))
        try await Self.withServer(knobs) { url, node in
            let client = KuboRPCClient(baseURL: url, logger: Arm.logger)
            let cids = (0..<16).map { TestCID.identity("pool\($0)") }
            let failures = await withTaskGroup(of: String?.self) { group in
                for cid in cids {
                    group.addTask {
                        do {
                            try await client.pin(cid: cid, name: nil, stallTimeout: .seconds(1), deadline: .seconds(20)) { _ in }
                            return nil
                        } catch {
                            return "\(cid): \(error)"
                        }
                    }
                }
                var out: [String] = []
                for await failure in group { if let failure { out.append(failure) } }
                return out
            }
            try await client.shutdown()
            #expect(failures.isEmpty, "\(failures.count) of 16 pins failed: \(failures.prefix(3))")
            let pinned = try await node.recursivePins().map(\.cid)
            #expect(Set(cids).isSubset(of: Set(pinned)), "Kubo holds \(pinned.count) pins")
        }
    }

    /// A pin's stall timer starts when Kubo's response begins: a Kubo slow to answer (1.5 s
    /// before its first byte, then progress every 100 ms) is not "stalled" after 1 s.
    @Test func theStallTimerStartsWithTheResponse() async throws {
        let knobs = FakeKuboKnobs(latencyMs: ["pin/add": 1_500], progressIntervalMs: 100, defaultScript: .available(afterMs: 500, blocks: 5))
        try await Self.withServer(knobs) { url, _ in
            let client = KuboRPCClient(baseURL: url, logger: Arm.logger)
            let outcome: String
            do {
                try await client.pin(cid: TestCID.identity("slow-head"), name: nil, stallTimeout: .seconds(1), deadline: .seconds(10)) { _ in }
                outcome = "pinned"
            } catch {
                outcome = "\(error)"
            }
            try await client.shutdown()
            #expect(outcome == "pinned")
        }
    }

    @Test func clientMapsRefusedConnectionsToUnreachable() async throws {
        let client = KuboRPCClient(baseURL: "http://127.0.0.1:1", requestTimeout: .seconds(2), logger: Arm.logger)
        do {
            _ = try await client.version()
            Issue.record("version against a closed port succeeded")
        } catch let error as KuboError {
            guard case .unreachable = error else {
                Issue.record("expected .unreachable, got \(error)")
                return
            }
        }
        #expect(
            await client.connect(
                to: ["/ip4/127.0.0.1/tcp/1/p2p/12D3KooWQJSbJ7ekXm1RtKnGMFoWsj7nBqRxmmTCVeKbmqqZzwNZ"],
                limit: 5,
                timeout: .seconds(1)
            ) == 0
        )
        try await client.shutdown()
    }
}

@Suite struct NDJSONSplitterTests {
    @Test func handlesObjectsSplitAcrossChunks() {
        var splitter = NDJSONLineSplitter()
        var lines: [String] = []
        let text = "{\"Progress\":1}\n{\"Prog" + "ress\":2}\n\n{\"Pins\":[\"a\"]}\n{\"tail\":true}"
        // Feed in every possible 3-byte chunking.
        let bytes = Array(text.utf8)
        var index = 0
        while index < bytes.count {
            let chunk = bytes[index..<min(index + 3, bytes.count)]
            lines += splitter.feed(chunk).map { String(decoding: $0, as: UTF8.self) }
            index += 3
        }
        if let last = splitter.finish() { lines.append(String(decoding: last, as: UTF8.self)) }
        #expect(lines == ["{\"Progress\":1}", "{\"Progress\":2}", "{\"Pins\":[\"a\"]}", "{\"tail\":true}"])
    }

    @Test func peerIDsAreDeterministicPerSeed() {
        #expect(FakeKuboNode(seed: 1).peerID == FakeKuboNode(seed: 1).peerID)
        #expect(FakeKuboNode(seed: 1).peerID != FakeKuboNode(seed: 2).peerID)
        #expect(FakeKuboNode(seed: 9).peerID.hasPrefix("12D3KooW"))
        #expect(FakeKuboNode(seed: 9).peerID.count == 52)
    }
}
