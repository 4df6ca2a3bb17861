import DeterministicSeams
import Foundation
import Pins
import Seams
import Testing
import Tokens

struct MemoryKeys: SigningKeySource, Denylist {
    var keys: [String: SigningKey]
    var revoked: Set<TypeID> = []
    func verificationKey(kid: String) async throws -> SigningKey? { keys[kid].flatMap { $0.retired == nil ? $0 : nil } }
    func isRevoked(tokenID: TypeID) async throws -> Bool { revoked.contains(tokenID) }
}

@Suite struct TokenTests {
    let clock = VirtualWallClock()
    let entropy = SeededEntropy(seed: 9)

    func setup(revoked: Bool = false) -> (MemoryKeys, SigningKey, TokenClaims) {
        let key = SigningKey(kid: "key_a", secret: entropy.bytes(32), created: clock.now())
        let claims = TokenClaims(
            org: TypeID.make("org", clock: clock, entropy: entropy),
            tokenID: TypeID.make("tok", clock: clock, entropy: entropy),
            issuedAt: clock.now(),
            expiresAt: clock.now().adding(seconds: 60)
        )
        var keys = MemoryKeys(keys: ["key_a": key])
        if revoked { keys.revoked.insert(claims.tokenID) }
        return (keys, key, claims)
    }

    func reason(_ token: String, _ keys: MemoryKeys) async -> String? {
        do {
            _ = try await TokenVerifier(keys: keys, denylist: keys, clock: clock).verify(token)
            return nil
        } catch let e as PinsError {
            #expect(e.status == 401)
            return e.details
        } catch {
            return "\(error)"
        }
    }

    @Test func verifiesItsOwnTokens() async throws {
        let (keys, key, claims) = setup()
        let token = TokenCodec.sign(claims, with: key)
        let verified = try await TokenVerifier(keys: keys, denylist: keys, clock: clock).verify(token)
        #expect(verified.org == claims.org)
        #expect(verified.tokenID == claims.tokenID)
    }

    @Test func refusesExpiredRevokedAndRetired() async {
        var (keys, key, claims) = setup()
        let token = TokenCodec.sign(claims, with: key)
        clock.advance(seconds: 61)
        #expect(await reason(token, keys)?.contains("expired") == true)
        let fresh = setup(revoked: true)
        #expect(await reason(TokenCodec.sign(fresh.2, with: fresh.1), fresh.0)?.contains("revoked") == true)
        claims.expiresAt = clock.now().adding(seconds: 60)
        keys.keys["key_a"]?.retired = clock.now()
        #expect(await reason(TokenCodec.sign(claims, with: key), keys)?.contains("unknown or retired") == true)
    }

    @Test func pinsTheAlgorithmAndRequiresKid() async {
        let (keys, key, claims) = setup()
        let token = TokenCodec.sign(claims, with: key)
        let parts = token.split(separator: ".").map(String.init)
        func header(_ json: String) -> String { Base64URL.encode(Array(json.utf8)) }
        // alg "none" with no signature, and alg swapped while keeping the HS256 signature.
        #expect(await reason(header(#"{"alg":"none","kid":"key_a"}"#) + "." + parts[1] + ".", keys) != nil)
        #expect(await reason(header(#"{"alg":"HS512","kid":"key_a"}"#) + "." + parts[1] + "." + parts[2], keys)?.contains("HS256") == true)
        #expect(await reason(header(#"{"alg":"HS256"}"#) + "." + parts[1] + "." + parts[2], keys)?.contains("kid") == true)
        #expect(await reason(header(#"{"alg":"HS256","kid":"key_zz"}"#) + "." + parts[1] + "." + parts[2], keys) != nil)
    }

    /// Base64url as JWS uses it: every length round-trips; padding, the other alphabet, a
    /// length no encoder produces and stray bits in the last character are refused.
    @Test func base64URLIsStrict() {
        for n in 0..<40 {
            let bytes = entropy.bytes(n)
            #expect(Base64URL.decode(Substring(Base64URL.encode(bytes))) == bytes)
        }
        #expect(Base64URL.decode("-_8") == [0xFB, 0xFF])
        #expect(Base64URL.decode("AA") == [0])
        for bad in ["AA==", "+/8", "A", "AAAAA", "AB", "AA.", "ÿÿ"] {
            #expect(Base64URL.decode(Substring(bad)) == nil, "\(bad)")
        }
    }

    @Test func refusesTamperingAndJunk() async {
        let (keys, key, claims) = setup()
        let token = TokenCodec.sign(claims, with: key)
        let parts = token.split(separator: ".").map(String.init)
        var other = claims
        other.org = TypeID.make("org", clock: clock, entropy: entropy)
        let forgedPayload = TokenCodec.sign(other, with: key).split(separator: ".").map(String.init)[1]
        #expect(await reason(parts[0] + "." + forgedPayload + "." + parts[2], keys)?.contains("signature") == true)
        #expect(await reason("purposefullyInvalid", keys) != nil)
        #expect(await reason("", keys) != nil)
        #expect(await reason(String(repeating: "a", count: 5000), keys) != nil)
        let wrongKey = SigningKey(kid: "key_a", secret: entropy.bytes(32), created: clock.now())
        #expect(await reason(TokenCodec.sign(claims, with: wrongKey), keys)?.contains("signature") == true)
    }
}

/// Counts how often the key ring goes to the database.
actor CountingKeys: ActiveKeySource {
    var keys: [SigningKey]
    private(set) var calls = 0
    init(_ keys: [SigningKey]) { self.keys = keys }
    func activeKeys() async throws -> [SigningKey] {
        calls += 1
        return keys
    }
    func set(_ keys: [SigningKey]) { self.keys = keys }
}

@Suite struct KeyRingTests {
    /// Any `kid` string used to cost a `signing_keys` query, so unauthenticated requests made
    /// the database work per request. Now 10,000 tokens with random kids cost at most one
    /// reload per second of (virtual) time.
    @Test func randomKidsDoNotReachTheDatabasePerRequest() async throws {
        let clock = VirtualWallClock()
        let entropy = SeededEntropy(seed: 4)
        let key = SigningKey(kid: "key_a", secret: entropy.bytes(32), created: clock.now())
        let source = CountingKeys([key])
        let ring = KeyRing(source: source, clock: clock, refreshSeconds: 30, missRefreshSeconds: 1)
        #expect(try await ring.verificationKey(kid: "key_a") == key)
        for n in 0..<10_000 {
            #expect(try await ring.verificationKey(kid: "junk-\(n)-\(entropy.uniform(1 << 40))") == nil)
            if n % 1000 == 999 { clock.advance(seconds: 1) }  // 10 s in all
        }
        let calls = await source.calls
        #expect(calls <= 11, "\(calls) key reloads for 10,000 junk kids over 10 s")
        // A key minted elsewhere is found on first use (after the miss interval); a retired one
        // stops verifying within the refresh interval.
        let fresh = SigningKey(kid: "key_b", secret: entropy.bytes(32), created: clock.now())
        await source.set([key, fresh])
        clock.advance(seconds: 1)
        #expect(try await ring.verificationKey(kid: "key_b") == fresh)
        await source.set([fresh])
        #expect(try await ring.verificationKey(kid: "key_a") == key, "still cached")
        clock.advance(seconds: 30)
        #expect(try await ring.verificationKey(kid: "key_a") == nil)
    }
}

@Suite struct SecretSealerTests {
    @Test func sealedSecretsOpenOnlyWithTheirKeyAndTheirKid() throws {
        let old = try SecretSealer.Key(bytes: Array(repeating: 1, count: 32))
        let new = try SecretSealer.Key(bytes: Array(repeating: 2, count: 32))
        let secret = Array(repeating: UInt8(9), count: 32)
        let sealer = SecretSealer(current: old)
        let (stored, with) = try sealer.seal(secret, kid: "key_a")
        #expect(with == old.id && stored != secret && stored.count == 12 + 32 + 16)
        #expect(try sealer.open(stored, kid: "key_a", sealedWith: with) == secret)
        #expect(throws: SecretSealer.SealError.self, "moved to another kid's row") { try sealer.open(stored, kid: "key_b", sealedWith: with) }
        var tampered = stored
        tampered[20] ^= 1
        #expect(throws: SecretSealer.SealError.self) { try sealer.open(tampered, kid: "key_a", sealedWith: with) }
        // Rotation: the new key seals, the old one still opens; without it, a clear error.
        let rotated = SecretSealer(current: new, previous: [old])
        #expect(try rotated.open(stored, kid: "key_a", sealedWith: with) == secret)
        #expect(throws: SecretSealer.SealError.self) { try SecretSealer(current: new).open(stored, kid: "key_a", sealedWith: with) }
        // No key: stored in the clear, and clear rows open as they are.
        #expect(try SecretSealer().seal(secret, kid: "k").stored == secret)
        #expect(throws: SecretSealer.SealError.self) { try SecretSealer.Key(bytes: [1, 2, 3]) }
    }
}
