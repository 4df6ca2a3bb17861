"""Hypothesis strategies for CIDs the server must accept, in every multibase it decodes.

The spec types `cid` as a bare string and its examples ("QmCIDToBePinned", "Qm1") are not CIDs,
so without these the fuzzer's "valid" pins would all be 400s and the storage layer never reached.
"""

import base64

from hypothesis import strategies as st

KNOWN = [
    "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy",
    "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG",
]

BASE58BTC = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def base_n(data: bytes, alphabet: str) -> str:
    """Big-number base (base58btc, base36): each leading zero byte is one zero digit."""
    n = int.from_bytes(data, "big")
    digits = ""
    while n:
        n, r = divmod(n, len(alphabet))
        digits = alphabet[r] + digits
    zeros = len(data) - len(data.lstrip(b"\0"))
    return alphabet[0] * zeros + digits


# Multibase prefix -> encoder, for every prefix the server decodes.
MULTIBASES = {
    "b": lambda d: base64.b32encode(d).decode().lower().rstrip("="),
    "B": lambda d: base64.b32encode(d).decode().rstrip("="),
    "f": lambda d: d.hex(),
    "F": lambda d: d.hex().upper(),
    "z": lambda d: base_n(d, BASE58BTC),
    "k": lambda d: base_n(d, BASE36),
    "K": lambda d: base_n(d, BASE36).upper(),
    "m": lambda d: base64.b64encode(d).decode().rstrip("="),
    "u": lambda d: base64.urlsafe_b64encode(d).decode().rstrip("="),
    "M": lambda d: base64.b64encode(d).decode(),
    "U": lambda d: base64.urlsafe_b64encode(d).decode(),
}


def raw_cidv1(digest: bytes) -> str:
    """The common case: raw codec, sha2-256, base32."""
    return "b" + MULTIBASES["b"](bytes([0x01, 0x55, 0x12, 0x20]) + digest)


def cidv0(digest: bytes) -> str:
    return base_n(bytes([0x12, 0x20]) + digest, BASE58BTC)


@st.composite
def any_cidv1(draw) -> str:
    """CIDv1 with any codec and multihash (identity, sha2-256, sha2-512, blake3…), any multibase."""
    codec = draw(st.sampled_from([0x55, 0x70, 0x71, 0x0129, 0x0200]) | st.integers(0, 2**32))
    hash_code, length = draw(
        st.sampled_from([(0x12, 32), (0x13, 64), (0x1E, 32), (0xB220, 32)])
        | st.tuples(st.just(0x00), st.integers(0, 64))  # identity: the digest is the data
    )
    digest = draw(st.binary(min_size=length, max_size=length))
    prefix = draw(st.sampled_from(sorted(MULTIBASES)))
    return prefix + MULTIBASES[prefix](varint(1) + varint(codec) + varint(hash_code) + varint(length) + digest)


digests = st.binary(min_size=32, max_size=32)

# Mostly the two everyday shapes, so that filters and replaces hit pins that exist.
valid_cids = st.one_of(
    st.sampled_from(KNOWN),
    digests.map(raw_cidv1),
    digests.map(cidv0),
    any_cidv1(),
)


def _decode_base_n(text: str, alphabet: str) -> bytes | None:
    n = 0
    for ch in text:
        digit = alphabet.find(ch)
        if digit < 0:
            return None
        n = n * len(alphabet) + digit
    zeros = len(text) - len(text.lstrip(alphabet[0]))
    return b"\0" * zeros + (n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b"")


def _decode_multibase(text: str) -> bytes | None:
    prefix, body = text[:1], text[1:]
    try:
        if prefix in "bB":
            return base64.b32decode(body.upper() + "=" * (-len(body) % 8))
        if prefix in "fF":
            return bytes.fromhex(body)
        if prefix == "z":
            return _decode_base_n(body, BASE58BTC)
        if prefix in "kK":
            return _decode_base_n(body.lower(), BASE36)
        if prefix in "mM":
            return base64.b64decode(body.rstrip("=") + "=" * (-len(body.rstrip("=")) % 4), validate=True)
        if prefix in "uU":
            body = body.rstrip("=")
            return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except ValueError:
        return None
    return None


def canonical(cid: str) -> str | None:
    """The server's identity of a CID (`CIDKey.canonical`): CIDv1 in any multibase as base32 `b…`,
    CIDv0 unchanged; None when it does not decode. The `cid` filter matches by this."""
    if len(cid) == 46 and cid.startswith("Qm"):
        return cid
    binary = _decode_multibase(cid)
    return None if binary is None else "b" + MULTIBASES["b"](binary)
