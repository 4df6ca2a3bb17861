import Foundation
import Pins
import ProcessCluster
import Synchronization

/// A steady mixed load from two orgs, through whichever nodes the test says are up: posts,
/// replaces, deletes and listings, one request at a time per lane, bounded in rate and count.
/// It remembers every pin the API accepted (`202`) and which of them a later `202` deleted or
/// replaced, so that the verdict can ask for each one: still there, and settled?
final class Load: Sendable {
    struct Org: Sendable {
        var name: String
        var token: String
    }

    struct State: Sendable {
        var targets: [String] = []
        var stopped = false
        var counter: UInt64 = 0
        /// requestid → org index, for pins accepted and not (definitely) deleted or replaced.
        var alive: [String: Int] = [:]
        var accepted = 0
        var statuses: [Int: Int] = [:]
        var transportErrors = 0
        /// 5xx answers, and those after `healed()`.
        var serverErrors = 0
        var serverErrorsAfterHeal = 0
        var healed = false
        var lastServerError = ""
    }

    let harness: ClusterHarness
    let orgs: [Org]
    let namespace: UInt64
    let state = Mutex(State())
    /// Each lane sends one request, then waits this long: 2 lanes ≈ 16 requests/s.
    static let pause = Duration.milliseconds(120)
    static let lanes = 2

    init(harness: ClusterHarness, orgs: [Org], namespace: UInt64) {
        self.harness = harness
        self.orgs = orgs
        self.namespace = namespace
    }

    func setTargets(_ urls: [String]) { state.withLock { $0.targets = urls } }
    func healed() { state.withLock { $0.healed = true } }
    func stop() { state.withLock { $0.stopped = true } }
    var snapshot: State { state.withLock { $0 } }

    /// Runs the lanes until `stop()` (or 10 minutes, a bound for a test that lost its way).
    func run() async {
        let deadline = ContinuousClock.now + .seconds(600)
        await withTaskGroup(of: Void.self) { group in
            for lane in 0..<Self.lanes {
                group.addTask {
                    while ContinuousClock.now < deadline, !self.state.withLock({ $0.stopped }) {
                        await self.one(lane: lane)
                        try? await Task.sleep(for: Self.pause)
                    }
                }
            }
        }
    }

    private func one(lane: Int) async {
        let (n, url, victim) = state.withLock { s -> (UInt64, String?, (String, Int)?) in
            s.counter += 1
            let url = s.targets.isEmpty ? nil : s.targets[Int(s.counter % UInt64(s.targets.count))]
            let victim = s.alive.isEmpty ? nil : s.alive.min { $0.key < $1.key }.map { ($0.key, $0.value) }
            return (s.counter, url, victim)
        }
        guard let url else { return }
        let org = Int(n % UInt64(orgs.count))
        let cid = CIDText.synthetic(n, namespace: namespace)
        do {
            switch n % 10 {
            case 0...5:
                let (code, body) = try await harness.api(url: url, .POST, "/pins", body: #"{"cid":"\#(cid)"}"#, token: orgs[org].token)
                record(code, body)
                if code == 202, let id = body["requestid"] as? String {
                    state.withLock {
                        $0.alive[id] = org
                        $0.accepted += 1
                    }
                }
            case 6:
                guard let (id, owner) = victim else { return }
                let (code, body) = try await harness.api(url: url, .POST, "/pins/\(id)", body: #"{"cid":"\#(cid)"}"#, token: orgs[owner].token)
                record(code, body)
                if code == 202, let new = body["requestid"] as? String {
                    state.withLock {
                        $0.alive[id] = nil
                        $0.alive[new] = owner
                        $0.accepted += 1
                    }
                }
            case 7:
                guard let (id, owner) = victim else { return }
                let (code, body) = try await harness.api(url: url, .DELETE, "/pins/\(id)", token: orgs[owner].token)
                record(code, body)
                if code == 202 { state.withLock { $0.alive[id] = nil } }
            default:
                let (code, body) = try await harness.api(url: url, .GET, "/pins?limit=10", token: orgs[org].token)
                record(code, body)
            }
        } catch {
            state.withLock { $0.transportErrors += 1 }
        }
    }

    private func record(_ code: Int, _ body: [String: Any]) {
        state.withLock {
            $0.statuses[code, default: 0] += 1
            if code >= 500 {
                $0.serverErrors += 1
                if $0.healed { $0.serverErrorsAfterHeal += 1 }
                $0.lastServerError = "\(code) \(body)"
            }
        }
    }
}
