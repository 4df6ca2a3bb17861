/// What the API accepts inside its free-text fields. PostgreSQL cannot store U+0000 in text or
/// jsonb at all (it used to surface as a 500); names and `meta` keys are identifiers a person
/// reads and filters on, so no control character belongs in them (and each would cost six
/// bytes when a listing escapes it). `meta` values may hold tabs and newlines, not U+0000.
public enum TextRules {
    /// The first control character (Unicode category Cc: U+0000–U+001F, U+007F–U+009F) in `s`.
    public static func controlCharacter(in s: String) -> Unicode.Scalar? {
        s.unicodeScalars.first { $0.properties.generalCategory == .control }
    }

    public static func containsNUL(_ s: String) -> Bool { s.utf8.contains(0) }

    /// `U+XXXX`, for error details (never the raw character).
    public static func codePoint(_ c: Unicode.Scalar) -> String {
        let hex = String(c.value, radix: 16, uppercase: true)
        return "U+" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex
    }
}
