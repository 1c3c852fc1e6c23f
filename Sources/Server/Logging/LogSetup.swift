// Logging for the daemon: swift-log bootstrapped with a handler that writes one line per event to
// stderr. Under systemd (JOURNAL_STREAM names our stderr) each line starts with a syslog priority
// prefix ("<6>"), which journald strips and records as the entry's priority, so `journalctl -p
// warning` works; it carries no timestamp, since the journal stamps every entry. Elsewhere lines
// start with an RFC 3339 UTC timestamp. The level is process-wide and can change while running
// (SIGHUP re-reads log.level): every handler reads it at each call instead of copying it.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import Logging
import SystemCalls
import Synchronization

public enum LogSetup {
    private static let bootstrapped = Mutex(false)
    private static let levelIndex = Atomic<Int>(Logger.Level.allCases.firstIndex(of: .info)!)

    /// Installs the stderr handler (once per process: swift-log allows a single bootstrap, so later
    /// calls, as from several tests, only set the level) and sets the level.
    public static func bootstrap(level: Logger.Level, environment: [String: String] = ProcessInfo.processInfo.environment) {
        setLevel(level)
        let first = bootstrapped.withLock { done in
            defer { done = true }
            return !done
        }
        guard first else { return }
        let style = StderrLogHandler.Style.detect(environment: environment)
        LoggingSystem.bootstrap { label in StderrLogHandler(label: label, style: style) }
    }

    /// The least severe level written, for every logger at once.
    public static var level: Logger.Level {
        Logger.Level.allCases[levelIndex.load(ordering: .relaxed)]
    }

    public static func setLevel(_ level: Logger.Level) {
        levelIndex.store(Logger.Level.allCases.firstIndex(of: level)!, ordering: .relaxed)
    }
}

public struct StderrLogHandler: LogHandler {
    public enum Style: Sendable, Equatable {
        /// "<6>info lorad.http: message key=value": journald reads the priority and adds the time.
        case journal
        /// "2025-01-02T03:04:05.678Z info lorad.http: message key=value".
        case plain

        /// Journal when JOURNAL_STREAM ("device:inode") is the stream stderr is connected to, as
        /// systemd.exec(5) recommends checking: a child that inherited the variable but writes
        /// elsewhere must not print priority prefixes into a file.
        public static func detect(environment: [String: String], fd: Int32 = 2) -> Style {
            guard let value = environment["JOURNAL_STREAM"] else { return .plain }
            let parts = value.split(separator: ":")
            guard parts.count == 2, let dev = UInt64(parts[0]), let ino = UInt64(parts[1]),
                  let st = try? Posix.fstat(fd) else { return .plain }
            return UInt64(st.st_dev) == dev && UInt64(st.st_ino) == ino ? .journal : .plain
        }
    }

    public let label: String
    public let style: Style
    private let sink: @Sendable (String) -> Void
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    private var levelOverride: Logger.Level?

    /// Writes to stderr unless `sink` says otherwise (tests capture lines).
    public init(label: String, style: Style, metadataProvider: Logger.MetadataProvider? = nil,
                sink: @escaping @Sendable (String) -> Void = StderrLogHandler.writeToStderr) {
        self.label = label
        self.style = style
        self.metadataProvider = metadataProvider
        self.sink = sink
    }

    /// The process-wide level (LogSetup.level), unless this logger's level was set explicitly.
    public var logLevel: Logger.Level {
        get { levelOverride ?? LogSetup.level }
        set { levelOverride = newValue }
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { _, new in new } }
        if let extra = event.metadata { merged.merge(extra) { _, new in new } }
        if let error = event.error { merged["error"] = .string("\(error)") }
        sink(format(level: event.level, message: event.message.description, metadata: merged))
    }

    /// One line, ending in "\n". Newlines inside the message or values are escaped, so one event
    /// is always one line (and one journal entry).
    func format(level: Logger.Level, message: String, metadata: Logger.Metadata, now: timespec? = nil) -> String {
        var line: String
        switch style {
        case .journal: line = "<\(Self.syslogPriority(level))>"
        case .plain: line = Self.timestamp(now ?? Self.realtimeNow()) + " "
        }
        line += "\(level.rawValue) \(label): " + Self.escapeLineBreaks(message)
        for key in metadata.keys.sorted() {
            line += " \(key)=" + Self.formatValue(metadata[key]!)
        }
        return line + "\n"
    }

    /// syslog(3) priorities: journald and `journalctl -p` understand these.
    static func syslogPriority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: 7
        case .info: 6
        case .notice: 5
        case .warning: 4
        case .error: 3
        case .critical: 2
        }
    }

    static func formatValue(_ value: Logger.Metadata.Value) -> String {
        switch value {
        case .string(let s): return quoteIfNeeded(s)
        case .stringConvertible(let c): return quoteIfNeeded(c.description)
        case .array(let items): return quoteIfNeeded("[" + items.map { flat($0) }.joined(separator: ", ") + "]")
        case .dictionary(let d):
            return quoteIfNeeded("{" + d.keys.sorted().map { "\($0): \(flat(d[$0]!))" }.joined(separator: ", ") + "}")
        }
    }

    private static func flat(_ value: Logger.Metadata.Value) -> String {
        switch value {
        case .string(let s): s
        case .stringConvertible(let c): c.description
        case .array(let items): "[" + items.map { flat($0) }.joined(separator: ", ") + "]"
        case .dictionary(let d): "{" + d.keys.sorted().map { "\($0): \(flat(d[$0]!))" }.joined(separator: ", ") + "}"
        }
    }

    /// key=value stays one token for grep and logfmt readers: values with spaces, quotes, "=" or
    /// control characters are quoted, with backslash escapes. (Not JSONValue.quoted: logfmt quotes
    /// only when needed and writes other control characters as \xHH, as logfmt readers expect.)
    static func quoteIfNeeded(_ s: String) -> String {
        let plain = !s.isEmpty && s.unicodeScalars.allSatisfy {
            $0.value > 0x20 && $0.value != 0x7F && $0 != "\"" && $0 != "=" && $0 != "\\"
        }
        if plain { return s }
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F {
                    out += "\\x" + (scalar.value < 0x10 ? "0" : "") + String(scalar.value, radix: 16)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }

    static func escapeLineBreaks(_ s: String) -> String {
        guard s.contains(where: { $0.isNewline }) else { return s }
        var out = ""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    static func realtimeNow() -> timespec {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return now
    }

    /// "2025-01-02T03:04:05.678Z".
    static func timestamp(_ time: timespec) -> String {
        var seconds = time.tv_sec
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ n: Int32, _ width: Int) -> String {
            let s = String(n)
            return String(repeating: "0", count: max(0, width - s.count)) + s
        }
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))"
            + "T\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2))"
            + ".\(pad(Int32(time.tv_nsec / 1_000_000), 3))Z"
    }

    /// One write(2) per line, so lines from different threads never interleave mid-line.
    public static let writeToStderr: @Sendable (String) -> Void = { line in
        // stderr closed or full: nowhere to report it.
        try? Posix.writeAll(2, Array(line.utf8))
    }
}
