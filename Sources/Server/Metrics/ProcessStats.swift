// The standard process_* figures Prometheus client libraries export (resident memory, open
// descriptors, start time, CPU time), read from /proc and getrusage at scrape time. Linux only;
// elsewhere the /proc readers return nil and those gauges stay at zero.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

enum ProcessStats {
    /// Resident set size: the second field of /proc/self/statm, in pages.
    static func residentBytes() -> Int? {
        guard case .success(let text) = readTextFile("/proc/self/statm") else { return nil }
        let fields = text.split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return nil }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }

    /// Entries of /proc/self/fd, not counting the one opendir itself holds while reading it.
    static func openDescriptors() -> Int? {
        guard let dir = opendir("/proc/self/fd") else { return nil }
        defer { closedir(dir) }
        var count = 0
        while let entry = readdir(dir) {
            let isDot = withUnsafeBytes(of: entry.pointee.d_name) { $0.first == UInt8(ascii: ".") }
            if !isDot { count += 1 }
        }
        return max(0, count - 1)
    }

    /// Boot time (btime in /proc/stat) plus the process's start in clock ticks after boot (field 22
    /// of /proc/self/stat, counted after the parenthesised command name, which may hold spaces).
    static func startTimeSeconds() -> Double? {
        guard case .success(let stat) = readTextFile("/proc/self/stat"),
              let close = stat.lastIndex(of: ")"),
              case .success(let system) = readTextFile("/proc/stat") else { return nil }
        // After ")" come fields 3, 4, ...; starttime is field 22, so index 19 here.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 19, let ticks = Double(fields[19]) else { return nil }
        guard let line = system.split(separator: "\n").first(where: { $0.hasPrefix("btime ") }),
              let boot = Double(line.dropFirst(6)) else { return nil }
        let hertz = Double(sysconf(Int32(_SC_CLK_TCK)))
        return hertz > 0 ? boot + ticks / hertz : nil
    }

    /// User plus system CPU time of the whole process.
    static func cpuSeconds() -> Double {
        var usage = rusage()
        guard getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage) == 0 else { return 0 }
        func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
        return seconds(usage.ru_utime) + seconds(usage.ru_stime)
    }
}
