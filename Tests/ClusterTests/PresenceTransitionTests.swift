import Cluster
import Seams
import Testing

/// The liveness transitions behind the operator's log lines (peer stopped heartbeating, lost,
/// back) and the unplaced-pins episode: pure values, time given by the test.
@Suite struct PresenceTransitionTests {
    static func node(_ n: UInt64) -> TypeID { TypeID(prefix: IDPrefix.node, high: 0x0193_0000_0000_7000 | n, low: 0x8000_0000_0000_0000 | n) }
    static let me = node(1)
    static let peer = node(2)

    static func heartbeat(_ id: TypeID, name: String) -> Heartbeat {
        Heartbeat(node: id.description, name: name, state: .active, version: "t", inflight: 0, leaderFence: nil, sentAt: 0)
    }

    static func at(_ seconds: Int64) -> Timestamp { Timestamp(secondsSinceEpoch: 1_000_000 + seconds) }

    @Test func eachTransitionIsReportedOnceLiveSilentLostAndBack() {
        var settings = ClusterSettings()
        settings.liveAfterSeconds = 15
        settings.nodeLostAfterSeconds = 120
        var table = PresenceTable(watchingSince: Self.at(0))
        table.heard(Self.heartbeat(Self.me, name: "n1"), at: Self.at(0))
        table.heard(Self.heartbeat(Self.peer, name: "n2"), at: Self.at(0))
        #expect(table.transitions(now: Self.at(0), settings: settings, except: Self.me).isEmpty, "a peer first heard is not news")
        #expect(table.transitions(now: Self.at(15), settings: settings, except: Self.me).isEmpty, "still live at liveAfter")

        let silent = table.transitions(now: Self.at(16), settings: settings, except: Self.me)
        #expect(silent.map(\.to) == [.silent])
        #expect(silent.first?.node == Self.peer && silent.first?.name == "n2" && silent.first?.silentSeconds == 16)
        #expect(table.transitions(now: Self.at(60), settings: settings, except: Self.me).isEmpty, "said once")

        let lost = table.transitions(now: Self.at(121), settings: settings, except: Self.me)
        #expect(lost.map(\.to) == [.lost])
        #expect(lost.first?.from == .silent && lost.first?.silentSeconds == 121)
        #expect(table.transitions(now: Self.at(500), settings: settings, except: Self.me).isEmpty, "said once")

        table.heard(Self.heartbeat(Self.peer, name: "n2"), at: Self.at(600))
        let back = table.transitions(now: Self.at(600), settings: settings, except: Self.me)
        #expect(back.map(\.to) == [.live])
        #expect(back.first?.from == .lost && back.first?.silentSeconds == 600, "back after 600 s of silence")
        #expect(table.transitions(now: Self.at(601), settings: settings, except: Self.me).isEmpty)
    }

    @Test func aLongGapIsReportedAsLostWithoutTheSilentStepAndNeverForThisNode() {
        let settings = ClusterSettings()
        var table = PresenceTable(watchingSince: Self.at(0))
        table.heard(Self.heartbeat(Self.me, name: "n1"), at: Self.at(0))
        table.heard(Self.heartbeat(Self.peer, name: "n2"), at: Self.at(0))
        let changes = table.transitions(now: Self.at(settings.nodeLostAfterSeconds + 1), settings: settings, except: Self.me)
        #expect(changes.map(\.node) == [Self.peer], "this node's own entry is never reported")
        #expect(changes.map(\.to) == [.lost])
    }

    @Test func unplacedPinsAreAnEpisodeThatEndsWhenANodeIsEligibleAgain() {
        let policy = PlacementPolicy(replicationFactor: 2)
        #expect(policy.unplaced == nil)
        #expect(policy.acceptedUnplaced(at: Self.at(10)), "the first of an episode")
        #expect(!policy.acceptedUnplaced(at: Self.at(20)))
        #expect(policy.unplaced == PlacementPolicy.Unplaced(count: 2, since: Self.at(10)))
        #expect(policy.update(eligible: []) == nil, "still no node")
        #expect(policy.unplaced?.count == 2)
        #expect(policy.update(eligible: [Self.peer]) == PlacementPolicy.Unplaced(count: 2, since: Self.at(10)), "ended, with its count")
        #expect(policy.unplaced == nil)
        #expect(policy.update(eligible: [Self.peer]) == nil, "said once")
    }
}
