import DeterministicSeams
import Seams
import Testing

@Suite struct TimestampTests {
    @Test func formatsSixFractionDigitsInUTC() {
        #expect(Timestamp(microsecondsSinceEpoch: 0).rfc3339 == "1970-01-01T00:00:00.000000Z")
        #expect(Timestamp(microsecondsSinceEpoch: 1_595_871_148_276_000).rfc3339 == "2020-07-27T17:32:28.276000Z")
        #expect(Timestamp(microsecondsSinceEpoch: 951_782_400_000_001).rfc3339 == "2000-02-29T00:00:00.000001Z")
        #expect(Timestamp(microsecondsSinceEpoch: -1).rfc3339 == "1969-12-31T23:59:59.999999Z")
    }

    @Test func parsesEveryRFC3339Form() throws {
        let base = Timestamp(microsecondsSinceEpoch: 1_595_871_148_276_000)
        for text in [
            "2020-07-27T17:32:28.276Z", "2020-07-27T17:32:28.276000Z", "2020-07-27t17:32:28.276z",
            "2020-07-27T19:32:28.276+02:00", "2020-07-27T12:32:28.276-05:00", "2020-07-27 17:32:28.276Z",
            "2020-07-27T17:32:28.276000000Z",
        ] {
            let p = try #require(ParsedDateTime(rfc3339: text), "\(text)")
            #expect(p.floor == base, "\(text)")
            #expect(p.ceiling == base, "\(text)")
        }
        let whole = try #require(ParsedDateTime(rfc3339: "2020-07-27T17:32:28Z"))
        #expect(whole.floor == Timestamp(microsecondsSinceEpoch: 1_595_871_148_000_000))
    }

    @Test func roundTripsItsOwnOutput() throws {
        for micros: Int64 in [0, 1, 999_999, 1_764_075_600_123_456, 4_102_444_799_999_999] {
            let t = Timestamp(microsecondsSinceEpoch: micros)
            let p = try #require(ParsedDateTime(rfc3339: t.rfc3339))
            #expect(p.floor == t)
            #expect(!p.hasSubMicrosecondPart)
        }
    }

    @Test func keepsNanosecondsExactForStrictComparisons() throws {
        let p = try #require(ParsedDateTime(rfc3339: "2020-07-27T17:32:28.1234567Z"))
        #expect(p.floor.microseconds % 1_000_000 == 123_456)
        #expect(p.hasSubMicrosecondPart)
        #expect(p.ceiling.microseconds == p.floor.microseconds + 1)
    }

    @Test(arguments: [
        "", "2020-07-27", "2020-07-27T17:32:28", "2020-13-01T00:00:00Z", "2021-02-29T00:00:00Z",
        "2020-07-27T24:00:00Z", "2020-07-27T17:32:28.Z", "2020-07-27T17:32:28+0200", "2020-07-27T17:32:28.276ZZ",
        "yesterday", "1595871148",
    ])
    func rejectsMalformedDates(_ text: String) {
        #expect(ParsedDateTime(rfc3339: text) == nil)
    }
}

@Suite struct TypeIDTests {
    @Test func roundTripsAndSortsByTime() throws {
        let clock = VirtualWallClock()
        let entropy = SeededEntropy(seed: 42)
        let a = TypeID.make("pin", clock: clock, entropy: entropy)
        clock.advance(microseconds: 2000)
        let b = TypeID.make("pin", clock: clock, entropy: entropy)
        #expect(a.description.hasPrefix("pin_"))
        #expect(a.description.count == 30)
        #expect(a.description < b.description)
        let parsed = try #require(TypeID(parsing: a.description, prefix: "pin"))
        #expect(parsed == a)
        #expect(TypeID(prefix: "pin", bytes: a.bytes) == a)
        // UUIDv7 version and variant bits.
        #expect((a.high >> 12) & 0xF == 7)
        #expect(a.low >> 62 == 0b10)
    }

    @Test func rejectsWrongPrefixAndJunk() {
        let id = TypeID.make("org", clock: VirtualWallClock(), entropy: SeededEntropy(seed: 1)).description
        #expect(TypeID(parsing: id, prefix: "pin") == nil)
        #expect(TypeID(parsing: "pin_", prefix: "pin") == nil)
        #expect(TypeID(parsing: "pin_8zzzzzzzzzzzzzzzzzzzzzzzzz", prefix: "pin") == nil)  // > 128 bits
        #expect(TypeID(parsing: "pin_0123456789abcdefghjkmnpqrU", prefix: "pin") == nil)  // uppercase
        #expect(TypeID(parsing: "pin_0123456789abcdefghjkmnpqri", prefix: "pin") == nil)  // 'i' not in alphabet
    }

    @Test func seededEntropyReplays() {
        let a = SeededEntropy(seed: 7)
        let b = SeededEntropy(seed: 7)
        #expect((0..<100).map { _ in a.next() } == (0..<100).map { _ in b.next() })
        #expect(SeededEntropy(seed: 8).next() != SeededEntropy(seed: 7).next())
        let e = SeededEntropy(seed: 3)
        for _ in 0..<1000 { #expect((5...9).contains(e.int(in: 5...9))) }
    }
}

@Suite struct DurationTextTests {
    @Test func parsesOperatorDurations() {
        #expect(DurationText.seconds("90s") == 90)
        #expect(DurationText.seconds("2m") == 120)
        #expect(DurationText.seconds("1h30m") == 5400)
        #expect(DurationText.seconds("30d") == 2_592_000)
        #expect(DurationText.microseconds("500ms") == 500_000)
    }

    @Test(arguments: ["", "30", "d", "-5m", "5x", "1.5h", "99999999999999999999d"])
    func rejectsMalformed(_ text: String) {
        #expect(DurationText.microseconds(text) == nil)
    }

    /// Flags and configuration read durations alike: a bare number is seconds.
    @Test func flagsAndConfigurationAgree() {
        #expect(DurationText.operatorSeconds("30") == 30)
        #expect(DurationText.operatorSeconds(" 90s ") == 90)
        #expect(DurationText.operatorSeconds("1h30m") == 5400)
        #expect(DurationText.operatorSeconds("0") == 0)
        for bad in ["-30", "-5m", "soon", "", "1.5h"] { #expect(DurationText.operatorSeconds(bad) == nil, "\(bad)") }
        #expect(DurationText.isNegative("-5m") && DurationText.isNegative("-30"))
        #expect(!DurationText.isNegative("5m") && !DurationText.isNegative("-soon"))
    }
}
