import AnchorageNode
import AnchorageTesting
import FakeKubo
import Foundation
import Hummingbird
import HummingbirdTesting
import KuboRPC
import Logging
import Pins
import PinsHTTP
import PostgresNIO
import PostgresStore
import Seams
import Synchronization
import Testing
import Tokens
import Worker

/// The pin worker end to end: the real API and Postgres store, the in-process fake Kubo, and the
/// worker driven tick by tick (it never sleeps itself, so each test decides when time passes).
@Suite struct WorkerTests {
    static let nodeID = TypeID(prefix: IDPrefix.node, high: 0x0193_0000_0000_7000, low: 0x8000_0000_0000_0001)

    struct Rig: Sendable {
        let node: TestNode
        let kubo: FakeKuboNode
        let worker: PinWorker
        let service: PinService<PostgresPinStore>
    }

    func withRig<T: Sendable>(
        settings: WorkerSettings = WorkerSettings(),
        knobs: FakeKuboKnobs = FakeKuboKnobs(),
        _ body: @Sendable @escaping (Rig, any TestClientProtocol) async throws -> T
    ) async throws -> T {
        try await withTestNode { node in
            let kubo = FakeKuboNode(seed: 3, knobs: knobs)
            let built = node.node(id: Self.nodeID, kubo: kubo) { $0.worker = settings }
            return try await Application(router: built.router).test(.router) { client in
                try await body(Rig(node: node, kubo: kubo, worker: built.worker!, service: built.service), client)
            }
        }
    }

    func kuboPins(_ kubo: FakeKuboNode) async -> Set<String> { Set(await kubo.snapshot().pins.map(\.cid)) }

    @Test func aPinReachesPinnedAndDeleteUnpinsIt() async throws {
        try await withRig { rig, client in
            let token = try await rig.node.token(org: "acme")
            let added = try await client.add(token, cid: cidA)
            #expect(added.object["status"] as? String == "queued")
            let report = try await rig.worker.tick()
            #expect(report.claimed == 1 && report.pinned == 1)
            // Kubo's `ipfs pin remote add` loop: poll until pinned, same requestid every time.
            let polled = try await client.call(.get, "/pins/\(added.requestID)", token: token)
            #expect(polled.status == 200)
            #expect(polled.requestID == added.requestID)
            #expect(polled.object["status"] as? String == "pinned")
            #expect(polled.object["info"] == nil)
            #expect(await kuboPins(rig.kubo) == [cidA])
            #expect(await rig.kubo.snapshot().pins.first?.name == "anchorage")
            #expect(try await client.call(.delete, "/pins/\(added.requestID)", token: token).status == 202)
            #expect(try await rig.worker.tick().unpinned == 1)
            #expect(await kuboPins(rig.kubo).isEmpty)
        }
    }

    @Test func kuboUnpinsOnlyWhenNoOrgNeedsTheCIDAnyMore() async throws {
        try await withRig { rig, client in
            let tokenA = try await rig.node.token(org: "org-a")
            let tokenB = try await rig.node.token(org: "org-b")
            let a = try await client.add(tokenA, cid: cidA)
            let b = try await client.add(tokenB, cid: cidA)
            try await rig.worker.tick()
            #expect(await kuboPins(rig.kubo) == [cidA])
            _ = try await client.call(.delete, "/pins/\(a.requestID)", token: tokenA)
            #expect(try await rig.worker.tick().unpinned == 0)
            #expect(await kuboPins(rig.kubo) == [cidA], "org B still needs it")
            // Replace B's pin with another CID: the new one is pinned, then the old one released.
            let replaced = try await client.call(.post, "/pins/\(b.requestID)", token: tokenB, body: #"{"cid":"\#(cidB)"}"#)
            #expect(replaced.status == 202)
            try await rig.worker.tick()
            #expect(await kuboPins(rig.kubo) == [cidB])
            let now = try await client.call(.get, "/pins/\(replaced.requestID)", token: tokenB)
            #expect(now.object["status"] as? String == "pinned")
            _ = try await client.call(.delete, "/pins/\(replaced.requestID)", token: tokenB)
            try await rig.worker.tick()
            #expect(await kuboPins(rig.kubo).isEmpty)
        }
    }

    /// Kubo keys a pin by its binary CID, so `BAFKREI…` and `zb2…` are the CID `bafkrei…` is.
    /// Before CIDs were compared as Kubo does, org B could pin org A's CID in another spelling,
    /// delete it, and the worker's `pin/rm` removed A's Kubo pin while A's pin still said pinned.
    @Test func anotherSpellingOfACIDCannotUnpinAnotherOrgsPin() async throws {
        try await withRig { rig, client in
            let tokenA = try await rig.node.token(org: "org-a")
            let tokenB = try await rig.node.token(org: "org-b")
            let a = try await client.add(tokenA, cid: cidA)
            try await rig.worker.tick()
            for spelling in [cidA.uppercased(), base58Spelling(of: cidA)] {
                let b = try await client.add(tokenB, cid: spelling)
                try await rig.worker.tick()
                let mine = try await client.call(.get, "/pins/\(b.requestID)", token: tokenB)
                #expect(mine.object["status"] as? String == "pinned")
                #expect((mine.object["pin"] as? [String: Any])?["cid"] as? String == spelling, "echoes B's spelling")
                #expect(try await client.call(.delete, "/pins/\(b.requestID)", token: tokenB).status == 202)
                let report = try await rig.worker.tick()
                #expect(report.unpinned == 0, "org A still needs \(spelling)")
                #expect(await kuboPins(rig.kubo) == [cidA])
                let victim = try await client.call(.get, "/pins/\(a.requestID)", token: tokenA)
                #expect(victim.object["status"] as? String == "pinned")
            }
            // The `cid` filter finds a pin whatever spelling either side uses.
            let listed = try await client.call(.get, "/pins?cid=\(base58Spelling(of: cidA))", token: tokenA)
            #expect(listed.object["count"] as? Int == 1)
            _ = try await client.call(.delete, "/pins/\(a.requestID)", token: tokenA)
            #expect(try await rig.worker.tick().unpinned == 1)
            #expect(await kuboPins(rig.kubo).isEmpty)
        }
    }

    @Test func aCIDThatNeverResolvesIsRetriedThenFailedWithAReason() async throws {
        var settings = WorkerSettings()
        settings.stallTimeout = .milliseconds(80)
        settings.attemptTimeout = .seconds(5)
        settings.pinDeadlineSeconds = 12
        settings.backoffSeconds = 10
        try await withRig(settings: settings, knobs: FakeKuboKnobs(neverResolve: [cidC])) { rig, client in
            let token = try await rig.node.token(org: "acme")
            let added = try await client.add(token, cid: cidC)
            #expect(try await rig.worker.tick().retried == 1)
            var status = try await client.call(.get, "/pins/\(added.requestID)", token: token)
            #expect(status.object["status"] as? String == "queued")
            let details = (status.object["info"] as? [String: String])?["status_details"] ?? ""
            #expect(details.contains("stalled"), "\(details)")
            // Not due yet: nothing is claimed until the backoff has passed.
            #expect(try await rig.worker.tick().claimed == 0)
            rig.node.clock.advance(seconds: 13)
            #expect(try await rig.worker.tick().failed == 1)
            status = try await client.call(.get, "/pins/\(added.requestID)", token: token)
            #expect(status.object["status"] as? String == "failed")
            let reason = (status.object["info"] as? [String: String])?["status_details"] ?? ""
            #expect(reason.contains("gave up after 2 attempt") && reason.contains("stalled"), "\(reason)")
            #expect(await kuboPins(rig.kubo).isEmpty)
        }
    }

    @Test func oneOrgsBurstDoesNotStarveAnotherOrgsPin() async throws {
        var settings = WorkerSettings()
        settings.maxConcurrentPins = 4
        try await withRig(settings: settings) { rig, client in
            let burstOrg = try #require(try await rig.node.mint(org: "burst").claims.org)
            let tokenSingle = try await rig.node.token(org: "single")
            // A 10,000-pin burst, queued before the single pin (bulk-inserted as the API would).
            try await rig.node.opsClient.query(
                """
                WITH p AS (
                  INSERT INTO pins (org_id, id, cid, cid_key, status, created_at, updated_at)
                  SELECT \(burstOrg.uuid), gen_random_uuid(), 'bafkreiburst' || i, 'bafkreiburst' || i, 'queued',
                         \(rig.node.clock.now()) + i * interval '1 millisecond', \(rig.node.clock.now())
                  FROM generate_series(1, 10000) AS i
                  RETURNING org_id, id, cid_key, created_at)
                INSERT INTO placements (org_id, pin_id, node_id, status, updated_at, cid, created_at, next_attempt_at)
                SELECT org_id, id, \(Self.nodeID.uuid), 'queued', created_at, cid_key, created_at, '-infinity' FROM p
                """,
                logger: Logger(label: "test")
            )
            rig.node.clock.advance(seconds: 20)
            let single = try await client.add(tokenSingle, cid: cidA)
            let first = try await rig.worker.tick()
            #expect(first.claimed == 4)  // one worker slot's turn: B's pin is in the very first claim
            let status = try await client.call(.get, "/pins/\(single.requestID)", token: tokenSingle)
            #expect(status.object["status"] as? String == "pinned", "the single pin waited behind the burst")
        }
    }

    @Test func aClaimWhoseWorkerDiedIsRequeued() async throws {
        try await withRig { rig, client in
            let token = try await rig.node.token(org: "acme")
            let added = try await client.add(token, cid: cidA)
            let store = PostgresPlacementStore(client: rig.node.opsClient, logger: Logger(label: "test"))
            let now = rig.node.clock.now()
            // A worker claims the pin and dies before finishing (its lease runs out).
            #expect(try await store.claim(node: Self.nodeID, now: now, limit: 10, leaseUntil: now.adding(seconds: 30)).count == 1)
            #expect(try await client.call(.get, "/pins/\(added.requestID)", token: token).object["status"] as? String == "pinning")
            #expect(try await rig.worker.tick().claimed == 0)
            rig.node.clock.advance(seconds: 31)
            let report = try await rig.worker.tick()
            #expect(report.requeued == 1)
            #expect(report.pinned == 1)
            #expect(await kuboPins(rig.kubo) == [cidA])
        }
    }

    /// The production path: the worker's Kubo client talking Kubo's RPC wire format over HTTP.
    @Test func overHTTPWithTheRPCClientAPinReachesPinned() async throws {
        try await withTestNode { node in
            let kubo = FakeKuboNode(seed: 4)
            try await FakeKuboServer.withRunning(node: kubo) { baseURL in
                let client = KuboRPCClient(baseURL: baseURL, logger: Logger(label: "test.kubo"))
                let worker = node.worker(node: Self.nodeID, kubo: client)
                let service = node.placingService(on: Self.nodeID)
                let org = try await node.mint(org: "http").claims.org
                let record = try await service.add(org: org, request: PinRequest(cid: cidB, name: "over-http"))
                #expect(try await worker.tick().pinned == 1)
                #expect(try await service.get(org: org, requestID: record.id.description).status == .pinned)
                #expect(await kuboPins(kubo) == [cidB])
                // The single-CID lookup over the wire: pinned (with anchorage's name), and not pinned.
                #expect(try await client.recursivePin(cid: cidB) == KuboPin(cid: cidB, name: "anchorage"))
                #expect(try await client.recursivePin(cid: cidC) == nil)
                try await service.delete(org: org, requestID: record.id.description)
                #expect(try await worker.tick().unpinned == 1)
                #expect(await kuboPins(kubo).isEmpty)
                try await client.shutdown()
            }
        }
    }

    /// Kubo going away mid-pin loses nothing: the attempt is retried and the pin lands once
    /// Kubo is back.
    @Test func aKuboOutageMidPinIsRetried() async throws {
        var settings = WorkerSettings()
        settings.backoffSeconds = 1
        try await withRig(settings: settings, knobs: FakeKuboKnobs(neverResolve: [cidA])) { rig, client in
            let token = try await rig.node.token(org: "acme")
            let added = try await client.add(token, cid: cidA)
            async let tick = rig.worker.tick()
            // Wait (bounded) until the pin is in flight in Kubo, then take Kubo down under it.
            for _ in 0..<200 where await !rig.kubo.snapshot().inFlight.contains(cidA) {
                try await Task.sleep(for: .milliseconds(10))
            }
            #expect(await rig.kubo.snapshot().inFlight.contains(cidA))
            await rig.kubo.restart()  // in-flight work is lost, pins persist
            let report = try await tick
            #expect(report.retried == 1, "\(report)")
            #expect(try await client.call(.get, "/pins/\(added.requestID)", token: token).object["status"] as? String == "queued")
            await rig.kubo.updateKnobs { $0.neverResolve = [] }
            rig.node.clock.advance(seconds: 2)
            #expect(try await rig.worker.tick().pinned == 1)
            #expect(try await client.call(.get, "/pins/\(added.requestID)", token: token).object["status"] as? String == "pinned")
        }
    }

    /// `origins` are dialled (best effort) before pinning; an undialable one does not fail it.
    @Test func originsAreDialledBeforePinning() async throws {
        var settings = WorkerSettings()
        settings.dialPrivateOrigins = true  // these are documentation and private addresses
        try await withRig(settings: settings, knobs: FakeKuboKnobs(undialable: ["QmBad"])) { rig, client in
            let token = try await rig.node.token(org: "acme")
            let reply = try await client.call(
                .post,
                "/pins",
                token: token,
                body: #"{"cid":"\#(cidA)","origins":["/ip4/192.0.2.1/tcp/4001/p2p/QmGood","/ip4/10.0.0.2/tcp/4001/p2p/QmBad"]}"#
            )
            #expect(reply.status == 202)
            #expect(try await rig.worker.tick().pinned == 1)
            let peers = await rig.kubo.snapshot().connectedPeers
            #expect(peers == ["QmGood"], "\(peers)")  // dialled; the undialable one failed quietly
        }
    }

    /// A tenant's origins must not turn the node's Kubo into a scanner of the operator's
    /// network: loopback, private and link-local addresses, DNS names and addresses without a
    /// peer are never dialled (production's default), public peer addresses are.
    @Test func privateAndNamedOriginsAreNotDialled() async throws {
        try await withRig { rig, client in
            let token = try await rig.node.token(org: "acme")
            let origins = [
                "/ip4/127.0.0.1/tcp/5001/p2p/QmLoopback", "/ip4/10.0.0.5/tcp/5432/p2p/QmPrivate",
                "/ip4/169.254.169.254/tcp/80/ws/p2p/QmMetadata", "/dns4/metadata.internal/tcp/80/ws/p2p/QmNamed",
                "/ip6/::1/tcp/1/p2p/QmLoopback6", "/ip4/1.1.1.1/tcp/4001", "/ip4/1.1.1.1/tcp/4001/p2p/QmPublic",
            ]
            let body = String(decoding: try JSONSerialization.data(withJSONObject: ["cid": cidA, "origins": origins]), as: UTF8.self)
            let reply = try await client.call(.post, "/pins", token: token, body: body)
            #expect(reply.status == 202)
            #expect((reply.object["pin"] as? [String: Any])?["origins"] as? [String] == origins, "stored and echoed as sent")
            #expect(try await rig.worker.tick().pinned == 1)
            #expect(await rig.kubo.snapshot().connectedPeers == ["QmPublic"])
        }
    }

    /// The worker unpins only what anchorage pinned: a CID that someone re-pinned in Kubo under
    /// another name is left alone when anchorage's last placement goes.
    @Test func pinsAnchorageDidNotMakeAreLeftAlone() async throws {
        try await withRig { rig, client in
            let token = try await rig.node.token(org: "acme")
            let added = try await client.add(token, cid: cidA)
            try await rig.worker.tick()
            _ = try await rig.kubo.pinAdd(arg: cidA, name: "operator-backup")  // an operator's own pin now
            _ = try await client.call(.delete, "/pins/\(added.requestID)", token: token)
            let report = try await rig.worker.tick()
            #expect(report.unpinned == 0)
            #expect(report.leftAlone == 1)
            #expect(await kuboPins(rig.kubo) == [cidA])
            #expect(try await rig.worker.tick().leftAlone == 0, "the release is forgotten once handled")
        }
    }

    /// One never-resolving CID must hold one slot, not the node: with production's settings
    /// (stall timeout 120 s, poll 500 ms, 16 slots) and the production worker shell, another
    /// org's pin posted after it is pinned within about a poll interval. The round-based worker
    /// this replaced recorded a round's outcomes after its slowest attempt, so the second pin
    /// waited for the stall timeout.
    @Test func aNeverResolvingPinDoesNotHoldUpAnotherOrgsPin() async throws {
        try await withTestNode { node in
            let kubo = FakeKuboNode(seed: 3, knobs: FakeKuboKnobs(progressIntervalMs: 20))
            let stuck = CIDText.synthetic(901)
            let other = CIDText.synthetic(902)
            await kubo.updateKnobs { $0.neverResolve.append(stuck) }
            let built = node.node(id: Self.nodeID, kubo: kubo)
            #expect(built.configuration.worker.stallTimeout == .seconds(120), "production's default stall timeout")
            let orgA = try await node.admin.createOrg(name: "stuck-org")
            let orgB = try await node.admin.createOrg(name: "other-org")
            try await withRunning(built) {
                let first = try await built.service.add(org: orgA.id, request: PinRequest(cid: stuck))
                try await Self.waitUntil("the stuck pin is being attempted", within: .seconds(10)) {
                    await kubo.snapshot().inFlight.contains(stuck)
                }
                let posted = ContinuousClock.now
                let second = try await built.service.add(org: orgB.id, request: PinRequest(cid: other))
                try await Self.waitUntil("the second pin is pinned", within: .seconds(20)) {
                    (try? await built.service.get(org: orgB.id, requestID: second.id.description).status) == .pinned
                }
                let waited = ContinuousClock.now - posted
                #expect(waited < .seconds(10), "pinned after \(waited); the stall timeout is 120 s")
                #expect(try await built.service.get(org: orgA.id, requestID: first.id.description).status == .pinning)
            }
        }
    }

    /// A crash or a deploy right after a claim left the placement `pinning` with a lease of
    /// about an hour (the attempt timeout plus the grace). The restarted node requeues its own
    /// claims at start, so the pin is pinned at once instead of an hour later.
    @Test func aRestartedNodeRequeuesTheClaimsItsPreviousRunLeft() async throws {
        try await withTestNode { node in
            let kubo = FakeKuboNode(seed: 3, knobs: FakeKuboKnobs(progressIntervalMs: 20))
            let built = node.node(id: Self.nodeID, kubo: kubo)
            let org = try await node.admin.createOrg(name: "restarted")
            let pin = try await built.service.add(org: org.id, request: PinRequest(cid: CIDText.synthetic(903)))
            // The previous run claimed it, then died.
            #expect(try await built.worker!.claim().count == 1)
            try await withRunning(built) {
                try await Self.waitUntil("the pin is pinned after the restart", within: .seconds(20)) {
                    (try? await built.service.get(org: org.id, requestID: pin.id.description).status) == .pinned
                }
            }
        }
    }

    /// An attempt cut short by a shutdown or a crash is not an attempt: the restarted node
    /// requeues the claim with its attempt count as it was before the claim, so a deploy during
    /// a pin's last allowed attempt does not fail the pin (issue 15).
    @Test func anAttemptCutShortByARestartIsNotCounted() async throws {
        try await withTestNode { node in
            let kubo = FakeKuboNode(seed: 3, knobs: FakeKuboKnobs(progressIntervalMs: 20))
            let built = node.node(id: Self.nodeID, kubo: kubo)
            let org = try await node.admin.createOrg(name: "deployed")
            let pin = try await built.service.add(org: org.id, request: PinRequest(cid: CIDText.synthetic(904)))
            func attempts() async throws -> [Int] {
                let rows = try await node.opsClient.query("SELECT attempts FROM placements WHERE pin_id = \(pin.id.uuid)", logger: Logger(label: "t"))
                var out: [Int] = []
                for try await n in rows.decode(Int.self) { out.append(n) }
                return out
            }
            #expect(try await built.worker!.claim().count == 1)
            #expect(try await attempts() == [1])
            #expect(try await built.worker!.recoverClaims() == 1)
            #expect(try await attempts() == [0], "the cut-short attempt is not counted")
            #expect(try await built.worker!.claim().count == 1, "claimed again at once")
            #expect(try await attempts() == [1])
        }
    }

    /// A round whose first outcome cannot be recorded still records the others (issue 15: the
    /// first failing `finish` dropped the rest of the round, leaving them `pinning` for about
    /// an hour). The real store, with `complete` refused for one pin.
    @Test func oneOutcomeThatCannotBeRecordedDoesNotDropTheOthers() async throws {
        struct RefusingOne: PlacementStore {
            let real: any PlacementStore
            let refused: TypeID
            struct Refused: Error {}
            func claim(node: TypeID, now: Timestamp, limit: Int, leaseUntil: Timestamp) async throws -> [Claim] {
                try await real.claim(node: node, now: now, limit: limit, leaseUntil: leaseUntil)
            }
            func complete(_ claim: Claim, node: TypeID, outcome: PinOutcome, now: Timestamp) async throws {
                if claim.pin == refused { throw Refused() }
                try await real.complete(claim, node: node, outcome: outcome, now: now)
            }
            func requeueOwnClaims(node: TypeID, now: Timestamp) async throws -> Int { try await real.requeueOwnClaims(node: node, now: now) }
            func requeueExpired(node: TypeID, now: Timestamp) async throws -> Int { try await real.requeueExpired(node: node, now: now) }
            func releasedCIDs(node: TypeID, limit: Int) async throws -> [String] { try await real.releasedCIDs(node: node, limit: limit) }
            func forgetReleased(node: TypeID, cid: String) async throws { try await real.forgetReleased(node: node, cid: cid) }
            func queueDepth(node: TypeID) async throws -> Int { try await real.queueDepth(node: node) }
        }
        try await withTestNode { node in
            let kubo = FakeKuboNode(seed: 3, knobs: FakeKuboKnobs(progressIntervalMs: 20))
            let built = node.node(id: Self.nodeID, kubo: kubo)
            let real = built.worker!
            let org = try await node.admin.createOrg(name: "rounds")
            var pins: [PinRecord] = []
            for n in 0..<4 { pins.append(try await built.service.add(org: org.id, request: PinRequest(cid: CIDText.synthetic(UInt64(910 + n))))) }
            // The first outcome recorded in the round (they are recorded in pin order).
            let refused = pins.map(\.id).min { $0.description < $1.description }!
            let worker = PinWorker(
                node: real.node,
                store: RefusingOne(real: real.store, refused: refused),
                kubo: kubo,
                clock: real.clock,
                entropy: node.entropy,
                settings: real.settings,
                logger: real.logger
            )
            await #expect(throws: RefusingOne.Refused.self) { try await worker.tick() }
            for pin in pins {
                let status = try await built.service.get(org: org.id, requestID: pin.id.description).status
                #expect(status == (pin.id == refused ? .pinning : .pinned), "\(pin.id)")
            }
        }
    }

    /// An outcome the database refused to record (issue 15: it then stayed `pinning` until its
    /// claim lease ran out, about an hour) is recorded at the next round once the database
    /// answers again. The production loop, the real store behind a refusing gate.
    @Test func anOutcomeThatCouldNotBeRecordedIsRecordedAtTheNextRound() async throws {
        final class Gate: Sendable {
            let refusing = Mutex(true)
        }
        struct Refusing: PlacementStore {
            let real: any PlacementStore
            let gate: Gate
            struct Refused: Error {}
            func claim(node: TypeID, now: Timestamp, limit: Int, leaseUntil: Timestamp) async throws -> [Claim] {
                try await real.claim(node: node, now: now, limit: limit, leaseUntil: leaseUntil)
            }
            func complete(_ claim: Claim, node: TypeID, outcome: PinOutcome, now: Timestamp) async throws {
                if gate.refusing.withLock({ $0 }) { throw Refused() }
                try await real.complete(claim, node: node, outcome: outcome, now: now)
            }
            func requeueOwnClaims(node: TypeID, now: Timestamp) async throws -> Int { try await real.requeueOwnClaims(node: node, now: now) }
            func requeueExpired(node: TypeID, now: Timestamp) async throws -> Int { try await real.requeueExpired(node: node, now: now) }
            func releasedCIDs(node: TypeID, limit: Int) async throws -> [String] { try await real.releasedCIDs(node: node, limit: limit) }
            func forgetReleased(node: TypeID, cid: String) async throws { try await real.forgetReleased(node: node, cid: cid) }
            func queueDepth(node: TypeID) async throws -> Int { try await real.queueDepth(node: node) }
        }
        try await withTestNode { node in
            let kubo = FakeKuboNode(seed: 3, knobs: FakeKuboKnobs(progressIntervalMs: 20))
            let built = node.node(id: Self.nodeID, kubo: kubo)
            let real = built.worker!
            let org = try await node.admin.createOrg(name: "flaky-db")
            let pin = try await built.service.add(org: org.id, request: PinRequest(cid: CIDText.synthetic(930)))
            let gate = Gate()
            let worker = PinWorker(
                node: real.node,
                store: Refusing(real: real.store, gate: gate),
                kubo: kubo,
                clock: real.clock,
                entropy: node.entropy,
                settings: real.settings,
                logger: real.logger
            )
            let started = Mutex<[Claim]>([])
            let loop = WorkerLoop(worker: worker, hooks: WorkerLoop.Hooks(startAttempt: { claim in started.withLock { $0.append(claim) } }))
            await loop.send(.wake(acceptsJobs: true, jobs: 0))
            let claim = try #require(started.withLock { $0.first }, "the wake claimed the pin")
            let outcome = await worker.attempt(claim)
            await loop.send(.attemptEnded(claim, outcome))
            #expect(try await built.service.get(org: org.id, requestID: pin.id.description).status == .pinning, "the database refused it")
            #expect(await loop.inflight.isEmpty, "its slot is free all the same")

            gate.refusing.withLock { $0 = false }
            await loop.send(.wake(acceptsJobs: true, jobs: 0))
            #expect(try await built.service.get(org: org.id, requestID: pin.id.description).status == .pinned)
        }
    }

    static func waitUntil(_ what: String, within bound: Duration, _ condition: () async throws -> Bool) async throws {
        let deadline = ContinuousClock.now + bound
        while ContinuousClock.now < deadline {
            if try await condition() { return }
            try await Task.sleep(for: .milliseconds(20))
        }
        Issue.record("not within \(bound): \(what)")
        throw CancellationError()
    }
}
