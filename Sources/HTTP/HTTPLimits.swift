// The bounds the request parser enforces, so that one connection can make us buffer only so much.
// Each limit names the status a violation gets: the request line 414, the header section (and the
// chunked trailers, which count against the same budget) 431, the body 413. The defaults suit an API
// whose requests are a few kilobytes of JSON and whose largest bodies are training batches.

/// Size limits for `HTTPParser`. Every byte the parser buffers is bounded by one of these.
public struct HTTPLimits: Sendable, Equatable {
    /// Longest request line, without its CRLF. Longer -> 414 URI Too Long.
    public var maxRequestLineBytes: Int
    /// Longest header section: every field line with its CRLF plus the empty line that ends the
    /// section, plus any chunked trailers. Longer -> 431 Request Header Fields Too Large.
    public var maxHeaderBytes: Int
    /// Most field lines in the header section (trailers included). More -> 431.
    public var maxHeaderCount: Int
    /// Largest body: the Content-Length, or the decoded total of a chunked body. Larger -> 413.
    public var maxBodyBytes: Int
    /// Longest chunk-size line (size and extensions), without its CRLF. Longer -> 400.
    public var maxChunkLineBytes: Int
    /// What the 413 calls `maxBodyBytes`: the setting an operator would raise (a server passes its
    /// configuration key).
    public var maxBodyBytesSetting: String

    public init(maxRequestLineBytes: Int = 8192, maxHeaderBytes: Int = 32768, maxHeaderCount: Int = 100,
                maxBodyBytes: Int = 8 << 20, maxChunkLineBytes: Int = 4096, maxBodyBytesSetting: String = "maxBodyBytes") {
        self.maxRequestLineBytes = maxRequestLineBytes
        self.maxHeaderBytes = maxHeaderBytes
        self.maxHeaderCount = maxHeaderCount
        self.maxBodyBytes = maxBodyBytes
        self.maxChunkLineBytes = maxChunkLineBytes
        self.maxBodyBytesSetting = maxBodyBytesSetting
    }

    /// `maxBodyBytes` as the limit a request gets unless its server decides otherwise.
    public var defaultBodyLimit: HTTPBodyLimit { HTTPBodyLimit(bytes: maxBodyBytes, setting: maxBodyBytesSetting) }
}

/// One request's body limit, decided by the server once the request's head has arrived and before
/// any of its body is read (`HTTPParser.feed(_:bodyLimit:)`): a route that takes large uploads raises
/// it for the callers it admits, while every other request keeps `HTTPLimits.maxBodyBytes`.
public struct HTTPBodyLimit: Sendable, Equatable {
    public var bytes: Int
    /// The setting that sets it, named in the 413's message so the client knows what to ask for.
    public var setting: String

    public init(bytes: Int, setting: String) {
        self.bytes = bytes
        self.setting = setting
    }
}
