import Pins
import Testing

@Suite struct CIDTests {
    @Test(arguments: [
        "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG",  // CIDv0
        "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi",  // v1 dag-pb base32
        "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy",  // v1 raw base32
        "BAFKREIGH2AKISCAILDCQABSYG3DFR6CHU3FGPREGIYMSCK7E7AQA4S52ZY",  // base32 upper
        "bafkreidnwituhru37x4zfkrgpqrmynjmui6mireazghnlcfql675i2xgme",  // sha256("hello anchorage") raw
        "zb2rhe2VC6LNbeJUjsZnxMfrQff5sdbkyshn9gzr6Ach3HsGL",  // the same, base58btc
        "f015512206db22743c69bfdf992aa267c22cc352ca23cc44480c98ed588b05fbfd46ae661",  // base16
        "k2cwuebdtvuowyxnauvi86ay7ol6m22vowtm5d1hmflib3i5cn0ux55t",  // base36
        "mAVUSIG2yJ0PGm/35kqomfCLMNSyiPMREgMmO1YiwX7/UauZh",  // base64
        "uAVUSIG2yJ0PGm_35kqomfCLMNSyiPMREgMmO1YiwX7_UauZh",  // base64url
        "QmViri388kPHXZ21orbPAWHCKbv73VYxsNtvYRH2vmKh4c",  // the same digest as CIDv0
    ])
    func acceptsValidCIDs(_ cid: String) {
        if case .failure(let e) = CIDValidation.validate(cid) { Issue.record("\(cid) rejected: \(e)") }
    }

    @Test(arguments: [
        "", "hello", "Qm", "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbd0",  // '0' is not base58
        "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdGG",  // 47 chars
        "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52z",  // truncated digest
        "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zyaa",  // trailing bytes
        "xafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy",  // unknown multibase
        "b!!!", "bafy 123", String(repeating: "b", count: 600),
    ])
    func rejectsInvalidCIDs(_ cid: String) {
        guard case .failure(let e) = CIDValidation.validate(cid) else {
            Issue.record("\(cid) accepted")
            return
        }
        #expect(e.status == 400)
        #expect(e.reason == "INVALID_CID")
    }

    @Test func reportsVersionAndCodec() throws {
        let v1 = try CIDValidation.validate("bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy").get()
        #expect(v1.version == 1)
        #expect(v1.codec == 0x55)
        #expect(v1.hashCode == 0x12)
        #expect(v1.digestLength == 32)
        let v0 = try CIDValidation.validate("QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG").get()
        #expect(v0.version == 0)
    }
}

@Suite struct CIDKeyTests {
    static let lower = "bafkreidnwituhru37x4zfkrgpqrmynjmui6mireazghnlcfql675i2xgme"

    /// Every multibase spelling of one CIDv1 keys as its lowercase base32 form.
    @Test(arguments: [
        "bafkreidnwituhru37x4zfkrgpqrmynjmui6mireazghnlcfql675i2xgme",
        "BAFKREIDNWITUHRU37X4ZFKRGPQRMYNJMUI6MIREAZGHNLCFQL675I2XGME",
        "zb2rhe2VC6LNbeJUjsZnxMfrQff5sdbkyshn9gzr6Ach3HsGL",
        "f015512206db22743c69bfdf992aa267c22cc352ca23cc44480c98ed588b05fbfd46ae661",
        "k2cwuebdtvuowyxnauvi86ay7ol6m22vowtm5d1hmflib3i5cn0ux55t",
        "mAVUSIG2yJ0PGm/35kqomfCLMNSyiPMREgMmO1YiwX7/UauZh",
        "uAVUSIG2yJ0PGm_35kqomfCLMNSyiPMREgMmO1YiwX7_UauZh",
    ])
    func v1SpellingsShareOneKey(_ spelling: String) {
        #expect(CIDKey.canonical(spelling) == Self.lower)
    }

    @Test func v0StaysDistinctFromItsV1Twin() {
        let v0 = "QmViri388kPHXZ21orbPAWHCKbv73VYxsNtvYRH2vmKh4c"  // same digest, dag-pb v0
        #expect(CIDKey.canonical(v0) == v0)
        #expect(CIDKey.canonical(v0) != Self.lower)
        let dagPB = "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi"
        #expect(CIDKey.canonical(dagPB) == dagPB)
    }

    @Test(arguments: [
        "", "notacid", "Qm",
        "bafkreidnwituhru37x4zfkrgpqrmynjmui6mireazghnlcfql675i2xgm",  // truncated
        "/ipfs/bafkreidnwituhru37x4zfkrgpqrmynjmui6mireazghnlcfql675i2xgme",  // a path, not a CID
    ])
    func nonCIDsHaveNoKey(_ text: String) {
        #expect(CIDKey.canonical(text) == nil)
    }

    @Test func syntheticCIDsAreCanonical() {
        for n in UInt64(0)..<20 {
            let cid = CIDText.synthetic(n)
            #expect(CIDKey.canonical(cid) == cid)
            #expect(CIDKey.canonical(cid.uppercased()) == cid)
        }
    }
}
