// Server-Sent Events framing (WHATWG HTML §9.2, "text/event-stream"): an event is a few "field: value"
// lines ended by an empty line. Data with line breaks becomes one "data:" line per line (the client
// joins them with "\n"); CRLF, LF and CR all count as breaks, as in the spec's parser. Event names and
// ids cannot hold line breaks, so breaks in them become spaces rather than starting a new field.

public enum ServerSentEvents {
    /// "event: <event>\nid: <id>\ndata: <line>\n...\n" (event and id only when given).
    public static func event(data: String, event: String? = nil, id: String? = nil) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(data.utf8.count + 16)
        if let event { field("event", singleLine(event), into: &out) }
        if let id { field("id", singleLine(id), into: &out) }
        for line in lines(data) { field("data", line, into: &out) }
        out.append(ByteClass.lf)
        return out
    }

    /// ": <text>\n\n", a comment that clients ignore; sent periodically it keeps idle connections and
    /// proxies from timing out.
    public static func comment(_ text: String) -> [UInt8] {
        var out: [UInt8] = []
        for line in lines(text) {
            out += ": ".utf8
            out += line
            out.append(ByteClass.lf)
        }
        out.append(ByteClass.lf)
        return out
    }

    /// "data: [DONE]\n\n", the end of an OpenAI-style stream.
    public static let done: [UInt8] = event(data: "[DONE]")

    static func field(_ name: String, _ value: some Sequence<UInt8>, into out: inout [UInt8]) {
        out += name.utf8
        out += ": ".utf8
        out += value
        out.append(ByteClass.lf)
    }

    /// The lines of `text`, split at CRLF, LF or CR; always at least one (possibly empty) line.
    static func lines(_ text: String) -> [ArraySlice<UInt8>] {
        let bytes = Array(text.utf8)
        var result: [ArraySlice<UInt8>] = []
        var start = 0, k = 0
        while k < bytes.count {
            let b = bytes[k]
            if b == ByteClass.cr || b == ByteClass.lf {
                result.append(bytes[start..<k])
                k += (b == ByteClass.cr && k + 1 < bytes.count && bytes[k + 1] == ByteClass.lf) ? 2 : 1
                start = k
            } else {
                k += 1
            }
        }
        result.append(bytes[start..<bytes.count])
        return result
    }

    static func singleLine(_ text: String) -> [UInt8] {
        text.utf8.map { $0 == ByteClass.cr || $0 == ByteClass.lf ? ByteClass.sp : $0 }
    }
}
