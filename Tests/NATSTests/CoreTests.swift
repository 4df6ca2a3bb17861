import Foundation
import LocalNATS
import NATS
import Seams
import Testing

@Suite struct CoreTests {
    @Test func publishSubscribeRoundTrip() async throws {
        try await withServer { server in
            try await withClient(server) { a in
                try await withClient(server) { b in
                    let sub = try await b.subscribe("greet.*")
                    try await a.publish("greet.one", "hello".bytes)
                    var headers = NATSHeaders()
                    headers["X-Trace"] = "42"
                    try await a.publish("greet.two", "hi".bytes, headers: headers)
                    try await a.publish("other", "nope".bytes)
                    var it = sub.makeAsyncIterator()
                    let first = await it.next()
                    let second = await it.next()
                    #expect(first?.subject == "greet.one" && first?.payload == "hello".bytes)
                    #expect(second?.subject == "greet.two" && second?.headers?["X-Trace"] == "42")
                    await sub.unsubscribe()
                    #expect(await it.next() == nil)
                }
            }
        }
    }

    @Test func boundedSubscriptionDropsOldest() async throws {
        try await withServer { server in
            try await withClient(server) { client in
                let sub = try await client.subscribe("flood", capacity: 3)
                for i in 0..<10 { try await client.publish("flood", [UInt8(i)]) }
                try await client.flush()
                #expect(await eventually { sub.dropped == 7 })
                #expect(sub.drain().map(\.payload) == [[7], [8], [9]])
            }
        }
    }

    @Test func requestReplyAndNoResponders() async throws {
        try await withServer { server in
            try await withClient(server) { client in
                let service = try await client.subscribe("echo")
                let responder = Task {
                    for await m in service {
                        if let reply = m.replyTo { try? await client.publish(reply, m.payload + "!".bytes) }
                    }
                }
                let answer = try await client.request("echo", "ping".bytes)
                #expect(answer.payload == "ping!".bytes)
                // Many concurrent requests share the one inbox subscription.
                try await withThrowingTaskGroup(of: Bool.self) { group in
                    for i in 0..<50 {
                        group.addTask { try await client.request("echo", [UInt8(i)]).payload == [UInt8(i)] + "!".bytes }
                    }
                    for try await ok in group { #expect(ok) }
                }
                await #expect(throws: NATSError.noResponders(subject: "nobody.home")) {
                    try await client.request("nobody.home", [])
                }
                await service.unsubscribe()
                await responder.value
            }
        }
    }

    @Test func requestTimesOut() async throws {
        try await withServer { server in
            try await withClient(server) { client in
                let silent = try await client.subscribe("silent")
                await #expect(throws: BusError.timeout) {
                    try await client.request("silent", [], timeout: .milliseconds(200))
                }
                await silent.unsubscribe()
            }
        }
    }

    @Test func tokenAuth() async throws {
        let server = try await LocalNATSServer.start(extraArguments: ["--auth", "s3cret"])
        var good = NATSOptions(url: server.url, auth: .token("s3cret"))
        good.connectTimeout = .seconds(5)
        let client = try await NATSClient.connect(good)
        try await client.flush()
        await client.close()
        await #expect(throws: (any Error).self) {
            try await NATSClient.connect(NATSOptions(url: server.url, auth: .token("wrong")))
        }
        await server.stop()
    }

    @Test func userPasswordAuth() async throws {
        let server = try await LocalNATSServer.start(extraArguments: ["--user", "anchor", "--pass", "pw"])
        let client = try await NATSClient.connect(NATSOptions(url: server.url, auth: .userPassword(user: "anchor", password: "pw")))
        try await client.flush()
        await client.close()
        await #expect(throws: (any Error).self) {
            try await NATSClient.connect(NATSOptions(url: server.url, auth: .userPassword(user: "anchor", password: "no")))
        }
        await server.stop()
    }

    @Test func oversizedPayloadFailsFast() async throws {
        let config = FileManager.default.temporaryDirectory.appendingPathComponent("nats-\(UUID().uuidString).conf").path
        try "max_payload: 1024\n".write(toFile: config, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: config) }
        let server = try await LocalNATSServer.start(extraArguments: ["-c", config])
        let client = try await NATSClient.connect(NATSOptions(url: server.url))
        await #expect(throws: NATSError.payloadTooLarge(size: 2000, max: 1024)) {
            try await client.publish("big", [UInt8](repeating: 1, count: 2000))
        }
        await client.close()
        await server.stop()
    }

    @Test func reconnectsResubscribesAndBuffersWhileDown() async throws {
        try await withServer { server in
            try await withClient(
                server,
                configure: {
                    $0.reconnectBufferBytes = 4096
                    $0.maxReconnectDelay = .milliseconds(200)
                }
            ) { client in
                let sub = try await client.subscribe("after.restart")
                await server.kill()
                #expect(await eventually { !client.isConnected })
                // While down: requests fail at once, small publishes are buffered, big ones refused.
                await #expect(throws: BusError.self) { try await client.request("x", []) }
                try await client.publish("after.restart", "buffered".bytes)
                await #expect(throws: NATSError.reconnectBufferFull(limit: 4096)) {
                    try await client.publish("after.restart", [UInt8](repeating: 0, count: 5000))
                }
                try await server.restart()
                #expect(await eventually { client.isConnected })
                try await client.publish("after.restart", "live".bytes)
                var it = sub.makeAsyncIterator()
                #expect(await it.next()?.payload == "buffered".bytes)
                #expect(await it.next()?.payload == "live".bytes)
            }
        }
    }

    @Test func closeEndsSubscriptionsAndRefusesWork() async throws {
        try await withServer { server in
            let client = try await NATSClient.connect(NATSOptions(url: server.url))
            let sub = try await client.subscribe("x")
            await client.close()
            var it = sub.makeAsyncIterator()
            #expect(await it.next() == nil)
            await #expect(throws: NATSError.closed) { try await client.publish("x", []) }
            await client.close()  // idempotent
        }
    }
}
