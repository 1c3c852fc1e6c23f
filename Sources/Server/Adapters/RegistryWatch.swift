// Noticing registry changes while the daemon runs: inotify watches (UVFSEvent) on the registry root
// (adapters added or removed) and on each adapter's directory (a new `vN` renamed in, `current`
// swapped), and a periodic rescan for file systems that send no events (network file systems miss
// other machines' changes). Every trigger ends in one rescan after a short quiet period, because one
// publish makes several events. Hidden names (the registry's `.lock`, `.publishing-*`) are the
// registry's own scratch and trigger nothing; their effect shows as a rename to `vN` or `current`.
//
// Threading: loop thread only. The rescan itself runs on the loader thread (Daemon.rescanAdapters).

final class RegistryWatch {
    /// Quiet time before a rescan: a publish's events come within a few milliseconds of each other.
    static let settleMilliseconds: UInt64 = 100

    private let loop: UVLoop
    private var watches: [String: UVFSEvent] = [:]
    private let settle: UVTimer
    private let periodic: UVTimer
    private let rescan: (_ reason: String) -> Void
    private var pendingReason: String?
    private let log: (String) -> Void

    init(loop: UVLoop, log: @escaping (String) -> Void, rescan: @escaping (_ reason: String) -> Void) throws {
        self.loop = loop
        self.log = log
        self.rescan = rescan
        settle = try UVTimer(loop: loop)
        periodic = try UVTimer(loop: loop)
    }

    /// Watches exactly `directories` from now on (adds new watches, drops gone ones).
    func watch(_ directories: Set<String>) {
        for (path, w) in watches where !directories.contains(path) {
            w.close()
            watches[path] = nil
        }
        for path in directories where watches[path] == nil {
            do {
                watches[path] = try UVFSEvent(loop: loop, path: path) { [unowned self] name in changed(path, name) }
            } catch {
                // Out of inotify watches, or the directory went away meanwhile: the periodic rescan
                // still sees it.
                log("cannot watch \(path) (\(error)); changes there are seen by the periodic rescan")
            }
        }
    }

    /// Rescans every `seconds` (0: never).
    func setPeriod(seconds: UInt64) {
        periodic.stop()
        guard seconds > 0 else { return }
        periodic.start(after: seconds * 1000, repeat: seconds * 1000) { [unowned self] in rescan("periodic rescan") }
    }

    private func changed(_ directory: String, _ name: String?) {
        if let name, name.hasPrefix(".") { return }
        pendingReason = pendingReason ?? "\(directory)/\(name ?? "") changed"
        settle.start(after: Self.settleMilliseconds) { [unowned self] in
            let reason = pendingReason ?? "a change"
            pendingReason = nil
            rescan(reason)
        }
    }

    func close() {
        settle.close()
        periodic.close()
        for w in watches.values { w.close() }
        watches.removeAll()
    }
}
