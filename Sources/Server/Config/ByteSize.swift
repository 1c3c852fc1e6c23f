// Byte sizes as operators write them: an integer number of bytes, or a string with a binary suffix
// ("64KiB", "512 MiB", "1GiB"). Only the IEC suffixes are accepted: "1GB" would leave a reader
// guessing between 10^9 and 2^30, so it is refused with a hint instead of guessed.

public enum ByteSize {
    static let units: [(suffix: String, shift: Int)] = [
        ("B", 0), ("KiB", 10), ("MiB", 20), ("GiB", 30), ("TiB", 40),
    ]

    /// Parses "123", "123B", "4KiB", "4 MiB" (one optional space). Nil for anything else, for
    /// negative or fractional numbers and for values that overflow Int.
    public static func parse(_ text: String) -> Int? {
        var digits = Substring(text)
        var shift = 0
        // Longest suffixes first: "KiB" also ends in "B".
        for unit in units.reversed() where text.hasSuffix(unit.suffix) {
            digits = text.dropLast(unit.suffix.count)
            shift = unit.shift
            break
        }
        if digits.last == " " { digits = digits.dropLast() }
        guard !digits.isEmpty, digits.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
              let n = Int(digits) else { return nil }
        let (value, overflow) = n.multipliedReportingOverflow(by: 1 << shift)
        return overflow ? nil : value
    }

    /// The largest binary unit that divides `bytes` exactly: 1 << 30 -> "1GiB", 1536 -> "1536B"
    /// (so "1.5KiB" is never written), 0 -> "0B".
    public static func format(_ bytes: Int) -> String {
        for unit in units.reversed() where unit.shift > 0 {
            let size = 1 << unit.shift
            if bytes != 0 && bytes % size == 0 { return "\(bytes / size)\(unit.suffix)" }
        }
        return "\(bytes)B"
    }
}
