// What a SIGHUP can change. The daemon re-reads its file and compares: keys that only shape new
// requests and connections (log level, the adapters directory, queue limits, HTTP limits and
// timeouts, the tenants and their tokens) take effect at once; keys bound at start-up (the model and its threads, the listeners,
// the engine's allocations) keep their old values until a restart, and the daemon says so in its
// log. Which is which is the `reload` column of ConfigKey.all.

extension ServerConfig {
    /// The keys (full paths, e.g. "engine.queue_limit") whose values differ in `new`, split into
    /// those a reload applies and those that need a restart.
    public func reloadableDifferences(from new: ServerConfig) -> (applied: [String], needRestart: [String]) {
        var applied: [String] = []
        var needRestart: [String] = []
        for key in ConfigKey.all where key.differs(self, new) {
            switch key.reload {
            case .live: applied.append(key.path)
            case .restart: needRestart.append(key.path)
            }
        }
        if tenants != new.tenants { applied.append("tenants") }
        return (applied, needRestart)
    }

    /// The configuration in effect after reloading `new`: this one with every live key taken from
    /// `new`, and every restart-only key left as it is (still what the running daemon uses).
    public func applyingReloadable(from new: ServerConfig) -> ServerConfig {
        var result = self
        for key in ConfigKey.all where key.reload == .live {
            key.copy(new, &result)
        }
        result.tenants = new.tenants
        return result
    }
}
