// libuv restores a signal's default action when the last watcher of that signal, on any loop,
// stops. The daemon closes its SIGTERM and SIGINT watchers when a drain ends, and a client that sends
// SIGTERM right after its last answer lands in exactly that moment: any thread without the signal
// blocked then takes the default action, and the process dies with 143 (seen in fresh-clone test
// runs, about one in two). So one more watcher of each lives on a loop of its own that never runs and
// is never closed: libuv's handler stays installed for the life of the process, a late signal is
// written to that loop's pipe and dropped (libuv tolerates a full pipe), and closing the daemon's
// own watchers changes nothing for the process.

import Foundation

enum SignalSentinel {
    nonisolated(unsafe) private static var held: (UVLoop, [UVSignal])?

    /// Idempotent; loop thread, before the daemon's own watchers are made.
    static func install() {
        guard held == nil, let loop = try? UVLoop() else { return }
        let watchers = [SIGTERM, SIGINT].compactMap { try? UVSignal(loop: loop, signal: $0) {} }
        held = (loop, watchers)
    }
}
