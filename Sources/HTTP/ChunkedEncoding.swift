// Chunked transfer coding for response bodies (RFC 9112 §7.1): each piece as "<hex size>\r\n<bytes>\r\n",
// the end as "0\r\n\r\n" (no trailers). Used for streamed responses such as Server-Sent Events.

public enum ChunkedEncoding {
    /// One chunk holding `bytes`. An empty input gives no bytes at all, because an empty chunk would
    /// end the body.
    public static func chunk(_ bytes: [UInt8]) -> [UInt8] {
        if bytes.isEmpty { return [] }
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count + 20)
        out += String(bytes.count, radix: 16).utf8
        out += [ByteClass.cr, ByteClass.lf]
        out += bytes
        out += [ByteClass.cr, ByteClass.lf]
        return out
    }

    /// The last chunk, which ends the body: "0\r\n\r\n".
    public static let last: [UInt8] = Array("0\r\n\r\n".utf8)
}
