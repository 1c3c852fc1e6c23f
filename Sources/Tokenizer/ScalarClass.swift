// The four classes of code point the smollm pre-tokenizer tells apart (\p{L}, \p{N}, \s, anything
// else), decided the way llama.cpp decides them (unicode.cpp `unicode_cpt_flags_from_cpt`, tables
// from scripts/gen-unicode-data.py):
// - letter: general category L* (Lu, Ll, Lt, Lm, Lo); number: N* (Nd, Nl, No);
// - whitespace: exactly the 25 White_Space code points, whatever their category;
// - llama.cpp's tables are Unicode 15.1, Swift's are newer (17.0 in Swift 6.3). A code point assigned
//   after 15.1 is "undefined" to llama.cpp, which the GPT-2 matcher treats like punctuation, so it is
//   `.other` here too. Checked over all 0x110000 code points against the tables vendored in
//   llama-cpp-python 0.3.36: with the age cap the classes agree everywhere, without it 9,039 newer
//   letters and numbers would differ.

enum ScalarClass: UInt8 {
    case letter, number, whitespace, other

    init(_ scalar: Unicode.Scalar) {
        let v = scalar.value
        if v < 0x80 {
            self = ScalarClass.ascii[Int(v)]
            return
        }
        if ScalarClass.isNonASCIIWhitespace(v) {
            self = .whitespace
            return
        }
        let properties = scalar.properties
        switch properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
            self = ScalarClass.isInLlamaTables(properties) ? .letter : .other
        case .decimalNumber, .letterNumber, .otherNumber:
            self = ScalarClass.isInLlamaTables(properties) ? .number : .other
        default:
            self = .other
        }
    }

    /// The newest Unicode version llama.cpp's category tables know (see the header).
    static let llamaUnicodeVersion = (major: 15, minor: 1)

    private static func isInLlamaTables(_ properties: Unicode.Scalar.Properties) -> Bool {
        guard let age = properties.age else { return false }
        return (age.major, age.minor) <= llamaUnicodeVersion
    }

    /// White_Space code points above 0x7F (llama.cpp unicode-data.cpp `unicode_set_whitespace`).
    private static func isNonASCIIWhitespace(_ v: UInt32) -> Bool {
        switch v {
        case 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000: return true
        default: return false
        }
    }

    static let ascii: [ScalarClass] = (0..<128).map { v -> ScalarClass in
        switch v {
        case 0x09...0x0D, 0x20: return .whitespace
        case 0x30...0x39: return .number
        case 0x41...0x5A, 0x61...0x7A: return .letter
        default: return .other
        }
    }
}
