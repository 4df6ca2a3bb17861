import Foundation
import Pins
import Seams
import Testing

@Suite struct PinQueryTests {
    func parse(_ q: String, strict: Bool = false, limits: Limits = Limits()) throws(PinsError) -> PinQuery {
        try PinQuery(rawQuery: Substring(q), limits: limits, options: APIOptions(strictStatusDefault: strict))
    }

    let cid1 = "bafkreidnwituhru37x4zfkrgpqrmynjmui6mireazghnlcfql675i2xgme"
    let cid2 = "QmViri388kPHXZ21orbPAWHCKbv73VYxsNtvYRH2vmKh4c"

    @Test func defaultsToPinnedOnlyWithoutFilters() throws {
        let q = try parse("")
        #expect(q.statuses == [.pinned])
        #expect(q.limit == 10)
        #expect(try parse("limit=5").statuses == [.pinned])
        #expect(try parse("match=iexact").statuses == [.pinned])  // match without name is no filter
    }

    @Test func defaultsToAllStatusesWhenAnotherFilterIsGiven() throws {
        #expect(try parse("name=x").statuses == Set(PinStatus.allCases))
        #expect(try parse("cid=\(cid1)").statuses == Set(PinStatus.allCases))
        #expect(try parse("before=2020-01-01T00:00:00Z").statuses == Set(PinStatus.allCases))
        #expect(try parse("meta=%7B%22a%22%3A%22b%22%7D").statuses == Set(PinStatus.allCases))
        #expect(try parse("name=x", strict: true).statuses == [.pinned])
    }

    @Test func decodesListsTheWayGoAndJSSendThem() throws {
        let q = try parse("cid=\(cid1)%2C\(cid2)&limit=10&name=hello+world%2B1&status=failed%2Cpinned%2Cpinning%2Cqueued")
        #expect(q.cids == [cid1, cid2])
        #expect(q.name == "hello world+1")
        #expect(q.statuses == Set(PinStatus.allCases))
        let repeated = try parse("status=queued&status=pinning&cid=\(cid1)&cid=\(cid1)")
        #expect(repeated.statuses == [.queued, .pinning])
        #expect(repeated.cids == [cid1])
    }

    @Test func parsesDatesLimitMatchAndMeta() throws {
        let q = try parse(
            "before=2020-07-27T17%3A32%3A28.276%2B02%3A00&after=2020-07-27T10:00:00Z&limit=1000&match=ipartial&name=Ab&meta=%7B%22app_id%22%3A%2299%22%7D"
        )
        #expect(q.before?.floor.rfc3339 == "2020-07-27T15:32:28.276000Z")
        #expect(q.after?.floor.rfc3339 == "2020-07-27T10:00:00.000000Z")
        #expect(q.limit == 1000)
        #expect(q.match == .ipartial)
        #expect(q.meta == ["app_id": "99"])
    }

    @Test(arguments: [
        "limit=0", "limit=1001", "limit=ten", "limit=", "status=done", "status=", "status=queued%2C", "match=fuzzy",
        "before=yesterday", "after=2020-13-01T00:00:00Z", "cid=notacid", "cid=", "meta=%7B%22a%22%3A1%7D",
        "meta=%5B%5D", "meta=nope", "name=%ZZ", "limit=5&limit=6",
    ])
    func rejectsMalformedParameters(_ query: String) {
        #expect(throws: PinsError.self) { try parse(query) }
        do { _ = try parse(query) } catch { #expect(error.status == 400) }
    }

    @Test func boundsNameAndCidCount() throws {
        #expect(throws: PinsError.self) { try parse("name=" + String(repeating: "a", count: 256)) }
        _ = try parse("name=" + String(repeating: "a", count: 255))
        var limits = Limits()
        limits.maxCidsPerQuery = 10
        let ten = (0..<10).map { CIDText.synthetic(UInt64($0)) }
        #expect(try parse("cid=" + ten.joined(separator: ","), limits: limits).cids.count == 10)
        let duplicated = ten + ten
        #expect(try parse("cid=" + duplicated.joined(separator: "%2C"), limits: limits).cids == ten)
        #expect(throws: PinsError.self) {
            try parse("cid=" + (ten + [CIDText.synthetic(99)]).joined(separator: ","), limits: limits)
        }
    }

    @Test func syntheticCIDsAreValidAndDistinct() {
        let cids = (0..<500).map { CIDText.synthetic(UInt64($0), namespace: 3) }
        #expect(Set(cids).count == 500)
        for c in cids { if case .failure(let e) = CIDValidation.validate(c) { Issue.record("\(c): \(e)") } }
    }
}

@Suite struct PinRequestTests {
    func body(_ json: String, limits: Limits = Limits()) throws -> PinRequest {
        try PinRequest(json: JSONSerialization.jsonObject(with: Data(json.utf8)), limits: limits)
    }

    @Test func acceptsAFullPin() throws {
        let r = try body(
            #"{"cid":"QmViri388kPHXZ21orbPAWHCKbv73VYxsNtvYRH2vmKh4c","name":"a.pdf","origins":["/ip4/1.2.3.4/tcp/4001/p2p/QmX"],"meta":{"k":"v"},"extra":1}"#
        )
        #expect(r.cid == "QmViri388kPHXZ21orbPAWHCKbv73VYxsNtvYRH2vmKh4c")
        #expect(r.name == "a.pdf")
        #expect(r.origins == ["/ip4/1.2.3.4/tcp/4001/p2p/QmX"])
        #expect(r.meta == ["k": "v"])
    }

    @Test func isLenientWithKubosOrigins() throws {
        let many = (0..<50).map { "\"/ip4/192.168.1.\($0)/udp/4001/quic-v1/p2p/QmPeer\"" }.joined(separator: ",")
        let r = try body(
            #"{"cid":"QmViri388kPHXZ21orbPAWHCKbv73VYxsNtvYRH2vmKh4c","origins":[\#(many),"junk","/ip4/192.168.1.0/udp/4001/quic-v1/p2p/QmPeer"]}"#
        )
        #expect(r.origins.count == Limits().maxStoredOrigins)
        #expect(Set(r.origins).count == r.origins.count)
        #expect(!r.origins.contains("junk"))
    }

    @Test func treatsNullAndEmptyOptionalFieldsAsAbsent() throws {
        let r = try body(#"{"cid":"QmViri388kPHXZ21orbPAWHCKbv73VYxsNtvYRH2vmKh4c","name":"","origins":null,"meta":null}"#)
        #expect(r.name == nil)
        #expect(r.origins.isEmpty)
        #expect(r.meta.isEmpty)
    }

    @Test(arguments: [
        (#"[]"#, "INVALID_BODY"), (#"{}"#, "INVALID_BODY"), (#"{"cid":null}"#, "INVALID_BODY"),
        (#"{"cid":5}"#, "INVALID_CID"), (#"{"cid":"nope"}"#, "INVALID_CID"),
        (#"{"cid":"QmViri388kPHXZ21orbPAWHCKbv73VYxsNtvYRH2vmKh4c","name":7}"#, "INVALID_NAME"),
        (#"{"cid":"QmViri388kPHXZ21orbPAWHCKbv73VYxsNtvYRH2vmKh4c","meta":{"a":1}}"#, "INVALID_META"),
        (#"{"cid":"QmViri388kPHXZ21orbPAWHCKbv73VYxsNtvYRH2vmKh4c","meta":{"a":true}}"#, "INVALID_META"),
        (#"{"cid":"QmViri388kPHXZ21orbPAWHCKbv73VYxsNtvYRH2vmKh4c","meta":"a=b"}"#, "INVALID_META"),
        (#"{"cid":"QmViri388kPHXZ21orbPAWHCKbv73VYxsNtvYRH2vmKh4c","origins":"/ip4/1.2.3.4"}"#, "INVALID_ORIGINS"),
        (#"{"cid":"QmViri388kPHXZ21orbPAWHCKbv73VYxsNtvYRH2vmKh4c","origins":[1]}"#, "INVALID_ORIGINS"),
    ])
    func rejectsMalformedBodies(_ json: String, _ reason: String) {
        do {
            _ = try body(json)
            Issue.record("accepted \(json)")
        } catch let e as PinsError {
            #expect(e.status == 400)
            #expect(e.reason == reason)
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test func boundsNameAndMeta() throws {
        let long = String(repeating: "é", count: 128)  // 256 bytes, 128 characters
        #expect(throws: PinsError.self) { try body(#"{"cid":"QmViri388kPHXZ21orbPAWHCKbv73VYxsNtvYRH2vmKh4c","name":"\#(long)"}"#) }
        var limits = Limits()
        limits.maxMetaKeys = 2
        #expect(throws: PinsError.self) {
            try body(#"{"cid":"QmViri388kPHXZ21orbPAWHCKbv73VYxsNtvYRH2vmKh4c","meta":{"a":"1","b":"2","c":"3"}}"#, limits: limits)
        }
        limits = Limits()
        limits.maxMetaBytes = 64
        #expect(throws: PinsError.self) {
            try body(
                #"{"cid":"QmViri388kPHXZ21orbPAWHCKbv73VYxsNtvYRH2vmKh4c","meta":{"a":"\#(String(repeating: "x", count: 80))"}}"#,
                limits: limits
            )
        }
    }
}
